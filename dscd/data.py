"""Data: CIFAR-10 (torchvision, an ImageFolder tree, or a zip of one) and sklearn's digits, in memory.

Images are decoded once into a ``uint8`` tensor ``(N, 3, H, W)`` (resized once if
asked), and :class:`ImageLoader` cuts them into batches with the reference's
augmentation (random crop with padding, horizontal flip, normalisation, and
cutout for final training) done on whole batches. Every random choice of a batch
comes from a generator seeded by ``(seed, epoch, batch)``, so an epoch can be
resumed at any batch and replays exactly.

Sources (argument ``source``, else the ``DSCD_DATA`` environment variable):

* ``digits``: sklearn's 8x8 handwritten digits (always offline, for smoke runs);
* ``cifar10`` or ``cifar10:DIR``: torchvision's CIFAR-10 in ``DIR`` (default
  ``~/.cache/dscd/cifar10``), downloaded only with ``download=True``;
* a folder holding ``train/<class>/*`` and ``test/<class>/*`` (or one level above
  such a folder, as the unpacked ``cifar10-jpg.zip``);
* a ``.zip`` of such a tree, read in place (nothing is extracted).

Run records name their source without the machine's paths (:func:`recorded_source`): a file or folder
relative to ``DSCD_DATA_ROOT`` when set (and a relative source not found from the working directory is
looked for there), by its name otherwise; the content digest beside it identifies the data.

The search split halves the training set *per class* (the first half of each
class's images trains the weights, the second half alpha); the reference halves
CIFAR-10's training batches in file order, which gives the same sizes and, up to
sampling, the same class balance.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["CIFAR10_MEAN", "CIFAR10_STD", "DATA_ROOT", "DataConfig", "DataError", "ImageLoader", "ImageSet",
           "load_split", "recorded_source", "search_split", "source_fingerprint", "test_set", "train_set"]

CIFAR10_MEAN = (0.49139968, 0.48215827, 0.44653124)
CIFAR10_STD = (0.24703233, 0.24348505, 0.26158768)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm")


class DataError(ValueError):
    """A missing or malformed data source; the message says where it looked and what to do."""


@dataclass(frozen=True)
class DataConfig:
    """Which images, how many, at what size.

    Args:
        source: see the module docstring; ``None`` reads ``DSCD_DATA``.
        per_class: training images per class (``None``: all), chosen with ``seed``.
        test_per_class: test images per class (``None``: all).
        image_size: side length; images are resized once when it differs.
        download: let torchvision download CIFAR-10 (off by default: nothing downloads at run time).
        seed: seed of the subset choice.
    """

    source: str | None = None
    per_class: int | None = None
    test_per_class: int | None = None
    image_size: int = 32
    download: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("per_class", "test_per_class"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 2):
                raise DataError(f"{name} must be an integer >= 2 (or null for all images), got {value!r}")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 4:
            raise DataError(f"image_size must be an integer >= 4, got {self.image_size!r}")

    def resolved_source(self) -> str:
        """The source read: ``source``, else ``DSCD_DATA``; a relative path not found from here is looked
        for under ``DSCD_DATA_ROOT`` (where :func:`recorded_source` names it from)."""
        source = self.source or os.environ.get("DSCD_DATA")
        if not source:
            raise DataError("no data source: pass source=... (--data) or set DSCD_DATA to a CIFAR-10 ImageFolder "
                            "folder or zip of one, 'cifar10:DIR' (torchvision's files), or 'digits'")
        root = os.environ.get(DATA_ROOT)
        path = Path(source).expanduser()
        if (root and not _named_source(source) and not path.is_absolute() and not path.exists()
                and (Path(root).expanduser() / path).exists()):
            return str(Path(root).expanduser() / path)
        return source


#: The environment variable naming the folder that run records name file sources from (:func:`recorded_source`).
DATA_ROOT = "DSCD_DATA_ROOT"


def _named_source(source: str) -> bool:
    """``digits``, ``cifar10`` or ``cifar10:DIR``: a source named, not a file or folder."""
    return source in ("digits", "cifar10") or source.startswith("cifar10:")


def recorded_source(source: str) -> str:
    """A data source as run records store it, the same on every machine: ``digits``; ``cifar10`` for
    torchvision's files wherever they are cached; a file or folder by its path relative to ``DSCD_DATA_ROOT``
    when it lies there, by its name alone otherwise. What identifies the data is its content
    (:func:`source_fingerprint`, recorded beside it), so a run resumes or is reused on a machine that keeps
    the same files elsewhere. Records written before this stored an absolute path; this maps it too."""
    if _named_source(source):
        return source.partition(":")[0]
    path = Path(source).expanduser()
    root = os.environ.get(DATA_ROOT)
    if root:
        try:
            return path.resolve().relative_to(Path(root).expanduser().resolve()).as_posix()
        except ValueError:
            pass
    return path.name


def download_cifar10(source: str) -> str:
    """Fetch CIFAR-10 (both splits) through torchvision for a ``cifar10[:DIR]`` source and return
    the source; files already there are checked, not fetched again. Only ever called on request
    (``--download``, ``download: true``, ``dscd download``); nothing downloads by default."""
    if not (source == "cifar10" or source.startswith("cifar10:")):
        raise DataError(f"--download applies to a cifar10[:DIR] source (torchvision's files), not {source!r}")
    from torchvision.datasets import CIFAR10

    root = Path(source.partition(":")[2] or _cache_dir() / "cifar10").expanduser()
    created = [p for p in (root, *root.parents) if not p.exists()]  # deepest first
    before = set(root.iterdir()) if root.is_dir() else set()
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            CIFAR10(str(root), train=train, download=True)
    except BaseException as err:  # no network, a proxy, a full disk, Ctrl-C: leave the disk as it was
        for path in set(root.iterdir()) - before:  # a partial archive, a half-extracted folder
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        if not isinstance(err, Exception):
            raise
        raise DataError(f"could not download CIFAR-10 into {root}: {type(err).__name__}: {err}") from None
    return source


@dataclass
class ImageSet:
    """Images ``uint8 (N, 3, H, W)``, labels ``long (N,)``, class names, and normalisation constants."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor | np.ndarray) -> ImageSet:
        """The images and labels at ``index`` (same classes)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return replace(self, images=self.images[index], labels=self.labels[index])

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.classes)


# ---------------------------------------------------------------------------------- reading sources


def _choose(labels: np.ndarray, per_class: int | None, seed: int, split: str) -> np.ndarray:
    """Indices of ``per_class`` items per class (seeded, kept in their original order), or all."""
    if per_class is None:
        return np.arange(labels.size)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    chosen = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size < per_class:
            raise DataError(f"class {c} has {idx.size} {split} images, fewer than the {per_class} per class asked")
        chosen.append(np.sort(rng.choice(idx, per_class, replace=False)))
    return np.sort(np.concatenate(chosen))


#: The most pixels one image of a data set may have (4096 x 4096); a larger one is refused before it is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096


def _decode(data: bytes, member: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_IMAGE_PIXELS:  # checked before decoding: a tiny file can claim a huge image
                raise DataError(f"{member} claims {im.width}x{im.height} pixels, more than the {MAX_IMAGE_PIXELS:,} "
                                "an image of a data set may have (a decompression bomb?); replace or remove it")
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:  # UnidentifiedImageError: OSError
        raise DataError(f"{member} is not a readable image ({type(err).__name__}: {err}); replace or remove "
                        "it") from None


def _stack(arrays: list[np.ndarray], where: str) -> torch.Tensor:
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"images in {where} have different sizes {sorted(shapes)[:3]}: resize them to one size")
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


class _Tree:
    """An ImageFolder tree (``train/<class>/``, ``test/<class>/``) in a folder or a zip."""

    def __init__(self, source: str) -> None:
        self.source = source
        path = Path(source).expanduser()
        self.zip = None
        if path.suffix == ".zip":
            if not path.is_file():
                raise DataError(f"no zip file at {path}: point source/DSCD_DATA at an existing file "
                                "(an ImageFolder tree train/<class>/*, test/<class>/* zipped)")
            try:
                self.zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise DataError(f"{path} is not a readable zip file") from None
            names = [n for n in self.zip.namelist() if n.lower().endswith(_IMAGE_SUFFIXES)]
        elif path.is_dir():
            names = [str(p.relative_to(path)) for p in path.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES]
        else:
            raise DataError(f"no data at {path}: expected a folder with train/<class>/ and test/<class>/, a zip of "
                            "one, 'cifar10' or 'digits'")
        self.root = path
        self.files: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
        for name in names:
            parts = Path(name).parts
            if len(parts) >= 3 and parts[-3] in self.files:
                self.files[parts[-3]].setdefault(parts[-2], []).append(name)
        for split in self.files:
            if not self.files[split]:
                raise DataError(f"{path} has no {split}/<class>/<image> files (found {len(names)} images in all); "
                                "expected the ImageFolder layout train/<class>/*.jpg and test/<class>/*.jpg")
        if sorted(self.files["train"]) != sorted(self.files["test"]):
            raise DataError(f"{path}: train and test have different classes "
                            f"({sorted(self.files['train'])} vs {sorted(self.files['test'])})")
        self.classes = tuple(sorted(self.files["train"]))

    def _read_bytes(self, member: str) -> bytes:
        if self.zip is None:
            return (self.root / member).read_bytes()
        try:
            return self.zip.read(member)
        except (zipfile.BadZipFile, zlib.error, OSError) as err:
            raise DataError(f"{self.root}: member {member} is damaged ({err}); fetch the zip again") from None

    def read(self, split: str, per_class: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        files: list[str] = []
        classes: list[int] = []
        for c, name in enumerate(self.classes):
            members = sorted(self.files[split][name])
            files += members
            classes += [c] * len(members)
        labels = np.asarray(classes)
        keep = _choose(labels, per_class, seed, split)
        arrays = [_decode(self._read_bytes(files[i]), f"{self.root}: {files[i]}") for i in keep]
        return _stack(arrays, f"{self.source} ({split})"), torch.from_numpy(labels[keep])


def _cache_dir() -> Path:
    return Path(os.environ.get("DSCD_CACHE", "~/.cache/dscd")).expanduser()


def _read_source(source: str, split: str, per_class: int | None, seed: int, download: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    if source == "digits":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("the digits source (the smoke profile) needs scikit-learn: "
                            "pip install 'dscd[notebooks]'") from None

        digits = load_digits()
        pixels = np.repeat((digits.images * (255.0 / 16.0)).round().astype(np.uint8)[:, None], 3, axis=1)
        targets = digits.target.astype(np.int64)
        order = np.random.default_rng(12345).permutation(targets.size)  # fixed train/test split: 1,437 / 360
        part = order[:1437] if split == "train" else order[1437:]
        keep = part[_choose(targets[part], per_class, seed, split)]
        return torch.from_numpy(pixels[keep]), torch.from_numpy(targets[keep]), tuple(str(d) for d in range(10))
    if source == "cifar10" or source.startswith("cifar10:"):
        from torchvision.datasets import CIFAR10

        root = Path(source.partition(":")[2] or _cache_dir() / "cifar10").expanduser()
        try:
            ds = CIFAR10(str(root), train=split == "train", download=download)
        except RuntimeError as err:
            raise DataError(f"no CIFAR-10 at {root} ({err}); add --download (or download: true in the "
                            "configuration, or run `dscd download --data cifar10:DIR`) where there is internet, or "
                            "point --data/DSCD_DATA at an ImageFolder folder or zip") from None
        targets = np.asarray(ds.targets, dtype=np.int64)
        keep = _choose(targets, per_class, seed, split)
        return (torch.from_numpy(ds.data[keep]).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(targets[keep]),
                tuple(ds.classes))
    tree = _Tree(source)
    if per_class is None:  # a whole split: decode once, keep a cache keyed by the source's content
        key = hashlib.sha1(f"{source_fingerprint(source)}|{split}".encode()).hexdigest()[:16]
        cache = _cache_dir() / f"images-{key}.pt"
        if cache.is_file():
            try:
                images, labels = torch.load(cache, weights_only=True)
                return images, labels, tree.classes
            except Exception:  # a broken cache is rebuilt, never trusted
                cache.unlink(missing_ok=True)
        images, labels = tree.read(split, None, seed)
        from dscd.runfolder import RunFolderError, replace_atomic

        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            replace_atomic(cache, lambda fh: torch.save((images, labels), fh))  # never through a link
        except (OSError, RunFolderError):  # a cache that cannot be written (read-only, full) costs the next decode
            pass
        return images, labels, tree.classes
    images, labels = tree.read(split, per_class, seed)
    return images, labels, tree.classes


def source_fingerprint(source: str) -> str:
    """A digest of a data source's content, to record with a run and to key the decoded-image cache.

    A zip: every member's name, size and CRC-32 (its content, from the central directory).
    A folder: every file's relative path, size and modification time. ``cifar10:DIR``: the
    same over ``DIR``. ``digits``: sklearn's version (the data ships with it). A changed,
    added or removed image changes the digest.
    """
    h = hashlib.sha1()
    if source == "digits":
        import sklearn

        h.update(f"digits|sklearn {sklearn.__version__}".encode())
        return h.hexdigest()[:16]
    if source == "cifar10" or source.startswith("cifar10:"):
        path = Path(source.partition(":")[2] or _cache_dir() / "cifar10").expanduser()
    else:
        path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    h.update(f"{info.filename}|{info.file_size}|{info.CRC}\n".encode())
        except zipfile.BadZipFile:
            raise DataError(f"{path} is not a readable zip file") from None
    elif path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(path)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    else:
        h.update(f"absent:{path}".encode())
    return h.hexdigest()[:16]


def load_split(cfg: DataConfig, split: str) -> ImageSet:
    """The ``train`` or ``test`` images of ``cfg``'s source, subset and resized as configured."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    source = cfg.resolved_source()
    per_class = cfg.per_class if split == "train" else cfg.test_per_class
    images, labels, classes = _read_source(source, split, per_class, cfg.seed, cfg.download)
    if images.shape[-1] != cfg.image_size or images.shape[-2] != cfg.image_size:
        images = F.interpolate(images.float(), size=(cfg.image_size, cfg.image_size), mode="bilinear",
                               antialias=True, align_corners=False).round().clamp(0, 255).to(torch.uint8)
    if tuple(classes) == CIFAR10_CLASSES:
        mean, std = CIFAR10_MEAN, CIFAR10_STD
    else:  # other data: constants of its own training images
        train = images if split == "train" else _read_source(source, "train", cfg.per_class, cfg.seed, False)[0]
        flat = train.float().div(255).transpose(0, 1).reshape(3, -1)
        mean, std = tuple(flat.mean(1).tolist()), tuple(flat.std(1).clamp(min=1e-3).tolist())
    return ImageSet(images=images, labels=labels.long(), classes=tuple(classes), mean=mean, std=std)


def search_split(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """``(L_train, L_val)``: the training set halved per class (weights train on the first, alpha on the second)."""
    full = load_split(cfg, "train")
    first, second = [], []
    for c in range(full.num_classes):
        idx = torch.nonzero(full.labels == c).flatten()
        half = idx.numel() // 2
        first.append(idx[:half])
        second.append(idx[half:])
    return full.subset(torch.cat(first).sort().values), full.subset(torch.cat(second).sort().values)


def train_set(cfg: DataConfig) -> ImageSet:
    """The whole training set (final training)."""
    return load_split(cfg, "train")


def test_set(cfg: DataConfig) -> ImageSet:
    """The test set ("Search Test" during search, the final test accuracy after training)."""
    return load_split(cfg, "test")


# ---------------------------------------------------------------------------------- batches


class ImageLoader:
    """Batches of an :class:`ImageSet` with batch-wise augmentation, deterministic per (seed, epoch, batch).

    Args:
        data: the images.
        batch_size: images per batch.
        augment: random crop (padding ``image_size // 8``: 4 px at 32) and horizontal flip.
        cutout: side of the cutout square in pixels (0: none; DARTS: 16 at 32 px).
        shuffle: a new permutation every epoch.
        drop_last: drop the last incomplete batch.
        seed: the loader's seed.
        device: where batches are produced (images are moved there once).
    """

    def __init__(self, data: ImageSet, batch_size: int, augment: bool = False, cutout: int = 0,
                 shuffle: bool = True, drop_last: bool = False, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if len(data) == 0:
            raise DataError("the image set is empty")
        self.data = data
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = batch_size
        self.augment, self.cutout, self.shuffle, self.drop_last, self.seed = augment, cutout, shuffle, drop_last, seed
        self.mean = torch.tensor(data.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(data.std, device=self.device).view(1, 3, 1, 1)
        self.pad = max(1, data.images.shape[-1] // 8)

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _generator(self, *key: int) -> torch.Generator:
        g = torch.Generator()
        g.manual_seed(int(np.random.SeedSequence([self.seed, *key]).generate_state(1, np.uint64)[0] >> 1))
        return g

    def order(self, epoch: int) -> torch.Tensor:
        """The order of the images in ``epoch``: a seeded permutation, or the file order without shuffling."""
        n = len(self.data)
        return torch.randperm(n, generator=self._generator(epoch)) if self.shuffle else torch.arange(n)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of ``epoch`` from batch ``start`` on: ``(images float (B, 3, H, W), labels)``."""
        order = self.order(epoch)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size].to(self.device)
            x = self.images[idx].float().div_(255.0)
            g = self._generator(epoch, b) if self.augment or self.cutout else None
            if self.augment and g is not None:
                x = self._crop_flip(x, g)
            x = (x - self.mean) / self.std
            if self.cutout and g is not None:  # after normalisation, as the reference's transform list
                x = self._cutout(x, g)
            yield x, self.labels[idx]

    def _crop_flip(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        n, _, h, w = x.shape
        p = self.pad
        padded = F.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=g)
        dx = torch.randint(0, 2 * p + 1, (n,), generator=g)
        flip = torch.rand(n, generator=g) < 0.5
        rows = (dy[:, None] + torch.arange(h)[None]).to(x.device)  # (n, h)
        cols = (dx[:, None] + torch.arange(w)[None])
        cols = torch.where(flip[:, None], cols.flip(1), cols).to(x.device)  # (n, w)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]
        return x

    def _cutout(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Zero a ``cutout`` x ``cutout`` square (clipped at the border) around a random centre per image."""
        n, _, h, w = x.shape
        cy = torch.randint(0, h, (n,), generator=g).to(x.device)[:, None, None]
        cx = torch.randint(0, w, (n,), generator=g).to(x.device)[:, None, None]
        ys = torch.arange(h, device=x.device)[None, :, None]
        xs = torch.arange(w, device=x.device)[None, None, :]
        lo = self.cutout // 2
        hole = (ys >= cy - lo) & (ys < cy - lo + self.cutout) & (xs >= cx - lo) & (xs < cx - lo + self.cutout)
        return x * (~hole)[:, None].to(x.dtype)
