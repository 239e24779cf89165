"""Results that travel: model files, load_model, ONNX export, live logs, the download option."""

import shutil
import sys

import numpy as np
import pytest
import torch

from dscd import cli, load_model
from dscd.config import RunConfig
from dscd.data import DataError, download_cifar10
from dscd.genotype import load_genotype
from dscd.livelog import Progress
from dscd.model_files import MODEL_FILE, ModelFileError, export_onnx
from dscd.search import load_metrics, run_search, search_profile
from dscd.train import train_genotype, train_profile

TRAIN = dict(epochs=2, per_class=8, test_per_class=4, batch_size=8, channels=4, layers=3, image_size=8, cutout=4)
SEARCH = dict(epochs=2, per_class=10, test_per_class=4, batch_size=5, channels=2, layers=3, image_size=8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train") / "run"
    summary = train_genotype(train_profile("smoke", **TRAIN), load_genotype("DARTS_V2"), folder, name="DARTS_V2",
                             progress=False)
    return folder, summary


def test_training_leaves_a_weights_only_model_that_loads_as_a_classifier(trained):
    folder, summary = trained
    assert summary["model"] == MODEL_FILE
    payload = torch.load(folder / MODEL_FILE, weights_only=True)  # plain tensors and values: no code runs
    assert payload["genotype"] == load_genotype("DARTS_V2").to_dict() and payload["image_size"] == 8
    net = load_model(folder)
    assert not net.training and net.genotype == load_genotype("DARTS_V2") and net.name == "DARTS_V2"
    assert net.size.params_m == pytest.approx(summary["size"]["params_m"])
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        logits = net(x)
        assert logits.shape == (3, 10)  # eval mode: the logits alone, no auxiliary output
        torch.testing.assert_close(load_model(folder / MODEL_FILE)(x), logits)
    # the file says what input the network expects, and preprocess applies it
    from dscd.data import train_set
    from dscd.model_files import preprocess

    seen = train_set(train_profile("smoke", **TRAIN).data_config)  # the training images' own normalisation
    assert net.image_size == 8 and net.mean == pytest.approx(seen.mean) and net.std == pytest.approx(seen.std)
    pixels = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    x01 = torch.nn.functional.interpolate(pixels.float() / 255, size=(8, 8), mode="bilinear", antialias=True)
    expected = (x01 - torch.tensor(seen.mean).view(1, 3, 1, 1)) / torch.tensor(seen.std).view(1, 3, 1, 1)
    torch.testing.assert_close(preprocess(net, pixels), expected)
    torch.testing.assert_close(preprocess(net, pixels.float() / 255), expected)
    with pytest.raises(ValueError, match=r"images must be \(batch, 3, height, width\)"):
        preprocess(net, pixels[0])
    # the last checkpoint holds the same weights: a folder from before model.pt loads from it
    old = folder.parent / "old"
    shutil.copytree(folder, old)
    (old / MODEL_FILE).unlink()
    with torch.no_grad():
        torch.testing.assert_close(load_model(old)(x), logits)
    with pytest.raises(ModelFileError, match="records no input normalisation"):
        preprocess(load_model(old), pixels)


def test_load_model_says_what_is_wrong(trained, tmp_path):
    folder, _ = trained
    with pytest.raises(ModelFileError, match="no model at"):
        load_model(tmp_path / "nothing")
    with pytest.raises(ModelFileError, match="holds no model.pt and no checkpoint.pt"):
        load_model(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model(tmp_path / "weights.pt")
    torch.save({"stem.0.weight": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ModelFileError, match="not a dscd model file"):
        load_model(tmp_path / "plain.pt")
    with pytest.raises(ModelFileError, match="another genotype"):
        load_model(folder, genotype=load_genotype("DARTS_V1"))
    search = tmp_path / "search"
    run_search(search_profile("smoke", **SEARCH), search, progress=False)
    with pytest.raises(ModelFileError, match="not a training"):
        load_model(search)


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    folder, _ = trained
    net = load_model(folder)
    path = export_onnx(net, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for batch in (1, 5):
        x = torch.randn(batch, 3, 8, 8)
        with torch.no_grad():
            expected = net(x).numpy()
        got = session.run(["logits"], {"images": x.numpy()})[0]
        assert got.shape == (batch, 10)
        assert np.abs(got - expected).max() <= 1e-4


def test_cli_export(trained, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    folder, _ = trained
    assert cli.main(["export", str(folder), "--onnx", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0 and "input 'images'" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", str(tmp_path / "missing"), "--onnx", str(tmp_path / "x.onnx")])
    assert exc.value.code == 2 and "no model at" in capsys.readouterr().err


def test_tensorboard_logs_scalars_and_alpha_heatmaps(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = tmp_path / "run"
    run_search(search_profile("smoke", optimizer="dscd", tensorboard=True, **SEARCH), folder, progress=False)
    events = EventAccumulator(str(folder / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("alpha_loss")] == [1, 2]
    assert "dscd/best_age" in events.Tags()["scalars"]
    assert {"weights/normal", "weights/reduce"} <= set(events.Tags()["images"])
    assert load_metrics(folder)[-1]["epoch"] == 2


def test_without_a_terminal_progress_is_one_plain_line_per_epoch(capsys):
    from dscd.livelog import log_to_stderr

    log_to_stderr()  # as the dscd command does (the lines go through the dscd logger)
    bar = Progress(total=10, initial=0, desc="train x", plain=True)
    for epoch in (1, 2):
        bar.update(5)
        bar.epoch({"epoch": epoch, "loss": "0.5"})
    bar.close()
    err = capsys.readouterr().err
    assert err.splitlines() == ["train x: epoch 1, loss 0.5", "train x: epoch 2, loss 0.5"]


def test_download_is_explicit_and_only_for_cifar10(monkeypatch, tmp_path):
    with pytest.raises(DataError, match="applies to a cifar10"):
        download_cifar10("digits")
    calls = []

    class FakeCIFAR10:  # no network in tests: record what torchvision would be asked
        def __init__(self, root, train, download):
            calls.append((root, train, download))

    monkeypatch.setattr("torchvision.datasets.CIFAR10", FakeCIFAR10)
    assert download_cifar10(f"cifar10:{tmp_path}") == f"cifar10:{tmp_path}"
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    config = RunConfig(data=f"cifar10:{tmp_path}", download=True).with_data_resolved()
    assert config.download is False and len(calls) == 4  # fetched, then recorded as a plain source
    assert RunConfig(data="digits").with_data_resolved().download is False and len(calls) == 4


def test_a_configuration_names_its_data_only_once_resolved(monkeypatch):
    monkeypatch.setenv("DSCD_DATA", "digits")
    with pytest.raises(ValueError, match="not resolved: call with_data_resolved"):
        _ = RunConfig().resolved_data
    assert RunConfig().with_data_resolved().resolved_data == "digits"  # DSCD_DATA, recorded
    assert RunConfig(data="cifar10:/x").with_data_resolved().resolved_data == "cifar10:/x"


def test_the_cli_offers_the_options_its_messages_name(capsys):
    for command in ("search", "train"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = capsys.readouterr().out
        assert "--download" in out and "--tensorboard" in out
    with pytest.raises(SystemExit):
        cli.main(["download", "--help"])
    assert "cifar10:DIR" in capsys.readouterr().out


def test_a_missing_optional_dependency_names_its_extra(trained, monkeypatch, capsys, tmp_path):
    folder, _ = trained
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if dscd[export] were not installed
    assert cli.main(["export", str(folder), "--onnx", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'dscd[export]'" in err and not (tmp_path / "x.onnx").exists()
