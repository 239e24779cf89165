"""Trained networks as files: a weights-only model file, loading it back, ONNX export.

``dscd train`` ends by writing ``model.pt`` into its run folder: the final network's
``state_dict`` with everything needed to rebuild it (genotype, channels, cells,
classes, input channels and size), as plain tensors and Python values, so
``torch.load(path, weights_only=True)`` reads it without running any code::

    from dscd import load_model
    net = load_model("runs/train-quick-DARTS_V2")       # EvalNetwork, eval mode
    logits = net(preprocess(net, images))                # uint8 or [0, 1] images -> (batch, classes)
    print(net.genotype, net.size, net.image_size, net.mean, net.std)

The network expects images at ``net.image_size`` normalised with the training data's per-channel ``net.mean`` and
``net.std`` (recorded in the file); :func:`preprocess` applies both.

A training folder from before ``model.pt`` existed still loads, from its checkpoint.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from dscd.config import shown
from dscd.eval_network import EvalNetwork, network_size
from dscd.genotype import Genotype
from dscd.runfolder import CHECKPOINT, UnsafeFileError, load_weights_only, read_summary, replace_atomic, write_atomic

__all__ = ["MIN_OPSET", "MODEL_FILE", "ModelFileError", "export_onnx", "load_model", "preprocess", "save_model"]

MODEL_FILE = "model.pt"
_FORMAT = "dscd.model/1"
#: What a model file holds besides its format (``name`` is optional).
_PAYLOAD_KEYS = ("genotype", "channels", "layers", "num_classes", "in_channels", "image_size", "auxiliary",
                 "state_dict")


#: The sizes a model file states, and the range each must lie in before a network is built from them.
_SIZES = (("channels", 2, 4096), ("layers", 3, 1000), ("num_classes", 1, 100_000), ("in_channels", 1, 64),
          ("image_size", 4, 1024))


class ModelFileError(ValueError):
    """A path that holds no loadable dscd model: the message says what was found and what to give."""


def save_model(net: EvalNetwork, path: str | Path, *, num_classes: int, in_channels: int, image_size: int,
               name: str | None = None, mean: tuple[float, ...] | None = None,
               std: tuple[float, ...] | None = None) -> Path:
    """Write ``net`` (an :class:`EvalNetwork`) as a weights-only model file, atomically. ``mean`` and ``std``
    are the per-channel normalisation of its training images (pixels in [0, 1])."""
    payload = {
        "format": _FORMAT, "name": name, "genotype": net.genotype.to_dict(), "channels": net.channels,
        "layers": net.layers, "num_classes": num_classes, "in_channels": in_channels, "image_size": image_size,
        "mean": None if mean is None else [float(m) for m in mean],
        "std": None if std is None else [float(s) for s in std],
        "auxiliary": net.aux_head is not None,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())
    return Path(path)


def _from_checkpoint(folder: Path) -> dict[str, Any]:
    """A model payload rebuilt from a training folder's checkpoint (folders written before model.pt)."""
    try:
        state = load_weights_only(folder / CHECKPOINT)  # as resuming reads it: no code in it runs
    except UnsafeFileError as err:
        raise ModelFileError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one message
        raise ModelFileError(f"{folder / CHECKPOINT} is corrupt or unreadable ({type(err).__name__}): train "
                             f"again, or give a {MODEL_FILE} file") from None
    if not isinstance(state, dict) or state.get("kind") != "train" or "trainer" not in state:
        kind = state.get("kind", "unknown") if isinstance(state, dict) else type(state).__name__
        raise ModelFileError(f"{folder} holds a {kind} run, not a training: a model "
                             "comes from `dscd train` (a search's genotype is trained first)")
    config = state["config"]
    summary = read_summary(folder) or {}
    net = state["trainer"]["net"]
    classes = net["classifier.weight"].shape[0]
    in_channels = net["stem.0.weight"].shape[1]
    return {"format": _FORMAT, "name": summary.get("name"), "genotype": config["genotype"],
            "channels": config["channels"], "layers": config["layers"], "num_classes": classes,
            "in_channels": in_channels, "image_size": config["image_size"], "auxiliary": config["auxiliary"],
            "state_dict": net}


def _payload(source: Path) -> dict[str, Any]:
    if source.is_dir():
        if (source / MODEL_FILE).is_file():
            source = source / MODEL_FILE
        elif (source / CHECKPOINT).is_file():
            return _from_checkpoint(source)
        else:
            raise ModelFileError(f"{source} holds no {MODEL_FILE} and no {CHECKPOINT}: give a training run folder "
                                 f"(`dscd train --out DIR`) or a {MODEL_FILE} file")
    if not source.is_file():
        raise ModelFileError(f"no model at {source}: give a training run folder or a {MODEL_FILE} file")
    try:
        payload = load_weights_only(source)
    except UnsafeFileError as err:
        raise ModelFileError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one message
        raise ModelFileError(f"{source} is not a readable model file ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ModelFileError(f"{source} is not a dscd model file (expected format {_FORMAT!r}; a plain state_dict "
                             "does not say which network it belongs to)")
    return payload


def load_model(source: str | Path, genotype: Genotype | None = None, device: str | torch.device = "cpu"
               ) -> EvalNetwork:
    """The trained network of a training run folder or a ``model.pt`` file, in eval mode on ``device``.

    Its ``forward`` returns the logits alone (the auxiliary head is used only in training);
    ``net.genotype`` is its genotype and ``net.size`` its :class:`~dscd.eval_network.NetworkSize`
    at the size it was trained at. ``net.image_size``, ``net.mean`` and ``net.std`` say what input it
    expects (``mean``/``std`` are ``None`` for a file written before they were recorded); :func:`preprocess`
    applies them. ``genotype``, when given, must be the one the model was trained with (a check, e.g.
    before deploying a named architecture).
    """
    payload = _payload(Path(source))
    missing = [k for k in _PAYLOAD_KEYS if k not in payload]
    if missing:
        raise ModelFileError(f"{source} lacks {', '.join(missing)}: it is not a complete dscd model file (train "
                             "again, or give the model.pt that dscd train wrote)")
    for key, low, high in _SIZES:  # checked before anything is built: a crafted file may claim any size
        value = payload[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ModelFileError(f"{source} claims {key} {shown(value)}, outside {low:,}..{high:,}: it was not "
                                 "written by dscd or was altered")
    try:
        stored = Genotype.from_dict(payload["genotype"], where=f"{source}: genotype")
        net = EvalNetwork(stored, channels=payload["channels"], num_classes=payload["num_classes"],
                          layers=payload["layers"], auxiliary=payload["auxiliary"], in_channels=payload["in_channels"])
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{source} describes a network that cannot be built ({err})") from None
    if genotype is not None and genotype != stored:
        raise ModelFileError(f"{source} was trained with another genotype than the one given "
                             f"(stored: {stored.to_dict()})")
    try:
        net.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as err:  # missing, unexpected or mis-shaped tensors
        first = " ".join(str(err).split())[:300]
        raise ModelFileError(f"{source}: its weights do not fit the network its genotype and sizes describe "
                             f"({first}); the file was altered or mixes two models") from None
    net.eval()
    net.size = network_size(net, payload["image_size"], payload["in_channels"])
    net.image_size = payload["image_size"]
    net.mean = None if payload.get("mean") is None else tuple(float(m) for m in payload["mean"])
    net.std = None if payload.get("std") is None else tuple(float(s) for s in payload["std"])
    net.name = payload.get("name")
    return net.to(device)


def preprocess(net: EvalNetwork, images: torch.Tensor) -> torch.Tensor:
    """Images as ``net`` (from :func:`load_model`) expects them: ``images`` (batch, channels, height, width),
    ``uint8`` in 0..255 or floating point in [0, 1], resized to ``net.image_size`` (bilinear, antialiased)
    and normalised with ``net.mean`` and ``net.std``, on the network's device."""
    mean, std, side = net.mean, net.std, net.image_size
    if mean is None or std is None or side is None:
        raise ModelFileError("this model's file records no input normalisation (written before dscd recorded "
                             "it): normalise the images as its training did, e.g. with dscd.data.CIFAR10_MEAN/STD")
    if images.ndim != 4 or images.shape[1] != len(mean):
        raise ValueError(f"images must be (batch, {len(mean)}, height, width), got shape {tuple(images.shape)}")
    device = next(net.parameters()).device
    x = images.to(device)
    x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
    if x.shape[-2:] != (side, side):
        x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear",
                                            antialias=True, align_corners=False)
    shape = (1, -1, 1, 1)
    return (x - torch.tensor(mean, device=device).view(shape)) / torch.tensor(std, device=device).view(shape)


#: The oldest ONNX opset the ``torch.export``-based exporter writes.
MIN_OPSET = 18


def export_onnx(net: EvalNetwork, path: str | Path, image_size: int | None = None, opset: int = MIN_OPSET) -> Path:
    """Write ``net`` (eval mode) as ONNX with a dynamic batch size: input ``images`` of shape
    ``(batch, in_channels, image_size, image_size)``, output ``logits`` of shape ``(batch, classes)``.

    Uses torch's ``torch.export``-based exporter (``dynamo=True``), which writes opset
    :data:`MIN_OPSET` or newer. The file is written atomically: a failed export leaves
    nothing, and an existing file at ``path`` is kept until the new one is complete.
    Needs the ``onnx`` and ``onnxscript`` packages (``pip install dscd[export]``).
    """
    import onnx  # an ImportError names the missing package: pip install 'dscd[export]'
    import onnxscript  # noqa: F401 - torch's exporter needs it

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (the exporter writes "
                             f"{MIN_OPSET} or newer; the installed onnx knows up to {newest}), got {opset!r}")
    size = image_size or net.image_size or 32
    first = next(net.parameters())
    example = torch.zeros(2, net.in_channels, size, size, device=first.device, dtype=first.dtype)
    path = Path(path)
    was_training = net.training
    net.eval()
    # torch's exporter may write the weights beside its file; it writes into a private folder created beside
    # ``path``, and one self-contained file (weights embedded) replaces ``path`` in one rename
    work = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        exported = work / "model.onnx"
        torch.onnx.export(net, (example,), str(exported), input_names=["images"], output_names=["logits"],
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), opset_version=opset,
                          dynamo=True, verbose=False, external_data=False)
        model = onnx.load(str(exported))  # with any external data, which the file written below embeds
        written = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
        if written != [opset]:  # the exporter falls back to its own opset when it cannot convert
            raise ValueError(f"the exporter could not write opset {opset} (it wrote {written}); choose "
                                 f"--opset {MIN_OPSET}")
        replace_atomic(path, lambda fh: fh.write(model.SerializeToString()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        net.train(was_training)
    return path
