#!/usr/bin/env bash
# One call on a lent GPU machine (device tool): CUDA tests, the supernet benchmark, a timed search epoch
# at the paper's network size with Adam and with DSCD, final-training steps (fp32/bf16, NCHW/channels_last) and
# seeds in one process against one process per seed (bench_batched).
# Installs nothing; runs from the source tree.
#   run: bash benchmarks/gpu_check.sh     (results under $OUT, default ./gpu_results)
set -uo pipefail
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export PYTHONPATH=.
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee "$OUT/torch.txt"
python3 -m pytest -q -m cuda tests -p no:cacheprovider > "$OUT/pytest_cuda.txt" 2>&1; echo "cuda tests rc=$?" >> "$OUT/pytest_cuda.txt"
timeout 300 python3 benchmarks/bench_supernet.py --device cuda --configs paper128,paper --repeats 3 \
    --out "$OUT/supernet.json" > "$OUT/supernet.txt" 2>&1
timeout 240 python3 benchmarks/bench_search.py --device cuda --out "$OUT/search.json" > "$OUT/search.txt" 2>&1
timeout 120 python3 benchmarks/bench_train.py --device cuda --out "$OUT/train.json" > "$OUT/train.txt" 2>&1
timeout 150 python3 benchmarks/bench_batched.py --device cuda --spaces darts,nas-bench-201 --threads 1 --seeds 1,5,8 \
    --rounds 3 --pack-seeds 0 --out "$OUT/batched.json" > "$OUT/batched.txt" 2>&1
timeout 120 python3 benchmarks/bench_scaling.py --device cuda --ranks 1 --configs paper --out "$OUT/scaling.json" > "$OUT/scaling.txt" 2>&1
tail -n 5 "$OUT"/*.txt
