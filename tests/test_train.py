"""Final training: configuration, records, exact resume after SIGKILL, refusals (invalid genotypes, checkpoints)."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dscd import cli
from dscd.eval_network import InvalidArchitectureError
from dscd.genotype import Genotype, load_genotype
from dscd.profiles import PROFILES
from dscd.runfolder import RunFolderError, RunFolderWarning
from dscd.train import TrainConfig, Trainer, TrainingDiverged, load_summary, train_profile
from dscd.train import train_genotype as run

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "genotypes.json"
TINY = dict(epochs=3, per_class=8, test_per_class=4, batch_size=8, channels=4, layers=3, image_size=8, cutout=4)
GENOTYPE = Genotype(normal=(("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("dil_conv_3x3", 2, 3)),
                    reduce=(("max_pool_3x3", 0, 2), ("sep_conv_5x5", 1, 3)))
EMPTY = Genotype(normal=(), reduce=(("max_pool_3x3", 0, 2),))


def tiny(**changes):
    return train_profile("smoke", **{**TINY, **changes})


def _strip_times(records):
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in records]


def _metrics(folder):
    return [json.loads(line) for line in (Path(folder) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"epochs": 0}, "epochs must be"),
        ({"batch_size": 1}, "batch_size must be"),
        ({"lr": 0.0}, "lr must be"),
        ({"lr_min": 1.0}, "lr_min .* must not exceed lr"),
        ({"drop_path": 1.0}, "drop_path must be"),
        ({"momentum": 1.5}, "momentum must be"),
        ({"cutout": 64}, "cutout .* must not exceed image_size"),
        ({"aux_weight": -1}, "aux_weight must be"),
        ({"auxiliary": "yes"}, "auxiliary must be true or false"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_bad_configuration_values_are_rejected_with_the_field_name(changes, match):
    with pytest.raises(ValueError, match=match):
        train_profile("smoke", **changes)


def test_profiles_and_file_round_trip(tmp_path):
    paper = train_profile("paper")
    assert (paper.layers, paper.channels, paper.batch_size, paper.epochs) == (20, 36, 96, 600)
    assert (paper.lr, paper.lr_min, paper.momentum, paper.weight_decay, paper.grad_clip) == (0.025, 0.0, 0.9, 3e-4, 5)
    assert (paper.aux_weight, paper.cutout, paper.drop_path, paper.auxiliary) == (0.4, 16, 0.2, True)
    for name in PROFILES:
        config = train_profile(name)
        assert config.profile == name and config.cutout <= config.image_size
    for suffix in ("json", "yaml"):
        path = tmp_path / f"c.{suffix}"
        tiny(seed=3).save(path)
        assert TrainConfig.from_file(path) == tiny(seed=3)
    (tmp_path / "bad.json").write_text('{"epochs": 2, "learning_rate": 1}')
    with pytest.raises(ValueError, match="unknown configuration field.*learning_rate"):
        TrainConfig.from_file(tmp_path / "bad.json")
    (tmp_path / "broken.yaml").write_text("epochs: [1, 2\n")
    with pytest.raises(ValueError, match="broken.yaml is not valid YAML"):
        TrainConfig.from_file(tmp_path / "broken.yaml")
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        train_profile("huge")


def test_schedules_follow_the_reference():
    c = train_profile("paper")
    assert c.lr_at(0) == pytest.approx(0.025)
    assert c.lr_at(300) == pytest.approx(0.0125)
    assert c.lr_at(599) == pytest.approx(0.025 * (1 + math.cos(math.pi * 599 / 600)) / 2, rel=1e-9)
    assert c.drop_prob_at(0) == 0.0 and c.drop_prob_at(300) == pytest.approx(0.1)


def test_a_run_writes_records_summary_and_sizes(tmp_path):
    summary = run(tiny(), GENOTYPE, tmp_path / "run", name="tiny", progress=False)
    records = _metrics(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["drop_prob"] for r in records] == pytest.approx([0.0, 0.2 / 3, 0.4 / 3])
    assert records[0]["lr"] == pytest.approx(0.025) and records[2]["lr"] < records[1]["lr"] < records[0]["lr"]
    for r in records:
        assert 0.0 <= r["train_acc"] <= 1.0 and 0.0 <= r["test_acc"] <= 1.0 and r["train_loss"] > 0
    assert summary["test_acc"] == records[-1]["test_acc"] and summary["name"] == "tiny"
    size, paper = summary["size"], summary["paper_size"]
    assert 0 < size["params_m"] < size["params_with_aux_m"] and size["flops_m"] > 0
    assert paper["params_m"] > 10 * size["params_m"]  # C=36, 20 cells
    assert load_summary(tmp_path / "run") == summary
    assert Genotype.from_dict(json.loads((tmp_path / "run" / "genotype.json").read_text())) == GENOTYPE
    assert TrainConfig.from_file(tmp_path / "run" / "config.json") == tiny()
    assert load_summary(tmp_path / "nothing") is None


def test_the_same_seed_gives_the_same_numbers(tmp_path):
    a = run(tiny(epochs=2), GENOTYPE, tmp_path / "a", progress=False)
    b = run(tiny(epochs=2), GENOTYPE, tmp_path / "b", progress=False)
    assert _strip_times(_metrics(tmp_path / "a")) == _strip_times(_metrics(tmp_path / "b"))
    assert a["test_acc"] == b["test_acc"]


def test_resume_after_sigkill_is_exact(tmp_path):
    changes = dict(epochs=4, drop_path=0.3)  # drop path draws from the global generator: its state must resume
    run(tiny(**changes), GENOTYPE, tmp_path / "whole", progress=False)
    whole = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)["trainer"]["net"]

    folder = tmp_path / "killed"
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from tests.test_train import tiny, GENOTYPE; "
              f"from dscd.train import train_genotype as run; import time, dscd.runfolder as rf; "
              f"orig = rf.RunFolder.save_checkpoint; "
              f"rf.RunFolder.save_checkpoint = lambda *a: (orig(*a), time.sleep(0.5)); "
              f"run(tiny(**{changes!r}), GENOTYPE, {str(folder)!r}, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    while proc.poll() is None:  # kill it after its second epoch (waits on the records, however slow the machine)
        if (folder / "metrics.jsonl").is_file() and len((folder / "metrics.jsonl").read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(_metrics(folder)) < 4, "the run finished before it could be killed"

    with pytest.raises(RunFolderError, match="already holds a training run"):
        run(tiny(**changes), GENOTYPE, folder, progress=False)
    run(tiny(**changes), GENOTYPE, folder, resume=True, progress=False)
    assert _strip_times(_metrics(folder)) == _strip_times(_metrics(tmp_path / "whole"))
    resumed = torch.load(folder / "checkpoint.pt", weights_only=False)["trainer"]["net"]
    assert all(torch.equal(resumed[k], whole[k]) for k in whole)


def test_resume_from_the_previous_checkpoint_replays_the_last_epoch(tmp_path):
    folder = tmp_path / "run"
    run(tiny(), GENOTYPE, folder, progress=False)
    reference = _strip_times(_metrics(folder))
    shutil.copy(folder / "checkpoint.prev.pt", folder / "checkpoint.pt")  # as if killed during epoch 3
    run(tiny(), GENOTYPE, folder, resume=True, progress=False)
    assert _strip_times(_metrics(folder)) == reference


def test_invalid_genotypes_are_refused_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(InvalidArchitectureError, match="empty is an invalid architecture.*normal cell"):
        run(tiny(), EMPTY, tmp_path / "run", name="empty", progress=False)
    assert not (tmp_path / "run").exists()
    path = tmp_path / "empty.json"
    EMPTY.save(path)
    assert cli.main(["train", "--genotype", str(path), "--profile", "smoke", "--out", str(tmp_path / "cli"),
                     "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Invalid arch." in err and "normal cell" in err and not (tmp_path / "cli").exists()


def test_checkpoint_refusals(tmp_path):
    folder = tmp_path / "run"
    run(tiny(epochs=2), GENOTYPE, folder, progress=False)
    with pytest.raises(RunFolderError, match="different configuration .*channels"):
        run(tiny(epochs=2, channels=6), GENOTYPE, folder, resume=True, progress=False)
    other = Genotype(normal=GENOTYPE.normal, reduce=(("avg_pool_3x3", 0, 2),))
    with pytest.raises(RunFolderError, match="different configuration .*genotype"):
        run(tiny(epochs=2), other, folder, resume=True, progress=False)
    with pytest.raises(RunFolderError, match="holds no run to resume"):
        run(tiny(), GENOTYPE, tmp_path / "none", resume=True, progress=False)
    (folder / "checkpoint.pt").write_bytes(b"garbage")  # the one before is good: the run falls back to it
    with pytest.warns(RunFolderWarning, match="corrupt.*moved to checkpoint.corrupt.pt.*resuming from"):
        run(tiny(epochs=2), GENOTYPE, folder, resume=True, progress=False)
    assert (folder / "checkpoint.corrupt.pt").read_bytes() == b"garbage"  # kept aside, never deleted


def test_a_nan_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    original = Trainer.train_step
    calls = {"n": 0}

    def poisoned(self, x, y):
        calls["n"] += 1
        loss, logits = original(self, x, y)
        return (loss * float("nan") if calls["n"] > 10 else loss), logits

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    with pytest.raises(TrainingDiverged, match="epoch 2"):  # 10 steps per epoch (80 images, batch 8)
        run(tiny(), GENOTYPE, folder, progress=False)
    assert len(_metrics(folder)) == 1
    assert torch.load(folder / "checkpoint.pt", weights_only=False)["epoch"] == 1


def test_cli_trains_a_published_genotype_and_reports_usage_errors(tmp_path, capsys):
    out = tmp_path / "darts"
    assert cli.main(["train", "--genotype", str(REFERENCE), "--name", "DARTS_V2", "--profile", "smoke",
                     "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "DARTS_V2, 1 epochs" in printed and "3.35 M params, 528 M FLOPs" in printed
    assert load_summary(out)["paper_size"]["params_m"] == pytest.approx(3.349, abs=1e-3)
    assert load_genotype(out / "genotype.json") == load_genotype(REFERENCE, "DARTS_V2")
    for argv, message in (
        (["--genotype", str(REFERENCE)], "holds"),  # several genotypes, no --name
        (["--genotype", str(REFERENCE), "--name", "NOPE"], "no genotype named 'NOPE'"),
        (["--genotype", str(tmp_path / "missing.json")], "no genotype file"),
        (["--genotype", str(REFERENCE), "--name", "DARTS_V2", "--set", "lr=-1"], "lr must be"),
    ):
        with pytest.raises(SystemExit) as exc:
            cli.main(["train", "--profile", "smoke", *argv])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
