"""Reliability, second round: each case a user met (a run killed early, code in a checkpoint, an export over
its own source, two writers on one outputs folder, a moved outputs folder, tracebacks, DSCD misused)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscd.experiments import Job, run_job
from dscd.runfolder import RunFolder, RunFolderError
from dscd.search import SEARCH_LOGS, load_metrics, run_search, search_profile

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(epochs=2, per_class=10, test_per_class=4, batch_size=5, channels=2, layers=3, image_size=8)


def tiny(**changes):
    return search_profile("smoke", **{**TINY, **changes})


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}


def _killed_before_first_checkpoint(folder: Path, config) -> None:
    """What a search killed in its first epoch leaves: its start files and an empty log, nothing computed."""
    run_search(config, folder, progress=False)
    for path in folder.iterdir():
        if path.name not in ("config.json", "meta.json", ".lock"):
            path.unlink()
    (folder / "metrics.jsonl").write_text("")


# ---------------------------------------------------------------- 1. a run killed before its first checkpoint


def test_a_search_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    run_search(tiny(), tmp_path / "whole", progress=False)
    folder = tmp_path / "killed"
    _killed_before_first_checkpoint(folder, tiny())
    assert RunFolder.holds_run_to_resume(folder, "search", SEARCH_LOGS)
    with pytest.raises(RunFolderError, match="already holds a search run"):  # without --resume: refused as before
        run_search(tiny(), folder, progress=False)
    run_search(tiny(), folder, resume=True, progress=False)
    assert _strip(load_metrics(folder)) == _strip(load_metrics(tmp_path / "whole"))


def test_the_executor_restarts_a_job_killed_before_its_first_checkpoint(tmp_path):
    folder = tmp_path / "job"
    _killed_before_first_checkpoint(folder, tiny())
    summary = run_job(Job(folder, tiny().to_dict()))  # what execute, Ray's retries and dscd reproduce call
    assert summary["epochs"] == 2 and len(load_metrics(folder)) == 2


def test_a_killed_run_of_another_configuration_is_refused_and_kept(tmp_path):
    folder = tmp_path / "killed"
    _killed_before_first_checkpoint(folder, tiny())
    before = _snapshot(folder)
    with pytest.raises(RunFolderError, match="different configuration .*seed: checkpoint 0 vs now 1"):
        run_search(tiny(seed=1), folder, resume=True, progress=False)
    assert _snapshot(folder) == before


def test_a_folder_with_a_record_but_no_checkpoint_is_still_refused(tmp_path):
    folder = tmp_path / "run"
    run_search(tiny(), folder, progress=False)
    for name in ("checkpoint.pt", "checkpoint.prev.pt", "summary.json", "genotype.json"):
        (folder / name).unlink()
    before = _snapshot(folder)
    assert not RunFolder.holds_run_to_resume(folder, "search", SEARCH_LOGS)
    with pytest.raises(RunFolderError, match="no checkpoint.pt or checkpoint.prev.pt"):
        run_search(tiny(), folder, resume=True, progress=False)
    assert _snapshot(folder) == before


def test_the_cli_resumes_a_search_sigkilled_as_soon_as_it_started(tmp_path):
    folder = tmp_path / "k"
    args = [sys.executable, "-m", "dscd", "search", "--profile", "smoke", "--epochs", "3", "--quiet", "--out",
            str(folder)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(args, cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not (folder / "config.json").is_file():
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (folder / "summary.json").exists(), "the search ended before it could be killed"
    done = subprocess.run(args + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(load_metrics(folder)) == 3


def test_a_training_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    from dscd.train import train_genotype
    from tests.test_train import GENOTYPE, _metrics, _strip_times
    from tests.test_train import tiny as tiny_train

    train_genotype(tiny_train(epochs=2), GENOTYPE, tmp_path / "whole", progress=False)
    folder = tmp_path / "killed"
    train_genotype(tiny_train(epochs=2), GENOTYPE, folder, progress=False)
    for path in folder.iterdir():
        if path.name not in ("config.json", "meta.json", "genotype.json", ".lock"):
            path.unlink()
    assert RunFolder.holds_run_to_resume(folder, "train")
    train_genotype(tiny_train(epochs=2), GENOTYPE, folder, resume=True, progress=False)
    assert _strip_times(_metrics(folder)) == _strip_times(_metrics(tmp_path / "whole"))
