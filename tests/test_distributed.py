"""One search or training over 2 processes (torchrun, gloo on CPU): identical ranks, exact resume after
a rank is killed, a refused resume with another number of ranks."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dscd.search import load_alphas, load_metrics

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "DSCD_DIST_TIMEOUT": "60"}

STEPS = """
import sys, torch
from dscd.distributed import Distributed
from dscd.run_common import seed_everything
from dscd.search import Searcher, search_profile
dist = Distributed.from_environment("cpu")
seed_everything(0)  # the same network on every launch: the outcome below must not depend on the global RNG
config = search_profile("smoke", optimizer=sys.argv[2], epochs=2, dscd_T=2, batch_size=8, channels=2, layers=3)
searcher = Searcher(config, 5, 3, 6, torch.device("cpu"), dist)
gen = torch.Generator().manual_seed(0)  # the same global batches on every rank
for step in range(12):
    x, y = torch.randn(8, 3, 8, 8, generator=gen), torch.randint(0, 5, (8,), generator=gen)
    xt, yt = dist.shard(x, y)
    searcher.alpha_step(xt, yt)
    searcher.weight_step(xt, yt)
state = {"alphas": [a.detach().clone() for a in searcher.alphas],
         "weights": [w.detach().clone() for w in searcher.weights]}
if searcher.dscd is not None:
    state["dscd"] = searcher.dscd.state_dict()["engine"]
    state["stats"] = searcher.dscd.stats
torch.save(state, f"{sys.argv[1]}/rank{dist.rank}.pt")
dist.close()
"""


def _torchrun(args, nproc=2):
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "shape"):  # numpy
        return (a == b).all()
    return a == b


@pytest.mark.parametrize("optimizer", ["adam", "dscd"])
def test_every_rank_holds_the_same_alpha_weights_and_dscd_state(tmp_path, optimizer):
    script = tmp_path / "steps.py"
    script.write_text(STEPS)
    subprocess.run(_torchrun([str(script), str(tmp_path), optimizer]), env=ENV, cwd=ROOT, check=True,
                   capture_output=True, timeout=180)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert _equal(r0["alphas"], r1["alphas"]) and _equal(r0["weights"], r1["weights"])
    assert not torch.equal(r0["alphas"][0], torch.zeros_like(r0["alphas"][0]))  # alpha moved
    if optimizer == "dscd":
        assert r0["stats"]["global_steps"] > 0  # global steps were taken, with the same decisions
        assert _equal(r0["dscd"], r1["dscd"]) and r0["stats"] == r1["stats"]


def _strip(records):
    return [{k: v for k, v in r.items() if k not in ("seconds", "epoch_seconds")} for r in records]


#: Epochs of the killed-and-resumed runs: rank 1 is killed once 2 are logged, with 2 still to run.
EPOCHS = 4


def _kill_rank_1(cmd, folder, lines=2):
    """Start a 2-rank run, SIGKILL rank 1 once ``lines`` epochs are logged; the job must end, not hang."""
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    log = folder / "metrics.jsonl"
    while proc.poll() is None:  # waits on the records, however slow the machine
        if log.is_file() and len(log.read_text().splitlines()) >= lines:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    holder = int((folder / ".lock").read_text().split()[1])  # rank 0 holds the folder's lock
    workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    rank_1 = [int(p) for p in workers if int(p) != holder]
    assert len(rank_1) == 1, workers
    os.kill(rank_1[0], signal.SIGKILL)
    output, _ = proc.communicate(timeout=120)  # the job goes down: no hang
    assert proc.returncode != 0, output
    # rank 0 either says so in one line or was stopped by torchrun first; never a traceback of ours
    assert "rank 0 lost the other ranks" in output or "SIGTERM" in output, output
    assert "[rank0]: Traceback" not in output, output
    assert len(log.read_text().splitlines()) < EPOCHS


def test_a_two_rank_search_killed_and_resumed_ends_as_the_uninterrupted_one(tmp_path):
    args = ["-m", "dscd", "search", "--profile", "smoke", "--optimizer", "dscd", "--epochs", str(EPOCHS), "--quiet",
            "--set", "dscd_T=3"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(_torchrun([*args, "--out", str(whole)]), env=ENV, cwd=ROOT, check=True, capture_output=True,
                   timeout=300)
    _kill_rank_1(_torchrun([*args, "--out", str(cut)]), cut)
    # another number of ranks is refused, with one line, and changes nothing
    single = subprocess.run([sys.executable, "-m", "dscd", *args[2:], "--out", str(cut), "--resume"], env=ENV,
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert single.returncode == 1 and "checkpointed by 2 process(es)" in single.stderr, single.stderr
    assert "Traceback" not in single.stderr
    subprocess.run(_torchrun([*args, "--out", str(cut), "--resume"]), env=ENV, cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    assert _strip(load_metrics(whole)) == _strip(load_metrics(cut))
    assert (load_alphas(whole)[1] == load_alphas(cut)[1]).all()
    assert (whole / "genotype_best.json").read_text() == (cut / "genotype_best.json").read_text()


def test_a_two_rank_training_killed_and_resumed_ends_as_the_uninterrupted_one(tmp_path):
    args = ["-m", "dscd", "train", "--genotype", "DARTS_V2", "--profile", "smoke", "--epochs", str(EPOCHS), "--quiet"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    subprocess.run(_torchrun([*args, "--out", str(whole)]), env=ENV, cwd=ROOT, check=True, capture_output=True,
                   timeout=300)
    _kill_rank_1(_torchrun([*args, "--out", str(cut)]), cut)
    subprocess.run(_torchrun([*args, "--out", str(cut), "--resume"]), env=ENV, cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    assert _strip(load_metrics(whole)) == _strip(load_metrics(cut))
    a, b = (torch.load(f / "model.pt", weights_only=True)["state_dict"] for f in (whole, cut))
    assert _equal(a, b)


def test_a_global_batch_that_does_not_divide_by_the_ranks_is_refused(tmp_path):
    run = subprocess.run(_torchrun(["-m", "dscd", "search", "--profile", "smoke", "--epochs", "1", "--quiet",
                                    "--set", "batch_size=9", "--out", str(tmp_path / "r")]),
                         env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "batch_size 9 is the global batch and must divide by the 2 ranks" in run.stdout + run.stderr
    assert not (tmp_path / "r").exists()
