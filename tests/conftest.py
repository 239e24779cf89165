"""Fixtures several test modules share, built once per test session (each test copies what it changes)."""

import pytest

#: A tiny final training: what the model-file and export tests need.
TRAIN = dict(epochs=1, per_class=8, test_per_class=4, batch_size=8, channels=4, layers=3, image_size=8, cutout=4)


@pytest.fixture(scope="session")
def whole(tmp_path_factory):
    """One finished tiny search (2 epochs: checkpoint.pt and checkpoint.prev.pt); tests copy it before changing it."""
    from dscd.search import run_search
    from tests.test_runfolder import tiny

    folder = tmp_path_factory.mktemp("whole") / "run"
    run_search(tiny(), folder, progress=False)
    return folder


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One finished tiny training of DARTS_V2 (``model.pt``); tests copy it before changing it."""
    from dscd.genotype import load_genotype
    from dscd.train import train_genotype, train_profile

    folder = tmp_path_factory.mktemp("train") / "run"
    train_genotype(train_profile("smoke", **TRAIN), load_genotype("DARTS_V2"), folder, name="DARTS_V2",
                   progress=False)
    return folder
