"""The data module on a tiny generated ImageFolder tree and zip, and on digits."""

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from dscd.data import DataConfig, DataError, ImageLoader, load_split, search_split
from dscd.data import test_set as load_test_set


def make_tree(root, classes=("cat", "dog", "frog"), train=6, test=3, size=12):
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for c, name in enumerate(classes):
            folder = root / "tiny" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                pixels[0, 0] = [c * 40, i, 0]  # a tag to recognise the image
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root / "tiny"


def zip_tree(tree, path):
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(tree.rglob("*.png")):
            z.write(f, f.relative_to(tree.parent))
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DSCD_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DSCD_DATA", raising=False)


def test_folder_and_zip_give_the_same_images(tmp_path):
    tree = make_tree(tmp_path)
    archive = zip_tree(tree, tmp_path / "tiny.zip")
    a = load_split(DataConfig(source=str(tree), image_size=12), "train")
    b = load_split(DataConfig(source=str(archive), image_size=12), "train")
    c = load_split(DataConfig(source=str(tmp_path), image_size=12), "train")  # one level above also works
    assert a.images.shape == (18, 3, 12, 12) and a.images.dtype == torch.uint8
    assert a.classes == ("cat", "dog", "frog")
    for other in (b, c):
        assert torch.equal(a.images, other.images) and torch.equal(a.labels, other.labels)
    # the whole-split decode is cached, and the cache gives the same tensors
    assert list((tmp_path / "cache").glob("images-*.pt"))
    again = load_split(DataConfig(source=str(archive), image_size=12), "train")
    assert torch.equal(again.images, b.images)


def test_search_split_halves_each_class_and_subsets_resize(tmp_path):
    tree = make_tree(tmp_path)
    cfg = DataConfig(source=str(tree), per_class=4, test_per_class=2, image_size=8, seed=1)
    first, second = search_split(cfg)
    assert len(first) == len(second) == 6
    assert torch.bincount(first.labels).tolist() == [2, 2, 2] == torch.bincount(second.labels).tolist()
    assert first.images.shape[-2:] == (8, 8)
    assert len(load_test_set(cfg)) == 6
    # the subset is seeded
    again, _ = search_split(cfg)
    assert torch.equal(again.images, first.images)
    other, _ = search_split(DataConfig(source=str(tree), per_class=4, image_size=8, seed=2))
    assert not torch.equal(other.images, first.images)


def test_environment_variable_names_the_source(tmp_path, monkeypatch):
    tree = make_tree(tmp_path)
    monkeypatch.setenv("DSCD_DATA", str(tree))
    assert len(load_split(DataConfig(image_size=12), "test")) == 9


@pytest.mark.parametrize("what", ["nothing", "missing_dir", "missing_zip", "bad_zip", "no_layout", "cifar"])
def test_missing_or_malformed_sources_say_where_they_looked(tmp_path, what):
    if what == "nothing":
        cfg, match = DataConfig(), "no data source"
    elif what == "missing_dir":
        cfg, match = DataConfig(source=str(tmp_path / "nope")), "no data at"
    elif what == "missing_zip":
        cfg, match = DataConfig(source=str(tmp_path / "nope.zip")), "no zip file at"
    elif what == "bad_zip":
        (tmp_path / "bad.zip").write_text("not a zip")
        cfg, match = DataConfig(source=str(tmp_path / "bad.zip")), "not a readable zip"
    elif what == "no_layout":
        (tmp_path / "flat").mkdir()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "flat" / "a.png")
        cfg, match = DataConfig(source=str(tmp_path / "flat")), "train/<class>"
    else:
        cfg, match = DataConfig(source=f"cifar10:{tmp_path / 'none'}"), "no CIFAR-10 at"
    with pytest.raises(DataError, match=match):
        load_split(cfg, "train")


def test_bad_config_values():
    with pytest.raises(DataError, match="per_class"):
        DataConfig(per_class=1)
    with pytest.raises(DataError, match="image_size"):
        DataConfig(image_size=2)


def test_digits_is_offline_and_normalised():
    cfg = DataConfig(source="digits", image_size=16, per_class=20, test_per_class=5)
    train, val = search_split(cfg)
    assert len(train) == len(val) == 100 and train.images.shape == (100, 3, 16, 16)
    assert len(load_test_set(cfg)) == 50
    loader = ImageLoader(train, 32, augment=False, shuffle=False)
    x, _ = next(loader.epoch(0))
    assert abs(float(x.mean())) < 0.5


def test_loader_is_deterministic_resumable_and_augments(tmp_path):
    data = load_split(DataConfig(source=str(make_tree(tmp_path, train=10)), image_size=12), "train")
    loader = ImageLoader(data, 8, augment=True, cutout=4, seed=3)
    assert len(loader) == 4
    full = list(loader.epoch(2))
    again = list(loader.epoch(2))
    resumed = list(loader.epoch(2, start=2))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full, again, strict=True))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(full[2:], resumed, strict=True))
    assert not torch.equal(full[0][0], list(loader.epoch(3))[0][0])  # a new epoch, a new order and new crops
    plain = ImageLoader(data, 8, shuffle=False)
    x, y = next(plain.epoch(0))
    expected = (data.images[:8].float() / 255 - plain.mean) / plain.std
    torch.testing.assert_close(x, expected)
    assert torch.equal(y, data.labels[:8])
    # cutout zeroes a square (in normalised units) in every image
    cut = ImageLoader(data, 8, cutout=4, shuffle=False)
    xc, _ = next(cut.epoch(0))
    assert ((xc == 0).all(dim=1).flatten(1).sum(1) >= 4).all()
