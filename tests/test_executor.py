"""Independent runs on the local executor: parallel equals serial, failures reported, killed calls resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscd.executors import LocalExecutor, RunsFailed
from dscd.paper.experiments import run_budgets
from dscd.search import load_alphas, load_metrics

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(per_class=10, test_per_class=4, batch_size=5, channels=2, layers=3, image_size=8)


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_parallel_runs_equal_serial_ones_bit_for_bit(tmp_path):
    serial = run_budgets("smoke", "dscd", [1, 2], tmp_path / "serial", TINY, seeds=[0, 1],
                         executor=LocalExecutor(jobs=1, threads=1))
    parallel = run_budgets("smoke", "dscd", [1, 2], tmp_path / "parallel", TINY, seeds=[0, 1],
                           executor=LocalExecutor(jobs=2))
    assert [f.name for f in parallel] == ["dscd-1-s0", "dscd-1-s1", "dscd-2-s0", "dscd-2-s1"]
    for a, b in zip(serial, parallel, strict=True):
        assert _strip(load_metrics(a)) == _strip(load_metrics(b))
        assert (load_alphas(a)[1] == load_alphas(b)[1]).all()
    assert load_alphas(parallel[0])[1].tolist() != load_alphas(parallel[1])[1].tolist()  # seeds differ
    before = {f: (f / "summary.json").stat().st_mtime_ns for f in parallel}
    run_budgets("smoke", "dscd", [1, 2], tmp_path / "parallel", TINY, seeds=[0, 1], executor=LocalExecutor(jobs=2))
    assert before == {f: (f / "summary.json").stat().st_mtime_ns for f in parallel}  # finished runs reused


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path):
    bad = tmp_path / "runs" / "adam-2-s1"
    bad.mkdir(parents=True)
    (bad / "config.json").write_text("{}")  # a folder holding something else: never overwritten
    with pytest.raises(RunsFailed, match=r"(?s)1 of 2 runs failed \(1 finished.*adam-2-s1: RunFolderError"):
        run_budgets("smoke", "adam", [2], tmp_path / "runs", TINY, seeds=[0, 1], executor=LocalExecutor(jobs=2))
    assert json.loads((tmp_path / "runs" / "adam-2-s0" / "summary.json").read_text())["epochs"] == 2
    assert (bad / "config.json").read_text() == "{}"


def test_a_killed_parallel_call_resumes_every_run(tmp_path):
    runs = tmp_path / "runs"
    changes = {**TINY, "checkpoint_minutes": 1e-9}
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from dscd.paper.experiments import run_budgets; "
              f"from dscd.executors import LocalExecutor; run_budgets('smoke', 'adam', [4], {str(runs)!r}, "
              f"{changes!r}, seeds=[0, 1], executor=LocalExecutor(jobs=2))")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, start_new_session=True)
    logs = [runs / f"adam-4-s{s}" / "metrics.jsonl" for s in (0, 1)]
    while proc.poll() is None:  # kill the whole call (workers too) once both runs are under way
        if all(p.is_file() and len(p.read_text().splitlines()) >= 2 for p in logs):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert all(len(load_metrics(p.parent)) < 4 for p in logs), "the runs finished before they could be killed"
    folders = run_budgets("smoke", "adam", [4], runs, changes, seeds=[0, 1], executor=LocalExecutor(jobs=2))
    whole = run_budgets("smoke", "adam", [4], tmp_path / "whole", changes, seeds=[0, 1],
                        executor=LocalExecutor(jobs=2))
    for a, b in zip(folders, whole, strict=True):
        assert _strip(load_metrics(a)) == _strip(load_metrics(b))


def test_each_local_worker_process_sees_one_gpu_of_its_own(monkeypatch):
    import queue

    import torch

    from dscd.executors import _start_worker

    free = queue.Queue()
    for device in (3, 5):
        free.put(device)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "unset")  # restored after the test
    threads = torch.get_num_threads()
    try:
        _start_worker(1, free)
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3" and torch.get_num_threads() == 1
        _start_worker(1, free)
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    finally:
        torch.set_num_threads(threads)
