"""What the search and the final-training configurations share: validation, files, profiles.

A run configuration is a frozen dataclass deriving from :class:`RunConfig`: it
reads and writes JSON or YAML, rejects unknown fields and out-of-range values
with a message naming the field, and has named profiles.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["RunConfig", "check_device", "check_integer", "check_number", "choose_profile"]

C = TypeVar("C", bound="RunConfig")


def check_integer(config: Any, name: str, minimum: int, allow_none: bool = False) -> None:
    """``config.<name>`` must be an integer >= ``minimum`` (or ``None`` when allowed)."""
    value = getattr(config, name)
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{' or null' if allow_none else ''}, got {value!r}")


def check_number(config: Any, name: str, low: float, high: float = math.inf, low_open: bool = False) -> None:
    """``config.<name>`` must be a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
            value <= low if low_open else value < low) or value > high:
        bound = f"{'>' if low_open else '>='} {low}" + (f" and <= {high}" if high < math.inf else "")
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")


def check_device(device: str) -> None:
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")


class RunConfig:
    """Mixin for frozen configuration dataclasses: dict/JSON/YAML round trips and ``replace``."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        if not isinstance(data, dict):
            raise ValueError(f"a {cls.__name__} is a mapping of fields, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown configuration field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls: type[C], path: str | Path) -> C:
        """Read JSON (``.json``) or YAML (``.yaml``/``.yml``); fields not given keep the defaults."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"no configuration file at {path}")
        import yaml

        text = path.read_text()
        try:
            data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        except (ValueError, yaml.YAMLError) as err:
            kind = "YAML" if path.suffix in (".yaml", ".yml") else "JSON"
            raise ValueError(f"{path} is not valid {kind}: {err}") from None
        return cls.from_dict(data or {})

    def save(self, path: str | Path) -> None:
        from dscd.runs import write_json

        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        else:
            write_json(path, self.to_dict())


def choose_profile(profiles: dict[str, C], name: str, changes: dict[str, Any]) -> C:
    """Profile ``name`` of ``profiles`` with ``changes`` applied; an unknown name lists the known ones."""
    if name not in profiles:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(profiles)}")
    return profiles[name].replace(**changes)
