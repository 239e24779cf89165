"""The search loop: configuration, records, exact resume after SIGKILL, refusals, divergence."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dscd import cli
from dscd.genotype import Genotype
from dscd.runfolder import RunFolderError
from dscd.search import (
    SearchConfig,
    SearchDiverged,
    Searcher,
    load_alphas,
    load_metrics,
    search_profile,
    search_steps_per_epoch,
)
from dscd.search import run_search as run

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(epochs=3, per_class=10, test_per_class=4, batch_size=5, channels=2, layers=3, image_size=8)


def tiny(**changes):
    return search_profile("smoke", **{**TINY, **changes})


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"epochs": 0}, "epochs must be"),
        ({"batch_size": -1}, "batch_size must be"),
        ({"alpha_lr": 0.0}, "alpha_lr must be"),
        ({"threshold": 1.5}, "threshold must be"),
        ({"optimizer": "sgd"}, "optimizer must be one of"),
        ({"relaxation": "gumbel"}, "relaxation must be one of"),
        ({"rule": "best"}, "rule must be one of"),
        ({"ops": ("conv_9x9",)}, "unknown operation"),
        ({"dscd_domain": (3.0, -3.0)}, "dscd_domain"),
        ({"w_lr_min": 1.0}, "w_lr_min"),
        ({"per_class": 1}, "per_class must be"),
        ({"channels": 3}, "channels must be even"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_out_of_range_values_are_rejected_before_any_work(changes, match):
    with pytest.raises(ValueError, match=match):
        SearchConfig(**changes)


def test_config_round_trips_through_json_and_yaml(tmp_path):
    cfg = search_profile("quick", optimizer="dscd", epochs=7)
    for name in ("c.json", "c.yaml"):
        cfg.save(tmp_path / name)
        assert SearchConfig.from_file(tmp_path / name) == cfg
    (tmp_path / "bad.json").write_text(json.dumps({"epochs": 3, "learning_rate": 1}))
    with pytest.raises(ValueError, match="unknown configuration field"):
        SearchConfig.from_file(tmp_path / "bad.json")
    paper = search_profile("paper")
    assert paper.channels == 16 and paper.batch_size == 128


# ----------------------------------------------------------------------------- a run


def test_a_search_records_every_epoch(tmp_path):
    summary = run(tiny(), tmp_path / "run", progress=False)
    records = load_metrics(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    for key in ("train_acc", "val_acc", "test_acc", "alpha_loss", "weight_loss", "mean_weight_normal",
                "mean_weight_reduce", "mean_discretised_normal", "kept_edges_reduce", "genotype", "valid", "seconds"):
        assert key in records[-1], key
    assert 0 <= records[-1]["test_acc"] <= 1
    epochs, normal, reduce = load_alphas(tmp_path / "run")
    assert epochs.tolist() == [1, 2, 3] and normal.shape == reduce.shape == (3, 14, 7)
    assert (normal != 0).any()  # alpha moved
    for name in ("config.json", "meta.json", "genotype.json", "summary.json", "checkpoint.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    assert summary["valid"] == records[-1]["valid"]
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["version"]


def test_a_dscd_search_records_its_steps(tmp_path):
    summary = run(tiny(optimizer="dscd", dscd_T=3), tmp_path / "run", progress=False)
    last = load_metrics(tmp_path / "run")[-1]["dscd"]
    assert last["local_steps"] + last["global_steps"] == 3 * 10  # 50 images per half / batch 5 = 10 steps
    assert search_steps_per_epoch(tiny(optimizer="dscd", dscd_T=3)) == 10  # the same count, without the data
    assert last["accepted"] + last["rejected"] == last["global_steps"]
    assert last["proposed_normal"] + last["proposed_reduce"] == last["global_steps"]
    assert "genotype_best" in summary
    records = load_metrics(tmp_path / "run")
    assert all(0 <= r["dscd"]["best_age"] <= 10 * r["epoch"] for r in records)
    assert isinstance(last["at_best"], bool) and last["refreshes"] == 0
    assert last["global_phases"] >= last["phases_accepting"] and last["global_phases"] >= 1
    # every epoch records x_best's cell beside x_current's; at the end it is genotype_best.json's
    assert all(set(r["best"]) == {"valid", "invalid_reason", "kept_edges_normal", "kept_edges_reduce"}
               for r in records)
    assert records[-1]["best"]["valid"] == summary["best_valid"]
    best = Genotype.from_dict(summary["genotype_best"])
    assert records[-1]["best"]["kept_edges_normal"] == len(best.normal)


def test_dscd_refresh_best_reevaluates_x_best_at_each_global_phase(tmp_path):
    run(tiny(optimizer="dscd", dscd_T=3, dscd_refresh_best=True), tmp_path / "run", progress=False)
    last = load_metrics(tmp_path / "run")[-1]["dscd"]
    assert last["refreshes"] == last["global_phases"] >= 2


def test_same_seed_same_numbers(tmp_path):
    a = run(tiny(epochs=2), tmp_path / "a", progress=False)
    b = run(tiny(epochs=2), tmp_path / "b", progress=False)
    assert a["final"]["alpha_loss"] == b["final"]["alpha_loss"]
    assert (load_alphas(tmp_path / "a")[1] == load_alphas(tmp_path / "b")[1]).all()


def kill_in_epoch_3(code, folder, epoch=3):
    """Run ``code`` (a search into ``folder``) in a subprocess and SIGKILL it in the middle of epoch 3 (or
    ``epoch``): it waits on the folder's records, however slow the machine."""
    proc = subprocess.Popen([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}"], cwd=ROOT)
    while proc.poll() is None:
        records = folder / "metrics.jsonl"
        if records.is_file() and len(records.read_text().splitlines()) >= epoch - 1:
            break
        time.sleep(0.02)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _strip_times(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.mark.parametrize("optimizer", ["dscd"])  # DSCD's local steps are Adam's: one kill covers both optimisers
def test_resume_after_sigkill_is_exact(tmp_path, optimizer):
    changes = dict(epochs=4, optimizer=optimizer, dscd_T=2, checkpoint_minutes=1e-9)  # a checkpoint every step
    reference = run(tiny(**changes), tmp_path / "whole", progress=False)

    folder = tmp_path / "killed"
    kill_in_epoch_3(f"from tests.test_search import tiny; from dscd.search import run_search as run; "
                    f"run(tiny(**{changes!r}), {str(folder)!r}, progress=False)", folder)
    assert len(load_metrics(folder)) < 4, "the run finished before it could be killed"

    resumed = run(tiny(**changes), folder, resume=True, progress=False)
    assert _strip_times(load_metrics(folder)) == _strip_times(load_metrics(tmp_path / "whole"))
    assert (load_alphas(folder)[1] == load_alphas(tmp_path / "whole")[1]).all()
    assert resumed["genotype"] == reference["genotype"]


def test_the_test_set_size_changes_search_test_alone(tmp_path):
    """Search Test reads its own images in eval mode and draws no random number: the number of test images
    changes no other number of a search (so the quick protocol, calibrated with fewer test images than its
    results use, still describes the same searches)."""
    few = run(tiny(epochs=2, test_per_class=4, optimizer="dscd", dscd_T=2), tmp_path / "few", progress=False)
    many = run(tiny(epochs=2, test_per_class=9, optimizer="dscd", dscd_T=2), tmp_path / "many", progress=False)
    a, b = load_metrics(tmp_path / "few"), load_metrics(tmp_path / "many")
    drop = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "test_acc")} for r in rs]  # noqa: E731
    assert drop(a) == drop(b) and (load_alphas(tmp_path / "few")[1] == load_alphas(tmp_path / "many")[1]).all()
    assert few["genotype_best"] == many["genotype_best"]


def test_refusals_and_corrupt_checkpoints(tmp_path):
    folder = tmp_path / "run"
    run(tiny(epochs=1), folder, progress=False)
    with pytest.raises(RunFolderError, match="already holds a search"):
        run(tiny(epochs=1), folder, progress=False)
    with pytest.raises(RunFolderError, match="different configuration .*channels"):
        run(tiny(epochs=1, channels=4), folder, resume=True, progress=False)
    with pytest.raises(RunFolderError, match="holds no run to resume"):
        run(tiny(), tmp_path / "empty", resume=True, progress=False)
    assert not (tmp_path / "empty").exists()  # a refused call leaves no folder behind
    (folder / "checkpoint.pt").write_bytes(b"garbage")
    (folder / "checkpoint.prev.pt").write_bytes(b"garbage too")
    with pytest.raises(RunFolderError, match="corrupt.*no usable checkpoint"):
        run(tiny(epochs=1), folder, resume=True, progress=False)
    assert (folder / "checkpoint.pt").read_bytes() == b"garbage"  # left as it was


def test_a_nan_stops_the_run_naming_the_epoch(tmp_path, monkeypatch):
    original = Searcher.weight_step
    calls = {"n": 0}

    def flaky(self, x, y):
        calls["n"] += 1
        loss, logits = original(self, x, y)
        return (loss * float("nan"), logits) if calls["n"] == 12 else (loss, logits)  # epoch 2, step 2

    monkeypatch.setattr(Searcher, "weight_step", flaky)
    folder = tmp_path / "run"
    with pytest.raises(SearchDiverged, match="non-finite weight_loss in epoch 2, by step 10"):
        run(tiny(), folder, progress=False)
    state = torch.load(folder / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 1 and len(load_metrics(folder)) == 1  # the checkpoint after epoch 1 is intact


def test_cli_search_and_its_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    tiny(epochs=1).save(cfg)
    assert cli.main(["search", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert "1 epochs" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["search", "--profile", "smoke", "--epochs", "0", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2 and "epochs must be" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert cli.main(["search", "--config", str(cfg), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    assert "--resume" in capsys.readouterr().err


def test_experiment_helpers(tmp_path):
    from dscd.paper.claims import collapse_claims
    from dscd.paper.experiments import run_budgets, table1_rows
    from dscd.paper.tables import markdown_table

    overrides = {k: v for k, v in TINY.items() if k != "epochs"}
    folders = run_budgets("smoke", "adam", [1, 2], tmp_path, overrides=overrides, progress=False)
    rows = table1_rows(folders)
    assert [r["Method"] for r in rows] == ["FairDARTS (1)", "FairDARTS (2)"]
    assert "| Method |" in markdown_table(rows)
    claims = collapse_claims(folders)
    assert [c["id"] for c in claims][:2] == ["fairdarts_short_valid", "fairdarts_collapses"]
    assert all(c["verdict"] in ("held", "not held", "inconclusive") for c in claims)
    refresh = run_budgets("smoke", "dscd", [1], tmp_path, overrides={**overrides, "dscd_refresh_best": True},
                          seeds=[3], progress=False)
    assert [f.name for f in refresh] == ["dscd-refresh-1-s3"]


def test_plain_progress_lines_go_through_logging_and_the_command_shows_them(tmp_path, capsys, monkeypatch):
    """Library code reports through the ``dscd`` logger (a script chooses whether to see it); the ``dscd``
    command shows its INFO lines on stderr, once each however many commands a process runs."""
    import logging

    from dscd.livelog import Progress, log_to_stderr

    records = []
    collect = logging.Handler(logging.INFO)
    collect.emit = records.append  # what a user's handler on the dscd logger receives
    logger = logging.getLogger("dscd")
    logger.addHandler(collect)
    level, logger.level = logger.level, logging.INFO
    try:
        bar = Progress(10, 0, "search adam", plain=True)
        bar.epoch({"epoch": 1, "valid": True})
        bar.close()
    finally:
        logger.removeHandler(collect)
        logger.setLevel(level)
    assert [(r.name, r.levelno, r.getMessage()) for r in records] == [
        ("dscd", logging.INFO, "search adam: epoch 1, valid True")]
    capsys.readouterr()
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)  # a notebook test imported it: a bar, not lines
    root = logging.StreamHandler(sys.stderr)  # as Ray installs on the root logger: the command's lines stay single
    logging.getLogger().addHandler(root)
    try:
        log_to_stderr()
        log_to_stderr()  # a second command in the same process adds no second handler
        _progress_and_a_search(tmp_path, capsys)
    finally:
        logging.getLogger().removeHandler(root)


def _progress_and_a_search(tmp_path, capsys):
    from dscd.livelog import Progress

    bar = Progress(10, 0, "train DARTS_V2", plain=True)
    bar.epoch({"epoch": 2})
    bar.close()
    assert capsys.readouterr().err == "train DARTS_V2: epoch 2\n"
    assert cli.main(["search", "--profile", "smoke", "--set", "epochs=1", "--set", "per_class=6", "--set",
                     "batch_size=8", "--set", "test_per_class=2", "--out", str(tmp_path / "run")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("search")]
    assert len(lines) == 1 and "epoch 1" in lines[0]
