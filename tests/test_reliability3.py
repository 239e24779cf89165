"""Reliability, third round: no write follows a link, the one-writer lock cannot be sidestepped, an export is one
self-contained file replaced atomically, set-aside files are never replaced, and no run is stranded."""

import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from dscd.runfolder import RunFolderError, RunFolderWarning, acquire_lock
from dscd.search import load_metrics, run_search
from tests.test_reliability import _strip
from tests.test_runfolder import _cli, _snapshot, tiny

ROOT = Path(__file__).resolve().parents[1]
VICTIM_TEXT = "a file of the user's that no dscd command may change\n"


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "IMPORTANT.txt"
    path.write_text(VICTIM_TEXT)
    return path


# ---------------------------------------------------------------- 1. no write follows a link


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_kept(tmp_path, victim, whole):
    folder = tmp_path / "run"
    shutil.copytree(whole, folder)
    (folder / ".lock").unlink(missing_ok=True)
    (folder / ".lock").symlink_to(victim)
    with pytest.raises(RunFolderError, match=r"\.lock is a link or not a regular file"):
        run_search(tiny(epochs=3), folder, resume=True, progress=False)
    assert victim.read_text() == VICTIM_TEXT


def test_links_planted_at_temporary_names_are_never_written_through(tmp_path, victim):
    folder = tmp_path / "new"
    folder.mkdir()
    planted = ("checkpoint.pt.tmp", "meta.json.tmp", "config.json.tmp", "metrics.jsonl.tmp")
    for name in planted:
        (folder / name).symlink_to(victim)
    run_search(tiny(epochs=1), folder, progress=False)
    assert victim.read_text() == VICTIM_TEXT and all((folder / name).is_symlink() for name in planted)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp") and p.name not in planted]


def test_a_run_file_replaced_by_a_link_is_replaced_not_written_through(tmp_path, victim, whole):
    folder = tmp_path / "run"
    shutil.copytree(whole, folder)
    (folder / "checkpoint.prev.pt").unlink()
    (folder / "checkpoint.prev.pt").symlink_to(victim)  # the next checkpoint moves checkpoint.pt onto this name
    (folder / "summary.json").unlink()
    (folder / "summary.json").symlink_to(victim)
    run_search(tiny(), folder, resume=True, progress=False)  # a finished run: finishes again
    assert victim.read_text() == VICTIM_TEXT and not (folder / "summary.json").is_symlink()


# ---------------------------------------------------------------- 2. the lock cannot be sidestepped


def test_deleting_the_lock_file_does_not_let_a_second_writer_in(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    held = acquire_lock(folder, "advice")
    try:
        (folder / ".lock").unlink()  # "a stale lock file"
        with pytest.raises(RunFolderError, match="is in use"):
            acquire_lock(folder, "advice")
        (folder / ".lock").write_text("replaced by hand\n")
        with pytest.raises(RunFolderError, match="in use by replaced by hand"):
            acquire_lock(folder, "advice")
    finally:
        held.close()
    acquire_lock(folder, "advice").close()  # released with its holder


def test_a_second_process_after_the_lock_file_was_deleted_exits_1_and_every_epoch_is_recorded_once(tmp_path):
    folder = tmp_path / "run"
    args = [sys.executable, "-m", "dscd", "search", "--profile", "smoke", "--epochs", "400", "--quiet",
            "--set", "test_every=0", "--out", str(folder)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        while first.poll() is None and not load_metrics(folder):  # waits on what it needs: a first record
            time.sleep(0.05)
        assert first.poll() is None, "the first search ended before a second could meet it"
        (folder / ".lock").unlink()
        second = subprocess.run(args + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=300)
        assert first.poll() is None, "the first search (400 epochs) ended before the second met it"
    finally:
        first.kill()  # what it recorded so far is what this test reads
        first.wait()
    assert second.returncode == 1 and "is in use by" in second.stderr
    assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
    epochs = [r["epoch"] for r in load_metrics(folder)]
    assert epochs == list(range(1, len(epochs) + 1))  # every epoch once: no second writer appended


# ---------------------------------------------------------------- 3. an export is one self-contained file


def test_an_export_is_one_file_that_runs_on_its_own_and_leaves_nothing_behind(trained, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "out"
    out.mkdir()
    code, err = _cli(["export", str(trained), "--onnx", str(out / "m.onnx")], capsys)
    assert code == 0, err
    assert [p.name for p in out.iterdir()] == ["m.onnx"]  # no m.onnx.tmp.data, no temporary
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(out / "m.onnx", alone / "m.onnx")
    session = ort.InferenceSession(str(alone / "m.onnx"))
    shape = session.get_inputs()[0].shape
    logits = session.run(None, {"images": torch.zeros(2, shape[1], shape[2], shape[3]).numpy()})[0]
    assert logits.shape[0] == 2


def test_an_interrupted_re_export_leaves_the_old_file_byte_for_byte(trained, tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxscript")
    import onnx

    target = tmp_path / "m.onnx"
    assert _cli(["export", str(trained), "--onnx", str(target)], capsys)[0] == 0
    before = target.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C after torch wrote its files, before the rename

    monkeypatch.setattr(onnx, "load", interrupted)
    code, err = _cli(["export", str(trained), "--onnx", str(target)], capsys)
    assert code != 0 and "interrupted" in err
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


@pytest.mark.parametrize("name", [".lock", "checkpoint.corrupt.pt", "checkpoint.corrupt-2.pt", "x.onnx.tmp"])
def test_export_refuses_the_files_of_a_run_folder(trained, tmp_path, capsys, name):
    folder = tmp_path / "run"
    shutil.copytree(trained, folder)
    (folder / name).write_text("kept\n")
    before = _snapshot(folder)
    code, err = _cli(["export", str(folder), "--onnx", str(folder / name)], capsys)
    assert code == 2 and err.count("\n") == 1 and "would replace a run's own file" in err
    assert _snapshot(folder) == before and (folder / name).read_text() == "kept\n"


# ---------------------------------------------------------------- 5. set-aside checkpoints are kept


def test_a_second_corrupt_checkpoint_is_set_aside_beside_the_first(tmp_path, whole):
    folder = tmp_path / "run"
    shutil.copytree(whole, folder)
    (folder / "checkpoint.corrupt.pt").write_bytes(b"the first one set aside")
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(RunFolderWarning, match="moved to checkpoint.corrupt-1.pt"):
        run_search(tiny(), folder, resume=True, progress=False)
    assert (folder / "checkpoint.corrupt.pt").read_bytes() == b"the first one set aside"
    assert (folder / "checkpoint.corrupt-1.pt").read_bytes() == b"not a checkpoint"


# ---------------------------------------------------------------- 4. never stranded


def test_a_run_stopped_between_its_first_record_and_its_first_checkpoint_resumes_exactly(tmp_path, whole):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("config.json", "meta.json"):
        shutil.copy(whole / name, folder / name)
    first = (whole / "metrics.jsonl").read_text().splitlines()[0]
    (folder / "metrics.jsonl").write_text(first + "\n")
    (folder / "alphas.jsonl").write_text((whole / "alphas.jsonl").read_text().splitlines()[0] + "\n")
    run_search(tiny(), folder, resume=True, progress=False)
    assert _strip(load_metrics(folder)) == _strip(load_metrics(whole))


def test_a_checkpoint_that_torch_cannot_write_is_one_error_and_leaves_no_temporary(tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    folder = tmp_path / "run"
    with pytest.raises(RunFolderError, match="is the disk full.*no checkpoint was written yet"):
        run_search(tiny(epochs=1), folder, progress=False)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    run_search(tiny(epochs=1), folder, resume=True, progress=False)  # the first record is there: it starts afresh
    assert len(load_metrics(folder)) == 1 and (folder / "summary.json").is_file()


def test_resume_puts_back_an_edited_config_and_a_deleted_meta(tmp_path, whole):
    folder = tmp_path / "run"
    shutil.copytree(whole, folder)
    (folder / "config.json").write_text((whole / "config.json").read_text().replace('"seed": 0', '"seed": 7'))
    (folder / "meta.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_search(tiny(), folder, resume=True, progress=False)
    said = " ".join(str(w.message) for w in caught if issubclass(w.category, RunFolderWarning))
    assert "config.json was edited" in said and "meta.json was missing" in said
    for name in ("config.json", "meta.json"):
        assert (folder / name).read_text() == (whole / name).read_text()


# ---------------------------------------------------------------- 3. configurations that cannot hurt


def test_a_yaml_alias_bomb_is_refused_in_seconds_under_a_memory_limit(tmp_path):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]  # 9^10 strings if expanded
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n")
    script = ("import resource, sys\nfrom dscd.config import load_yaml\n"  # torch is loaded, then 512 MiB more
              "size = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
              "resource.setrlimit(resource.RLIMIT_AS, (size + (512 << 20), size + (512 << 20)))\n"
              "try:\n    load_yaml(open(sys.argv[1]).read(), sys.argv[1])\n"
              "except ValueError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "bomb.yaml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "anchors and aliases (&name, *name) are not accepted" in done.stdout


@pytest.mark.parametrize(("assignment", "message"), [
    ("epochs=1:30", "epochs must be an integer >= 1, got '1:30'"),      # YAML 1.1's sexagesimal 90
    ("epochs=0b11", "epochs must be an integer >= 1, got '0b11'"),      # YAML 1.1's binary 3
    ("epochs=1_000", "epochs must be an integer >= 1, got '1_000'"),
    ("amp=yes", "amp must be true or false, got 'yes'"),
    ("ops=[&a x, *a]", "anchors and aliases"),
    ("ops={a: 1, a: 2}", "the key 'a' is given twice"),
    ("ops=" + "[" * 3000 + "]" * 3000, "nests too deeply"),
    ("layers=2", "layers must be an integer >= 3, got 2"),
    ("dscd_domain=[-1e308, 1e308]", "dscd_domain must lie within [-1000, 1000]"),
    ("dscd_K=1000000000000", "dscd_K must be at most 10,000,000"),
    ("image_size=1000000", "image_size must be at most 1,024"),
    ("profile=/../../../elsewhere/x", "profile must be one of smoke, quick, paper"),
    ("ops=" + str([["x"] * 50] * 50).replace("'", ""), "ops must be a list of str values, got [['x', 'x'"),
])
def test_bad_set_values_are_one_short_line(tmp_path, capsys, assignment, message):
    code, err = _cli(["search", "--profile", "smoke", "--set", assignment, "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err and len(err) < 400
    assert not (tmp_path / "r").exists()


def test_yaml_12_numbers_in_set_and_files(tmp_path):
    from dscd.config import parse_assignment
    from dscd.search import SearchConfig

    assert parse_assignment("epochs=010") == ("epochs", 10)  # YAML 1.2: decimal, not octal 8
    assert parse_assignment("alpha_lr=3e-4") == ("alpha_lr", 3e-4)
    assert parse_assignment("x=0o17") == ("x", 15) and parse_assignment("x=0x1F") == ("x", 31)
    (tmp_path / "c.yaml").write_text("profile: smoke\nepochs: 3\nepochs: 4\n")
    with pytest.raises(ValueError, match="c.yaml: the key 'epochs' is given twice"):
        SearchConfig.from_file(tmp_path / "c.yaml")


def test_a_genotype_name_that_would_leave_runs_is_refused(tmp_path, capsys, monkeypatch):
    import json

    from dscd.genotype import load_genotype

    monkeypatch.chdir(tmp_path)
    crafted = tmp_path / "g.json"
    crafted.write_text(json.dumps({"../../../elsewhere/x": load_genotype("DARTS_V2").to_dict()}))
    code, err = _cli(["train", "--genotype", str(crafted), "--profile", "smoke", "--name", "../../../elsewhere/x"],
                     capsys)
    assert code == 2 and err.count("\n") == 1 and "--name" in err and "plain name" in err
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


def test_report_with_a_root_without_results_is_refused(tmp_path, capsys):
    code, err = _cli(["report", "--root", str(tmp_path / "nonexistent"), "--check"], capsys)
    assert code == 2 and "has no results/ folder" in err


# ---------------------------------------------------------------- 6. absurd sizes in crafted files


@pytest.mark.parametrize(("key", "value"), [("channels", 10**9), ("layers", 10**6), ("num_classes", -1),
                                            ("image_size", 10**7), ("in_channels", 10**5)])
def test_a_model_file_claiming_an_absurd_size_is_one_line_before_anything_is_built(trained, tmp_path, capsys,
                                                                                    key, value):
    payload = torch.load(trained / "model.pt", weights_only=True)
    torch.save({**payload, key: value}, tmp_path / "crafted.pt")
    code, err = _cli(["export", str(tmp_path / "crafted.pt"), "--onnx", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and err.count("\n") == 1 and f"claims {key}" in err


def test_a_decompression_bomb_in_a_data_zip_is_one_line(tmp_path):
    import zipfile

    from PIL import Image

    from dscd.data import DataConfig, DataError, load_split
    from tests.test_data import make_tree

    tree = make_tree(tmp_path / "src")
    bomb = tmp_path / "bomb.png"
    Image.new("1", (8000, 8000)).save(bomb)  # a few kB on disk, 64 M pixels decoded (PIL itself warns only)
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(tree.rglob("*.png")):
            z.write(f, f.relative_to(tree.parent))
        z.write(bomb, "tiny/train/cat/9999.png")
    with pytest.raises(DataError, match="claims 8000x8000 pixels"):
        load_split(DataConfig(source=str(archive), image_size=12), "train")


_WINDOWS = """
import errno, os, sys, types
from pathlib import Path
sys.modules["fcntl"] = None  # as on Windows
held = {}

def locking(fd, mode, nbytes):  # msvcrt.locking's contract: a byte range from the file position, per process
    key = (os.fstat(fd).st_ino, os.lseek(fd, 0, os.SEEK_CUR), nbytes)
    if mode == 2:  # LK_NBLCK
        if key in held:
            raise OSError(errno.EACCES, "Permission denied")
        held[key] = fd
    elif mode == 0:  # LK_UNLCK
        held.pop(key)

import dscd.search, dscd.train
from dscd.runfolder import RunFolderError, acquire_lock
from tests.test_runfolder import tiny
# after the imports: the standard library takes a present msvcrt for Windows (subprocess imports _winapi)
sys.modules["msvcrt"] = types.SimpleNamespace(LK_NBLCK=2, LK_UNLCK=0, locking=locking)

folder = Path(sys.argv[1])
first = acquire_lock(folder, "wait for it")
print("holder:", (folder / ".lock").read_text().strip())
try:
    acquire_lock(folder, "wait for it")
except RunFolderError as err:
    print("refused:", err)
first.close()
acquire_lock(folder, "x").close()
print("released:", not held)
summary = dscd.search.run_search(tiny(), folder / "run", progress=False)
print("search:", summary["epochs"], not held)
sys.modules["msvcrt"] = None
try:
    acquire_lock(folder, "x")
except RunFolderError as err:
    print("neither:", err)
"""


def test_without_fcntl_run_folders_lock_with_windows_msvcrt_and_keep_the_guarantees(tmp_path):
    """Windows has no fcntl: dscd.search and dscd.train import, and the folder lock is msvcrt's on ``.lock``
    (simulated here with msvcrt.locking's contract; this machine is Linux): the holder is named, a second
    writer is refused, closing releases, a whole search runs; with neither lock there is one line."""
    done = subprocess.run([sys.executable, "-c", _WINDOWS, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["holder"].startswith("process ") and " on " in lines["holder"]
    assert lines["refused"] == f"{tmp_path} is in use by {lines['holder']}: wait for it"
    assert lines["released"] == "True"
    assert lines["search"] == f"{tiny().epochs} True"
    assert "neither POSIX (fcntl) nor Windows (msvcrt) file locks" in lines["neither"]
