"""Independent runs on a local Ray cluster: a worker killed mid-run is retried and its run resumes
from the run folder's checkpoint, ending as the serial run does."""

import os
import re
import signal
import threading
import time

import pytest

from dscd.executors import LocalExecutor, RayExecutor, make_executor
from dscd.paper.experiments import run_budgets
from dscd.search import load_alphas, load_metrics

ray = pytest.importorskip("ray")

TINY = dict(per_class=10, test_per_class=4, batch_size=5, channels=2, layers=3, image_size=8,
            checkpoint_minutes=1e-9)


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _kill_once_under_way(folder, killed, done):
    """SIGKILL the process that holds ``folder``'s lock once two epochs are logged; waits on that, however slow
    the machine (Ray runs its workers niced), until the executor returns (``done``)."""
    log, lock = folder / "metrics.jsonl", folder / ".lock"
    while not done.is_set():
        if log.is_file() and len(log.read_text().splitlines()) >= 2 and lock.is_file():
            match = re.match(r"process (\d+)", lock.read_text())
            if match:
                os.kill(int(match.group(1)), signal.SIGKILL)
                killed.append(int(match.group(1)))
                return
        time.sleep(0.02)


def test_a_killed_ray_worker_is_retried_and_its_run_resumes(tmp_path, local_cluster):
    serial = run_budgets("smoke", "adam", [5], tmp_path / "serial", TINY, seeds=[1],  # the killed seed's
                         executor=LocalExecutor(jobs=1, threads=1))
    runs = tmp_path / "ray"
    killed: list[int] = []
    done = threading.Event()
    killer = threading.Thread(target=_kill_once_under_way, args=(runs / "adam-5-s1", killed, done))
    killer.start()
    try:
        folders = run_budgets("smoke", "adam", [5], runs, TINY, seeds=[0, 1], executor=RayExecutor(max_retries=2))
    finally:
        done.set()
        killer.join()
    logged = len(load_metrics(runs / "adam-5-s1"))
    assert killed, (f"the killer never saw two epochs and the lock's holder together before the run ended "
                    f"({logged} epochs logged)")
    assert [f.name for f in folders] == ["adam-5-s0", "adam-5-s1"]
    for a, b in zip(serial, folders[1:], strict=True):  # seed 0 ran beside it, untouched
        assert _strip(load_metrics(a)) == _strip(load_metrics(b))
        assert (load_alphas(a)[1] == load_alphas(b)[1]).all()


def test_make_executor_names_what_it_builds(monkeypatch):
    import torch

    assert isinstance(make_executor("local", jobs=2), LocalExecutor)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # as on a machine with two GPUs
    assert make_executor("local", devices=[0, 1]).jobs == 2
    assert isinstance(make_executor("ray", address="auto"), RayExecutor)
    with pytest.raises(ValueError, match="executor must be one of local, ray"):
        make_executor("slurm")
    with pytest.raises(ValueError, match="distinct GPU indices"):
        LocalExecutor(devices=[0, 0])
