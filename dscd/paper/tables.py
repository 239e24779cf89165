"""Tables as rows of plain dicts, written as Markdown and CSV (no pandas needed)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["markdown_table", "write_table"]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):  # rounded values as they are (97.0, 0.499), others to 4 significant digits
        return str(value) if value == round(value, 4) and abs(value) < 1e6 else f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A GitHub Markdown table of ``rows`` (their keys are the columns; floats with up to 4 decimals as
    they are, others to 4 significant digits)."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: Sequence[dict[str, Any]], stem: str | Path) -> tuple[Path, Path]:
    """Write ``stem.md`` and ``stem.csv``; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    md, csv_path = stem.with_suffix(".md"), stem.with_suffix(".csv")
    md.write_text(markdown_table(rows))
    with open(csv_path, "w", newline="") as fh:
        if rows:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return md, csv_path
