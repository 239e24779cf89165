"""What the search and the final-training configurations share: fields, validation, files.

A run configuration is a frozen dataclass deriving from :class:`RunConfig`: the
fields both loops have (data, network size, epochs, batch, seed, device, precision,
layout) live here with their validation, so the two cannot drift apart. A
configuration reads and writes JSON or YAML, rejects unknown fields (listing the
known ones) and out-of-range values with a message naming the field (and the
file). Named configurations are profiles (:mod:`dscd.profiles`).

YAML is read with the YAML 1.2 core schema for integers, floats and booleans, so ``3e-4`` is a
number in a file and in ``--set alpha_lr=3e-4`` alike, ``010`` is ten, and ``1:30``, ``0b11``,
``1_000`` and ``yes`` are strings (which a numeric or boolean field then refuses). Anchors and aliases
(``&a``, ``*a``) and duplicate keys are refused, so a file cannot expand into something huge or
silently say two things; messages show values shortened (:mod:`reprlib`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["RunConfig", "check_bool", "check_device", "check_integer", "check_number", "check_sequence",
           "check_plain_name", "load_yaml", "parse_assignment", "shown"]

C = TypeVar("C", bound="RunConfig")

_SHORT = reprlib.Repr()  # Python 3.11's takes no keyword arguments
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxtuple, _SHORT.maxdict = 3, 6, 6, 6
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 60, 60, 40


def shown(value: Any) -> str:
    """``repr(value)`` shortened for a message: a huge or deeply nested value cannot flood an error line."""
    return _SHORT.repr(value)


def check_integer(config: Any, name: str, minimum: int, allow_none: bool = False, maximum: int | None = None) -> None:
    """``config.<name>`` must be an integer >= ``minimum`` and <= ``maximum`` if given (or ``None`` when allowed)."""
    value = getattr(config, name)
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{' or null' if allow_none else ''}, "
                         f"got {shown(value)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value:,}")


def check_number(config: Any, name: str, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """``config.<name>`` must be a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
            value <= low if low_open else value < low) or value > high:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high < math.inf else "")
        raise ValueError(f"{name} must be a number {bound}, got {shown(value)}")


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,99}$")


def check_plain_name(value: Any, what: str) -> str:
    """``value`` as a name that becomes part of a path: letters, digits, ``_ . + -``, not starting with a dot,
    at most 100 characters; anything else (a ``/``, ``..``) is a ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or not _PLAIN_NAME.match(value) or ".." in value:
        raise ValueError(f"{what} must be a plain name (letters, digits, _ . + -; no / and no ..), got {shown(value)}")
    return value


def check_bool(config: Any, name: str) -> None:
    """``config.<name>`` must be ``True`` or ``False`` (not ``1``, not ``"yes"``)."""
    if not isinstance(getattr(config, name), bool):
        raise ValueError(f"{name} must be true or false, got {shown(getattr(config, name))}")


def check_device(device: Any) -> None:
    """ValueError in one line unless ``device`` is ``auto``, ``cpu`` or ``cuda[:N]``."""
    if not isinstance(device, str) or (device not in ("auto", "cpu") and not device.startswith("cuda")):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {shown(device)}")


def check_sequence(config: Any, name: str, item: type | tuple[type, ...], length: int | None = None) -> tuple:
    """``config.<name>`` as a tuple of ``item`` values (a list or tuple of them; ``length`` when given)."""
    value = getattr(config, name)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not all(
            isinstance(v, item) and not isinstance(v, bool) for v in value) or (
            length is not None and len(value) != length):
        what = f"{length} " if length else ""
        kinds = item.__name__ if isinstance(item, type) else " or ".join(t.__name__ for t in item)
        raise ValueError(f"{name} must be a list of {what}{kinds} values, got {shown(value)}")
    return tuple(value)


# ------------------------------------------------------------------------------------ YAML 1.2, safely

#: YAML 1.2 core schema: the plain scalars that are integers, floats and booleans (everything else is a string).
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)"
                    r"|\.(?:nan|NaN|NAN))$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")


class _Refused(Exception):
    """A YAML construct a dscd configuration never needs (an anchor, an alias, a duplicate key)."""


def _yaml_loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader with YAML 1.2 core integers, floats and booleans, refusing anchors, aliases and
        duplicate keys."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise _Refused("anchors and aliases (&name, *name) are not accepted: write each value out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise _Refused(f"the key {shown(key)} is given twice: keep one")
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    def construct_int(loader: Any, node: Any) -> int:
        text = loader.construct_scalar(node)
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)

    def construct_float(loader: Any, node: Any) -> float:
        text = loader.construct_scalar(node).lower()
        return float(text.replace(".inf", "inf").replace(".nan", "nan"))

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (
            "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
    Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    Loader.add_constructor("tag:yaml.org,2002:float", construct_float)
    return Loader


_LOADER: type | None = None


def load_yaml(text: str, where: str) -> Any:
    """Parse YAML ``text`` (YAML 1.2 core numbers and booleans; no anchors, aliases or duplicate keys);
    any problem, nesting too deep included, is a ``ValueError`` naming ``where``."""
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _yaml_loader()
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a SafeLoader subclass
    except _Refused as err:
        raise ValueError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{where} is not valid YAML: {shown(' '.join(str(err).split()))}") from None
    except RecursionError:
        raise ValueError(f"{where} nests too deeply to be a dscd configuration") from None


def parse_assignment(item: str) -> tuple[str, Any]:
    """``"key=value"`` of ``--set`` -> ``(key, value)``, the value read as YAML, as in a configuration file."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects key=value, got {item!r}")
    return key.strip(), load_yaml(value, f"--set {shown(item)}")


# ------------------------------------------------------------------------------------ the base


#: RunConfig fields that do not change what a run computes: a checkpoint is resumed whatever they say.
NOT_COMPUTED = ("profile", "device", "test_every", "download", "tensorboard")
#: RunConfig fields that a checkpoint matches by content instead: the data, by its digest (``data_fingerprint``)
#: wherever the files lie, its name being only a label (:func:`dscd.data.recorded_source`).
MATCHED_BY_CONTENT = ("data",)


@dataclass(frozen=True)
class RunConfig:
    """The fields the search and the final training share, their validation, and file round trips.

    Data: ``data`` (source, see :mod:`dscd.data`; ``None`` reads ``DSCD_DATA``), ``download``
    (fetch a ``cifar10[:DIR]`` source through torchvision first; never by default), ``per_class``
    / ``test_per_class`` (subset sizes, ``None`` for all), ``image_size``. Network:
    ``channels``, ``layers``. Run: ``epochs``, ``batch_size``, ``test_every`` (epochs between
    test evaluations; the last epoch always), ``seed``, ``device``, ``amp`` (bfloat16
    autocast on CUDA), ``channels_last``, ``tensorboard`` (live logs in ``<run folder>/tensorboard``).
    Subclasses set their own defaults.
    """

    profile: str = "paper"
    data: str | None = None
    download: bool = False
    per_class: int | None = None
    test_per_class: int | None = None
    image_size: int = 32
    channels: int = 16
    layers: int = 8
    epochs: int = 50
    batch_size: int = 128
    test_every: int = 1
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    channels_last: bool = True
    tensorboard: bool = False

    def __post_init__(self) -> None:
        from dscd.profiles import PROFILES  # no torch: profiles build their configurations on first use

        if not isinstance(self.profile, str) or self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {shown(self.profile)}")
        if self.data is not None and (not isinstance(self.data, str) or not self.data):
            raise ValueError(f"data must be a data source (a path, 'cifar10[:DIR]' or 'digits') or null, "
                             f"got {shown(self.data)}")
        for name, minimum, maximum in (("image_size", 4, 1024), ("channels", 2, 4096), ("layers", 3, 1000),
                                       ("epochs", 1, 10**7), ("batch_size", 1, 10**6), ("test_every", 0, None),
                                       ("seed", 0, 2**63 - 1)):
            check_integer(self, name, minimum, maximum=maximum)
        check_integer(self, "per_class", 2, allow_none=True)
        check_integer(self, "test_per_class", 2, allow_none=True)
        for name in ("amp", "channels_last", "download", "tensorboard"):
            check_bool(self, name)
        check_device(self.device)

    @property
    def resolved_data(self) -> str:
        """``data`` of a configuration returned by :meth:`with_data_resolved` (an error before that)."""
        if self.data is None:
            raise ValueError("this configuration's data is not resolved: call with_data_resolved() first")
        return self.data

    @property
    def data_config(self) -> Any:
        """The :class:`dscd.data.DataConfig` of this run's images (source, counts, size, seed)."""
        from dscd.data import DataConfig

        return DataConfig(source=self.data, per_class=self.per_class, test_per_class=self.test_per_class,
                          image_size=self.image_size, seed=self.seed)

    def with_data_resolved(self: C) -> C:
        """This configuration with ``data`` set to the source it reads (``DSCD_DATA`` when ``data`` is null),
        so that a run folder records where its images came from. With ``download`` set, a
        ``cifar10[:DIR]`` source is fetched first (and ``download`` is cleared: the data is there)."""
        source = self.data_config.resolved_source()
        if self.download:
            from dscd.data import download_cifar10

            download_cifar10(source)
        if source == self.data and not self.download:
            return self
        return self.replace(data=source, download=False)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (tuples as lists); :meth:`from_dict` reads it back."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def recorded(self) -> dict[str, Any]:
        """:meth:`to_dict` as run records store it (config.json, summary.json, checkpoints): ``data`` named by
        :func:`dscd.data.recorded_source`, never by a machine's absolute path (resolved first)."""
        from dscd.data import recorded_source

        return {**self.to_dict(), "data": recorded_source(self.resolved_data)}

    @classmethod
    def field_names(cls) -> list[str]:
        """The names of the configuration's fields, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def _check_known(cls, names: Any) -> None:
        unknown = sorted(set(names) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown configuration field(s) {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(cls.field_names()))}")

    def replace(self: C, **changes: Any) -> C:
        """A copy with ``changes``; fields this configuration derived from others (``derived_fields``: a
        search's ``ops``, ``rule`` and ``w01`` follow its space and relaxation) are derived anew unless given."""
        self._check_known(changes)
        derived = {name: None for name in self.derived_fields if name not in changes}
        return dataclasses.replace(self, **{**derived, **changes})

    @property
    def derived_fields(self) -> frozenset[str]:
        """The fields left ``None`` at construction and filled from the others (none in the base class)."""
        return getattr(self, "_derived", frozenset())

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """A configuration from a dict of fields (others keep their defaults); an unknown field is
        ValueError listing the known ones."""
        if not isinstance(data, dict):
            raise ValueError(f"a {cls.__name__} is a mapping of fields, got {type(data).__name__}")
        cls._check_known(data)
        return cls(**data)

    @classmethod
    def from_file(cls: type[C], path: str | Path) -> C:
        """Read JSON (``.json``) or YAML (``.yaml``/``.yml``); fields not given keep the defaults.
        Every error names the file."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no configuration file at {path}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read configuration file {path}: {err}") from None
        if path.suffix in (".yaml", ".yml"):
            data = load_yaml(text, str(path))
        else:
            try:
                data = json.loads(text)
            except ValueError as err:
                raise ValueError(f"{path} is not valid JSON: {err}") from None
        try:
            return cls.from_dict(data or {})
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def save(self, path: str | Path) -> None:
        """Write the configuration to ``path``, YAML for ``.yaml``/``.yml``, JSON otherwise (atomically)."""
        from dscd.run_common import write_json, write_text

        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            write_json(path, self.to_dict())
