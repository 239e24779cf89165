"""Reliability, second round: each case a user met (a run killed early, code in a checkpoint, an export over
its own source, two writers on one outputs folder, a moved outputs folder, tracebacks, DSCD misused)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscd.executors import Job, run_job
from dscd.runfolder import RunFolder, RunFolderError
from dscd.search import SEARCH_LOGS, load_metrics, run_search
from tests.test_runfolder import _cli, _snapshot, tiny

ROOT = Path(__file__).resolve().parents[1]


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def _killed_before_first_checkpoint(folder: Path, whole: Path) -> None:
    """What a search killed in its first epoch leaves: its start files and an empty log, nothing computed."""
    folder.mkdir()
    for name in ("config.json", "meta.json"):
        shutil.copy(whole / name, folder / name)
    (folder / "metrics.jsonl").write_text("")


# ---------------------------------------------------------------- 1. a run killed before its first checkpoint


def test_a_search_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path, whole):
    folder = tmp_path / "killed"
    _killed_before_first_checkpoint(folder, whole)
    assert RunFolder.holds_run_to_resume(folder, "search", SEARCH_LOGS)
    with pytest.raises(RunFolderError, match="already holds a search run"):  # without --resume: refused as before
        run_search(tiny(), folder, progress=False)
    run_search(tiny(), folder, resume=True, progress=False)
    assert _strip(load_metrics(folder)) == _strip(load_metrics(whole))


def test_the_executor_restarts_a_job_killed_before_its_first_checkpoint(tmp_path, whole):
    folder = tmp_path / "job"
    _killed_before_first_checkpoint(folder, whole)
    summary = run_job(Job(folder, tiny().to_dict()))  # what execute, Ray's retries and dscd reproduce call
    assert summary["epochs"] == 2 and len(load_metrics(folder)) == 2


def test_a_killed_run_of_another_configuration_is_refused_and_kept(tmp_path, whole):
    folder = tmp_path / "killed"
    _killed_before_first_checkpoint(folder, whole)
    before = _snapshot(folder)
    with pytest.raises(RunFolderError, match="different configuration .*seed: checkpoint 0 vs now 1"):
        run_search(tiny(seed=1), folder, resume=True, progress=False)
    assert _snapshot(folder) == before


def test_a_folder_with_a_record_but_no_checkpoint_is_still_refused(tmp_path, whole):
    folder = tmp_path / "run"
    shutil.copytree(whole, folder)
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
    while proc.poll() is None and not (folder / "config.json").is_file():
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


# ------------------------------------------------------- 2-3. no code runs from a file; export keeps its source

class _Payload:
    """A pickle that runs a shell command when unpickled, as a crafted checkpoint would."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_no_code_in_a_checkpoint_runs_on_export_load_or_resume(trained, tmp_path, capsys):
    import shutil

    import torch

    from dscd.model_files import ModelFileError, load_model

    folder = tmp_path / "crafted"
    shutil.copytree(trained, folder)
    (folder / "model.pt").unlink()  # load_model and export then read the checkpoint
    marker = tmp_path / "ran"
    torch.save({"kind": "train", "trainer": _Payload(marker), "config": {}}, folder / "checkpoint.pt")
    with pytest.raises(ModelFileError, match="which no dscd file holds.*nothing in it ran"):
        load_model(folder)
    code, err = _cli(["export", str(folder), "--onnx", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and err.count("\n") == 1 and "nothing in it ran" in err
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        torch.save({"kind": "search", "config": {}, "epoch": 1, "x": _Payload(marker)}, tmp_path / name)
    with pytest.raises(RunFolderError, match="nothing in it ran"):
        RunFolder(tmp_path, "search")._read_checkpoint(tmp_path / "checkpoint.pt", ("epoch",))
    assert not marker.exists()


def test_a_corrupt_checkpoint_without_a_model_file_is_one_line(trained, tmp_path, capsys):
    import shutil

    folder = tmp_path / "corrupt"
    shutil.copytree(trained, folder)
    (folder / "model.pt").unlink()
    (folder / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, err = _cli(["export", str(folder), "--onnx", str(tmp_path / "m.onnx")], capsys)
    assert code == 2 and err.count("\n") == 1 and "corrupt or unreadable" in err


@pytest.mark.parametrize("target", ["model.pt", "checkpoint.pt", "summary.json"])
def test_export_never_replaces_a_file_of_its_run(trained, tmp_path, capsys, target):
    import shutil

    pytest.importorskip("onnxscript")
    folder = tmp_path / "run"
    shutil.copytree(trained, folder)
    before = _snapshot(folder)
    code, err = _cli(["export", str(folder), "--onnx", str(folder / target)], capsys)
    assert code == 2 and err.count("\n") == 1 and "would replace a run's own file" in err
    code, err = _cli(["export", str(folder / "model.pt"), "--onnx", str(folder / "model.pt")], capsys)
    assert code == 2 and "would replace" in err
    assert _snapshot(folder) == before


@pytest.mark.parametrize("opset", ["3", "17", "99"])
def test_an_opset_the_exporter_cannot_write_is_one_line(trained, tmp_path, capsys, opset):
    pytest.importorskip("onnxscript")
    code, err = _cli(["export", str(trained), "--onnx", str(tmp_path / "m.onnx"), "--opset", opset], capsys)
    assert code == 2 and err.count("\n") == 1 and "opset must be an integer from 18" in err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "m.onnx.tmp").exists()


# ---------------------------------------------------------------- 7. the DSCD optimiser misused


def _dscd_in_a_global_phase(refresh_best=False):
    import torch

    from dscd import DSCD

    x = torch.nn.Parameter(torch.linspace(-1, 1, 6))
    opt = DSCD([x], torch.optim.Adam([x], lr=0.05), total_steps=200, T=3, seed=0, refresh_best=refresh_best)

    def f():
        return ((x - 0.3) ** 2).sum()

    while not opt.next_step_is_global:
        opt.step(f)
    return x, opt, f


@pytest.mark.parametrize("refresh_best", [False, True])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_global_step_that_fails_leaves_x_best_and_the_state_as_before(refresh_best, error):
    import copy

    import torch

    x, opt, f = _dscd_in_a_global_phase(refresh_best)
    _, twin, g = _dscd_in_a_global_phase(refresh_best)
    before = copy.deepcopy(opt.state_dict())
    calls = []

    def failing():
        calls.append(1)
        if len(calls) == (2 if refresh_best else 1):  # in the proposal's evaluation
            raise error("interrupted")
        return f()

    with pytest.raises(error):
        opt.step(failing)
    assert torch.equal(x.detach(), torch.from_numpy(opt._engine.x_best[0]).to(x.dtype)) and opt.at_best()
    after = opt.state_dict()
    assert all(torch.equal(after["engine"][k], v) if isinstance(v, torch.Tensor) else after["engine"][k] == v
               for k, v in before["engine"].items())
    for _ in range(20):  # and the run goes on as if the failed call had never been made
        opt.step(f)
        twin.step(g)
    assert torch.equal(x.detach(), twin.param_groups[0]["params"][0].detach())
    assert opt.stats == twin.stats


@pytest.mark.parametrize("change, match", [
    (lambda e: e.update(window=e["window"][:, :5]), r"window \(1, 5\)"),
    (lambda e: e.update(window_pos=10**6), r"window_pos 1000000"),
    (lambda e: e.update(window_pos=-1), r"window_pos -1"),
    (lambda e: e.update(step_count=1.5), r"step_count 1.5"),
    (lambda e: e.update(rng_states=[]), r"rng_states of 0 lanes"),
])
def test_an_altered_engine_state_is_refused_before_anything_changes(change, match):
    import copy

    x, opt, f = _dscd_in_a_global_phase()
    state = copy.deepcopy(opt.state_dict())
    change(state["engine"])
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    assert opt.state_dict()["engine"]["step_count"] == before["engine"]["step_count"]
    opt.step(f)  # still usable


# ---------------------------------------------------------------- 4-5. one writer per outputs folder; a copy works


def _tiny_notebooks(folder: Path) -> Path:
    from tests.test_reproduce import _notebook

    folder.mkdir()
    for n in ("01", "03"):
        _notebook(folder / f"{n}_nb.ipynb", "x = 1")
    return folder


def _statuses(runs):
    return {r.number: r.status for r in runs}


def test_a_second_regeneration_of_one_outputs_folder_is_refused_in_one_line(tmp_path, capsys):
    from dscd.paper.reproduce import reproduce
    from dscd.runfolder import acquire_lock

    nbs, out = _tiny_notebooks(tmp_path / "nbs"), tmp_path / "out"
    assert _statuses(reproduce("smoke", only=["01"], outputs=out, notebooks_dir=nbs, progress=False)) == {"01": "ran"}
    record = (out / "smoke" / "reproduce.json").read_text()
    lock = acquire_lock(out / "smoke", "test")  # as another `dscd reproduce` running there would hold it
    try:
        code, err = _cli(["reproduce", "--profile", "smoke", "--only", "03", "--notebooks", str(nbs), "--outputs",
                          str(out), "--quiet"], capsys)
        assert code == 1 and err.count("\n") == 1 and "in use by process" in err and "another --outputs" in err
    finally:
        lock.close()
    assert (out / "smoke" / "reproduce.json").read_text() == record  # nothing of the first call was lost
    assert _statuses(reproduce("smoke", outputs=out, notebooks_dir=nbs, progress=False)) == {
        "01": "skipped", "03": "ran"}


def test_a_copied_outputs_folder_keeps_working_and_links_its_own_files(tmp_path):
    import json
    import shutil

    from dscd.paper.reproduce import reproduce

    nbs, a = _tiny_notebooks(tmp_path / "nbs"), tmp_path / "A"
    reproduce("smoke", only=["01"], outputs=a, notebooks_dir=nbs, progress=False)
    shutil.copytree(a, tmp_path / "A2")
    shutil.rmtree(a)  # moved, not only copied
    runs = reproduce("smoke", outputs=tmp_path / "A2", notebooks_dir=nbs, progress=False)
    assert _statuses(runs) == {"01": "skipped", "03": "ran"}  # where the folder lies is not what was computed
    record = json.loads((tmp_path / "A2" / "smoke" / "reproduce.json").read_text())
    assert record["notebooks"]["01"]["output"] == "notebooks/01_nb.ipynb"
    index = (tmp_path / "A2" / "smoke" / "index.html").read_text()
    assert "href='notebooks/01_nb.ipynb'" in index and "href='notebooks/03_nb.ipynb'" in index


@pytest.mark.parametrize("content", ["[1, 2]", '{"notebooks": {"03": 5}}', '{"notebooks": [1]}', "null", "{"])
def test_a_reproduce_record_of_any_shape_counts_as_absent(tmp_path, content):
    from dscd.paper.reproduce import reproduce

    nbs, out = _tiny_notebooks(tmp_path / "nbs"), tmp_path / "out"
    (out / "smoke").mkdir(parents=True)
    (out / "smoke" / "reproduce.json").write_text(content)
    assert _statuses(reproduce("smoke", outputs=out, notebooks_dir=nbs, progress=False)) == {"01": "ran", "03": "ran"}


# ---------------------------------------------------------------- 6. one line, never a traceback


def _genotype_text(tmp_path, text):
    path = tmp_path / "g.py"
    path.write_text(text)
    return path


DARTS_PAIRS = ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
               "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)]")


@pytest.mark.parametrize("text, message", [
    (f"Genotype(normal={DARTS_PAIRS}, normal_concat=5, reduce={DARTS_PAIRS}, reduce_concat=[2, 3, 4, 5])",
     "normal_concat=5 must be a list or range"),
    (f"Genotype(normal={DARTS_PAIRS}, normal_concat=range(2, 300000000), reduce={DARTS_PAIRS}, "
     "reduce_concat=range(2, 6))", "has 299999998 elements"),
    (f"Genotype(normal={DARTS_PAIRS}, normal_concat=range(2.0, 6), reduce={DARTS_PAIRS}, reduce_concat=range(2, 6))",
     "range takes one to three integers"),
    (f"Genotype(normal={DARTS_PAIRS.replace('1)', '1.7)', 1)}, normal_concat=range(2, 6), reduce={DARTS_PAIRS}, "
     "reduce_concat=range(2, 6))", "node indices must be integers"),
    (f"Genotype(normal={DARTS_PAIRS.replace('1)', 'True)', 1)}, normal_concat=range(2, 6), reduce={DARTS_PAIRS}, "
     "reduce_concat=range(2, 6))", "node indices must be integers"),
    (f"A = Genotype(normal={DARTS_PAIRS}, normal_concat=range(2, 6), reduce={DARTS_PAIRS}, reduce_concat=range(2, 6))"
     f"\nA = Genotype(normal={DARTS_PAIRS}, normal_concat=range(2, 6), reduce={DARTS_PAIRS}, "
     "reduce_concat=range(2, 6))", "defined twice"),
])
def test_malformed_genotype_text_is_one_line(tmp_path, capsys, text, message):
    code, err = _cli(["describe", str(_genotype_text(tmp_path, text))], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_an_edge_index_of_another_type_is_refused_in_python_too():
    from dscd.genotype import Genotype, GenotypeError

    with pytest.raises(GenotypeError, match="integer node indices"):
        Genotype(normal=(("sep_conv_3x3", 1.7, 2),), reduce=(("sep_conv_3x3", 0, 2),))
    with pytest.raises(GenotypeError, match="integer node indices"):
        Genotype(normal=(("sep_conv_3x3", True, 2),), reduce=(("sep_conv_3x3", 0, 2),))


def test_describe_counts_a_huge_network_without_allocating_it(capsys):
    import tracemalloc

    tracemalloc.start()
    code, _ = _cli(["describe", "DARTS_V2", "--channels", "100000"], capsys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert code == 0 and peak < 200 * 2**20  # counted on the meta device, not built
    from dscd.eval_network import EvalNetwork, genotype_size, network_size
    from dscd.genotype import load_genotype

    g = load_genotype("DARTS_V2")
    assert genotype_size(g, channels=8, layers=5, image_size=16) == network_size(
        EvalNetwork(g, channels=8, layers=5), 16)


def test_a_model_file_missing_a_key_or_holding_other_weights_is_one_line(trained, tmp_path, capsys):
    import torch

    from dscd.genotype import load_genotype

    payload = torch.load(trained / "model.pt", weights_only=True)
    broken = {k: v for k, v in payload.items() if k != "channels"}
    torch.save(broken, tmp_path / "missing.pt")
    other = {**payload, "genotype": load_genotype("DARTS_V1").to_dict()}  # another genotype's weights
    torch.save(other, tmp_path / "other.pt")
    for name, message in (("missing.pt", "lacks channels"), ("other.pt", "do not fit the network")):
        code, err = _cli(["export", str(tmp_path / name), "--onnx", str(tmp_path / "m.onnx")], capsys)
        assert code == 2 and err.count("\n") == 1 and message in err, err


# ---------------------------------------------------------------- 8. smaller


def test_a_bad_distributed_timeout_names_the_variable(monkeypatch):
    from dscd.distributed import _timeout_seconds

    for text in ("abc", "-5", "0", "inf", "nan"):
        monkeypatch.setenv("DSCD_DIST_TIMEOUT", text)
        with pytest.raises(ValueError, match=f"DSCD_DIST_TIMEOUT must be a positive number of seconds, got '{text}'"):
            _timeout_seconds()
    monkeypatch.setenv("DSCD_DIST_TIMEOUT", "60")
    assert _timeout_seconds() == 60.0


def test_a_gpu_this_machine_lacks_is_refused_not_replaced_by_the_cpu(tmp_path, capsys, monkeypatch):
    import torch

    from dscd.executors import LocalExecutor

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match=r"devices \[7\] asked for, but torch sees no CUDA device"):
        LocalExecutor(devices=[7])
    code, err = _cli(["reproduce", "--profile", "smoke", "--devices", "7", "--outputs", str(tmp_path)], capsys)
    assert code == 2 and err.count("\n") == 1 and "torch sees no CUDA device" in err
    assert not any(tmp_path.iterdir())


def test_a_resume_without_tensorboard_continues_the_logs_its_run_started(tmp_path):
    pytest.importorskip("tensorboard")
    folder = tmp_path / "run"
    run_search(tiny(epochs=3, tensorboard=True), folder, progress=False)
    for name in ("summary.json", "genotype.json"):
        (folder / name).unlink()
    (folder / "checkpoint.pt").unlink()  # back to epoch 2, from checkpoint.prev.pt
    import shutil
    import warnings

    shutil.rmtree(folder / "tensorboard")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_search(tiny(epochs=3), folder, resume=True, progress=False)  # no --tensorboard this time
    assert list((folder / "tensorboard").iterdir()), "the resumed epochs were not logged"


def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch):
    import torchvision.datasets

    from dscd.data import DataError, download_cifar10

    class Offline:
        def __init__(self, root, train, download):
            (Path(root) / "cifar-10-python.tar.gz").write_bytes(b"partial")
            raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    target = tmp_path / "a" / "b" / "cifar"
    with pytest.raises(DataError, match="could not download CIFAR-10.*network unreachable"):
        download_cifar10(f"cifar10:{target}")
    assert not (tmp_path / "a").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("x")
    with pytest.raises(DataError):
        download_cifar10(f"cifar10:{kept}")
    assert [p.name for p in kept.iterdir()] == ["mine.txt"]
