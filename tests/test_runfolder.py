"""Run folders and user errors: one writer per folder, nothing overwritten, data recorded, one-line errors."""

import errno
import io
import json
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dscd import cli
from dscd.data import DATA_ROOT, DataConfig, DataError, load_split, recorded_source, source_fingerprint
from dscd.runfolder import START_FILES_KEY, JsonLines, RunFolder, RunFolderError, RunFolderWarning
from dscd.search import SearchConfig, SearchDiverged, Searcher, load_metrics, run_search, search_profile

TINY = dict(epochs=2, per_class=10, test_per_class=4, batch_size=5, channels=2, layers=3, image_size=8)


def tiny(**changes):
    return search_profile("smoke", **{**TINY, **changes})


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != ".lock"}


def _cli(argv, capsys):
    """Run the CLI; returns (exit code, stderr). A traceback would fail the test (no exception may escape)."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------ one writer, never overwritten


def test_a_second_writer_meets_the_lock(tmp_path, capsys):
    run_search(tiny(epochs=1), tmp_path / "run", progress=False)
    before = _snapshot(tmp_path / "run")
    with RunFolder.open(tmp_path / "run", "search", True, {}, [], logs=("metrics", "alphas")):
        with pytest.raises(RunFolderError, match=f"in use by process {os.getpid()}"):
            run_search(tiny(epochs=1), tmp_path / "run", resume=True, progress=False)
        code, err = _cli(["search", "--profile", "smoke", "--out", str(tmp_path / "run"), "--resume", "--quiet"],
                         capsys)
        assert code == 1 and "in use" in err and "Traceback" not in err
    assert _snapshot(tmp_path / "run") == before
    run_search(tiny(epochs=1), tmp_path / "run", resume=True, progress=False)  # free again once released


def test_a_folder_holding_a_run_without_checkpoints_is_never_overwritten(tmp_path):
    folder = tmp_path / "run"
    run_search(tiny(), folder, progress=False)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        (folder / name).unlink()
    before = _snapshot(folder)
    with pytest.raises(RunFolderError, match="already holds a search run"):
        run_search(tiny(seed=1), folder, progress=False)
    with pytest.raises(RunFolderError, match="no checkpoint.pt or checkpoint.prev.pt.*another --out"):
        run_search(tiny(), folder, resume=True, progress=False)
    assert _snapshot(folder) == before


def test_resume_from_the_previous_checkpoint_alone(tmp_path):
    folder = tmp_path / "run"
    run_search(tiny(epochs=3), folder, progress=False)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    whole = strip(load_metrics(folder))
    (folder / "checkpoint.pt").unlink()  # deleted to save space: the one before (epoch 2) is still there
    with pytest.warns(RunFolderWarning, match="checkpoint.pt is missing; resuming from checkpoint.prev.pt"):
        run_search(tiny(epochs=3), folder, resume=True, progress=False)
    assert strip(load_metrics(folder)) == whole  # epoch 3 run again from epoch 2's checkpoint, to the same numbers


def test_a_checkpoint_missing_a_key_is_named(tmp_path):
    folder = tmp_path / "run"
    run_search(tiny(), folder, progress=False)
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        state = torch.load(folder / name, weights_only=False)
        del state["searcher"]
        torch.save(state, folder / name)
    with pytest.raises(RunFolderError, match=r"incomplete \(no searcher\)"):
        run_search(tiny(), folder, resume=True, progress=False)


def test_a_full_disk_keeps_the_last_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "run"
    calls = {"n": 0}
    original = torch.save

    def full_on_second(obj, f, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(obj, f, *a, **k)

    monkeypatch.setattr("dscd.runfolder.torch.save", full_on_second)
    code, err = _cli(["search", "--profile", "smoke", "--set", "epochs=3", "--out", str(folder), "--quiet"], capsys)
    assert code == 1 and "disk is full" in err and "Traceback" not in err
    assert not list(folder.glob("*.tmp")) and torch.load(folder / "checkpoint.pt", weights_only=False)["epoch"] == 1
    monkeypatch.setattr("dscd.runfolder.torch.save", original)
    run_search(search_profile("smoke", epochs=3), folder, resume=True, progress=False)
    assert [r["epoch"] for r in load_metrics(folder)] == [1, 2, 3]


def test_a_failed_log_append_leaves_no_half_line(tmp_path, monkeypatch):
    log = JsonLines(tmp_path / "m.jsonl")
    log.append({"epoch": 1})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("dscd.runfolder.os.fsync", full)  # the bytes went out, the disk could not keep them
    with pytest.raises(RunFolderError, match="disk is full"):
        log.append({"epoch": 2})
    monkeypatch.undo()
    assert log.read() == [{"epoch": 1}] and log.path.read_text() == '{"epoch": 1}\n'


def test_unwritable_folders_are_one_line(tmp_path, monkeypatch, capsys):
    def refuse(self, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code, err = _cli(["search", "--profile", "smoke", "--out", str(tmp_path / "ro" / "run"), "--quiet"], capsys)
    assert code == 1 and "no permission" in err and "Traceback" not in err


# ------------------------------------------------------------------------------ data: recorded, cache keyed


def _tree(root: Path, value: int = 10) -> None:
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(4):
                Image.fromarray(np.full((8, 8, 3), value + i, np.uint8)).save(root / split / c / f"{i}.png")


def test_the_image_cache_sees_a_changed_image_inside_a_class_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DSCD_CACHE", str(tmp_path / "cache"))
    _tree(tmp_path / "data")
    cfg = DataConfig(source=str(tmp_path / "data"), image_size=8)
    first = load_split(cfg, "train").images.clone()
    stamp = os.stat(tmp_path / "data").st_mtime_ns
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "data" / "train" / "a" / "0.png")
    os.utime(tmp_path / "data", ns=(stamp, stamp))  # the root folder looks untouched
    second = load_split(cfg, "train").images
    assert int(first.max()) < 200 and int(second.max()) == 200


def test_runs_record_the_data_by_name_and_refuse_changed_data(tmp_path, monkeypatch):
    _tree(tmp_path / "data")
    monkeypatch.setenv("DSCD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DSCD_CACHE", str(tmp_path / "cache"))
    config = tiny(data=None, per_class=4, test_per_class=2, batch_size=2)
    run_search(config, tmp_path / "run", progress=False)
    for name in ("config.json", "meta.json", "summary.json"):  # no record holds the data's path on this machine
        assert str(tmp_path / "data") not in (tmp_path / "run" / name).read_text(), name
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"] == "data"
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["data"] == "data" and meta["data_fingerprint"] == source_fingerprint(str(tmp_path / "data"))
    (tmp_path / "run" / "summary.json").unlink()  # as if interrupted
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "data" / "train" / "b" / "3.png")
    with pytest.raises(RunFolderError, match="data_fingerprint"):
        run_search(config, tmp_path / "run", resume=True, progress=False)


def test_data_sources_are_recorded_by_name_and_found_under_the_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT, raising=False)
    assert recorded_source("digits") == "digits"
    assert recorded_source("cifar10") == recorded_source(f"cifar10:{tmp_path}/c10") == "cifar10"
    assert recorded_source(str(tmp_path / "sets" / "cifar10-jpg.zip")) == "cifar10-jpg.zip"
    monkeypatch.setenv(DATA_ROOT, str(tmp_path))
    assert recorded_source(str(tmp_path / "sets" / "cifar10-jpg.zip")) == "sets/cifar10-jpg.zip"
    assert recorded_source("/elsewhere/cifar10-jpg.zip") == "cifar10-jpg.zip"  # outside the root: its name
    _tree(tmp_path / "sets" / "tree")
    monkeypatch.chdir(tmp_path / "sets")  # a relative source is read from here first
    assert DataConfig(source="tree").resolved_source() == "tree"
    monkeypatch.chdir(tmp_path.parent)  # not here: under the root, where the record named it from
    assert DataConfig(source="sets/tree").resolved_source() == str(tmp_path / "sets" / "tree")


def test_a_run_recorded_with_a_machines_absolute_path_still_resumes_and_is_reused(tmp_path, monkeypatch):
    from dscd.executors import Job, run_job

    _tree(tmp_path / "data")
    monkeypatch.setenv("DSCD_CACHE", str(tmp_path / "cache"))
    config = tiny(data=str(tmp_path / "data"), per_class=4, test_per_class=2, batch_size=2, epochs=2)
    run = tmp_path / "run"
    run_search(config.replace(epochs=2), run, progress=False)
    # as an older dscd wrote it: config.json, summary.json and the checkpoint name the data by its path elsewhere
    older = "/home/someone/datasets/data"
    for name in ("config.json", "meta.json", "summary.json"):
        record = json.loads((run / name).read_text())
        (record["config"] if name == "summary.json" else record)["data"] = older
        (run / name).write_text(json.dumps(record))
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    checkpoint["config"]["data"] = older
    for name in ("config.json", "meta.json"):
        checkpoint[START_FILES_KEY][name]["data"] = older
    torch.save(checkpoint, run / "checkpoint.pt")
    summary = json.loads((run / "summary.json").read_text())
    stamp = (run / "summary.json").stat().st_mtime_ns
    assert run_job(Job(run, config.to_dict())) == summary  # reused: the same data by content
    assert (run / "summary.json").stat().st_mtime_ns == stamp
    (run / "summary.json").unlink()  # as if interrupted after its last checkpoint: the resume accepts it
    with warnings.catch_warnings():
        warnings.simplefilter("error", RunFolderWarning)  # nothing put back: the older files are its own
        run_search(config, run, resume=True, progress=False)
    assert json.loads((run / "summary.json").read_text())["config"]["data"] == "data"


def test_damaged_data_names_the_member(tmp_path, capsys):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    with zipfile.ZipFile(tmp_path / "d.zip", "w", zipfile.ZIP_STORED) as zf:
        for split in ("train", "test"):
            for c in ("a", "b"):
                for i in range(3):
                    zf.writestr(f"{split}/{c}/{i}.png", buf.getvalue())
        zf.writestr("train/a/bad.jpg", b"this is not an image")
    with pytest.raises(DataError, match="train/a/bad.jpg is not a readable image"):
        load_split(DataConfig(source=str(tmp_path / "d.zip"), image_size=8, per_class=None), "train")
    raw = bytearray((tmp_path / "d.zip").read_bytes())
    at = raw.find(buf.getvalue()[20:40])  # inside the first member's stored bytes
    raw[at] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"member train/a/0.png is damaged .*CRC"):
        load_split(DataConfig(source=str(tmp_path / "crc.zip"), image_size=8, per_class=None), "train")
    code, err = _cli(["search", "--profile", "smoke", "--data", str(tmp_path / "crc.zip"), "--set", "per_class=null",
                      "--out", str(tmp_path / "r"), "--quiet"], capsys)
    assert code == 1 and "damaged" in err and "Traceback" not in err and not (tmp_path / "r").exists()


# ------------------------------------------------------------------------------ configuration values


@pytest.mark.parametrize("changes,match", [
    ({"amp": 1}, "amp must be true or false"),
    ({"channels_last": "yes"}, "channels_last must be true or false"),
    ({"dscd_reset_local_state": 0}, "dscd_reset_local_state must be true or false"),
    ({"ops": 5}, "ops must be a list"),
    ({"dscd_domain": 5}, "dscd_domain must be a list of 2"),
    ({"data": 5}, "data must be a data source"),
    ({"relaxation": "softmax", "ops": ["none"]}, "at least one operation besides 'none'"),
    ({"learning_rate": 1}, "unknown configuration field.*known: .*alpha_lr"),
])
def test_bad_configuration_values_are_named(changes, match):
    with pytest.raises(ValueError, match=match):
        search_profile("smoke", **changes)


def test_set_values_parse_as_yaml_1_2_like_the_files(tmp_path):
    from dscd.config import parse_assignment

    assert parse_assignment("alpha_lr=3e-4") == ("alpha_lr", 3e-4)
    assert parse_assignment("ops=[sep_conv_3x3]") == ("ops", ["sep_conv_3x3"])
    (tmp_path / "c.yaml").write_text("alpha_lr: 3e-4\nepochs: 2\n")
    assert SearchConfig.from_file(tmp_path / "c.yaml").alpha_lr == 3e-4
    (tmp_path / "bad.yaml").write_text("epochs: 0\n")
    with pytest.raises(ValueError, match=r"bad.yaml: epochs must be"):
        SearchConfig.from_file(tmp_path / "bad.yaml")


def test_a_damaged_metrics_file_is_named(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2\n')
    with pytest.raises(RunFolderError, match=r"metrics.jsonl, line 2, is not JSON"):
        load_metrics(tmp_path)


# ------------------------------------------------------------------------------ the command line


@pytest.mark.parametrize("argv,code,message", [
    (["search", "--set", "batch_size=[", "--out", "{tmp}/r"], 2, "is not valid YAML"),
    (["search", "--set", "data=5", "--out", "{tmp}/r"], 2, "data must be a data source"),
    (["search", "--set", "relaxation=softmax", "--set", "ops=[none]", "--out", "{tmp}/r"], 2, "besides 'none'"),
    (["search", "--set", "alhpa_lr=1", "--out", "{tmp}/r"], 2, "unknown configuration field.*alpha_lr"),
    (["search", "--out", "{tmp}/file"], 2, "is a file, not a folder"),
    (["search", "--out", "{tmp}/file/run"], 2, "lies under .*file, which is a file"),
    (["train", "--genotype", "{tmp}/g.json", "--out", "{tmp}/file"], 2, "is a file"),
    (["reproduce", "--outputs", "{tmp}/file"], 2, "--outputs .* is a file"),
    (["reproduce", "--only", "99", "--outputs", "{tmp}/new"], 2, "no notebook numbered 99"),
    (["bench", "--out", "{tmp}/file", "--runs", "2", "--budget", "10"], 2, "--out .* is a file"),
    (["bench", "--methods", "adam_inf"], 2, "positive finite"),
    (["describe", "{tmp}/g.json", "--channels", "0"], 2, "--channels must be at least 2"),
    (["describe", "{tmp}/g.json", "--image-size", "1"], 2, "--image-size must be at least"),
    (["describe", "{tmp}/g.json", "--plot", "{tmp}/missing/g.png"], 2, "does not exist"),
    (["animate", "--out", "{tmp}/file/a.gif"], 2, "file is a file"),
    (["animate", "--out", "{tmp}/a.gif", "--lo", "3", "--hi", "-3"], 2, "--lo < --hi"),
])
def test_user_errors_are_one_line_without_traceback(tmp_path, capsys, argv, code, message):
    from tests.test_train import GENOTYPE

    (tmp_path / "file").write_text("a file, not a folder")
    GENOTYPE.save(tmp_path / "g.json")
    got, err = _cli([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert got == code, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not (tmp_path / "new").exists() and not (tmp_path / "r").exists()
    assert (tmp_path / "file").read_text() == "a file, not a folder"


def test_divergence_messages(tmp_path, monkeypatch):
    original = Searcher.objective

    def nan_after(limit):
        calls = {"n": 0}

        def objective(self, x, y):
            calls["n"] += 1
            loss, logits = original(self, x, y)
            return (loss * float("nan"), logits) if calls["n"] > limit else (loss, logits)
        return objective

    # two objective calls per step, ten steps per epoch: call 26 is step 13's weight step, step 14's alpha step
    # (epoch 2, step 4) is the first non-finite loss DSCD reads, and it stops there
    monkeypatch.setattr(Searcher, "objective", nan_after(25))
    with pytest.raises(SearchDiverged, match="non-finite alpha_loss in epoch 2, by step 4; the last good checkpoint"):
        run_search(tiny(optimizer="dscd", dscd_T=50), tmp_path / "dscd", progress=False)
    monkeypatch.setattr(Searcher, "objective", nan_after(0))
    with pytest.raises(SearchDiverged, match="in epoch 1, .*no checkpoint had been written yet"):
        run_search(tiny(), tmp_path / "adam", progress=False)


# ------------------------------------------------------------------------------ dscd reproduce


def test_reproduce_names_a_malformed_notebook_and_runs_the_others(tmp_path, capsys):
    from tests.test_reproduce import _notebook

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    (nbs / "01_broken.ipynb").write_text("{ not json")
    _notebook(nbs / "03_fine.ipynb", "print('ok')")
    code, err = _cli(["reproduce", "--profile", "smoke", "--notebooks", str(nbs), "--outputs", str(tmp_path / "o"),
                      "--quiet"], capsys)
    assert code == 1 and "01_broken.ipynb cannot be read" in err
    state = json.loads((tmp_path / "o" / "smoke" / "reproduce.json").read_text())["notebooks"]
    assert state["01"]["status"] == "failed" and state["03"]["status"] == "ok"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = _cli(["reproduce", "--notebooks", str(empty), "--outputs", str(tmp_path / "o2")], capsys)
    assert code == 2 and "holds no numbered notebooks" in err and not (tmp_path / "o2").exists()


def test_a_run_refused_before_it_started_leaves_no_folder(tmp_path):
    """The folder (with its lock file) that a failed call created is removed again."""
    with pytest.raises(ValueError, match="batch_size"):
        run_search(tiny(batch_size=500), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_the_run_folder_and_the_follower_rank_share_one_writer_interface(tmp_path):
    """A search or training writes through :class:`RunWriter`; rank 0 holds a RunFolder and the other ranks
    a FollowerFolder, whose methods take the same arguments (so a call that works on one works on both)."""
    import inspect

    from dscd.distributed import FollowerFolder, NoRecords
    from dscd.runfolder import JsonLines, RecordLog, RunFolder, RunWriter

    def parameters(cls, name):
        return list(inspect.signature(getattr(cls, name)).parameters)

    assert isinstance(RunFolder(tmp_path / "r", "search"), RunWriter)
    assert isinstance(FollowerFolder(tmp_path / "r", None), RunWriter)
    for name in ("start", "log", "write_json", "save_checkpoint"):
        assert parameters(RunFolder, name) == parameters(FollowerFolder, name) == parameters(RunWriter, name), name
    assert isinstance(JsonLines(tmp_path / "m.jsonl"), RecordLog) and isinstance(NoRecords(), RecordLog)
    for name in ("append", "read"):
        assert parameters(JsonLines, name) == parameters(NoRecords, name) == parameters(RecordLog, name), name
    assert NoRecords().read(limit=3) == [] and FollowerFolder(tmp_path, None).log("metrics").read(2) == []
