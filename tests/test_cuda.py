"""CUDA paths (skipped without a GPU; run by benchmarks/gpu_check.sh on a lent machine)."""

import pytest
import torch

from dscd import DSCD
from dscd.search import run_search, search_profile

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_dscd_steps_cuda_parameters_like_cpu_ones():
    results = []
    for device in ("cpu", "cuda"):
        x = torch.nn.Parameter(torch.full((4,), 2.0, device=device))
        opt = DSCD([x], torch.optim.Adam([x], lr=0.05), total_steps=200, T=10, seed=0)
        for _ in range(200):
            opt.step(lambda x=x: ((x**2 - 1) ** 2 + 0.3 * x).sum())
        assert x.device.type == device
        results.append(opt.stats)
    assert results[0]["global_steps"] > 0 and results[1]["global_steps"] > 0


@pytest.mark.parametrize("amp", [False, True])
def test_a_tiny_search_runs_on_cuda(tmp_path, amp):
    summary = run_search(search_profile("smoke", device="cuda", amp=amp, epochs=2, optimizer="dscd"), tmp_path / "r",
                  progress=False)
    assert len(summary["final"]["genotype"]["normal"]) >= 0 and summary["final"]["test_acc"] is not None


@pytest.mark.parametrize("amp,channels_last", [(False, False), (True, True)])
def test_a_tiny_final_training_runs_on_cuda(tmp_path, amp, channels_last):
    from dscd.genotype import Genotype
    from dscd.train import train_genotype, train_profile

    genotype = Genotype(normal=(("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2)), reduce=(("max_pool_3x3", 0, 2),))
    config = train_profile("smoke", device="cuda", amp=amp, channels_last=channels_last, epochs=2)
    summary = train_genotype(config, genotype, tmp_path / "t", progress=False)
    assert summary["device"].startswith("cuda") and 0.0 <= summary["test_acc"] <= 1.0
    resumed = train_genotype(config.replace(epochs=2), genotype, tmp_path / "t", resume=True, progress=False)
    assert resumed["test_acc"] == summary["test_acc"]


def test_batched_seeds_on_cuda_match_separate_cuda_runs(tmp_path):
    from dscd.batched import run_search_batched, seed_folder
    from dscd.search import load_alphas

    configs = [search_profile("smoke", device="cuda", epochs=2, optimizer="dscd", dscd_T=2, seed=s) for s in (0, 1)]
    batched = run_search_batched(configs, [seed_folder(tmp_path / "b", c.seed) for c in configs], progress=False)
    for config, summary in zip(configs, batched, strict=True):
        alone = run_search(config, tmp_path / f"alone-{config.seed}", progress=False)
        assert summary["final"]["alpha_loss"] == pytest.approx(alone["final"]["alpha_loss"], rel=1e-3)
        assert abs(load_alphas(seed_folder(tmp_path / "b", config.seed))[1]
                   - load_alphas(tmp_path / f"alone-{config.seed}")[1]).max() < 1e-3
