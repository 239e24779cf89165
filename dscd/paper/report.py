"""Results as committed files, and the text that shows them rendered from those files.

A regeneration (``dscd reproduce``) writes everything under ``outputs/<profile>/``, which git ignores.
Its small result files (the claims and metrics JSON, the tables, the figures as PNG, and
``reproduce.json`` with each notebook's wall time) are *published* into ``results/<profile>/``, which is
committed; so are the benchmark records (``results/benchmarks/*.json``) and the calibration summaries
(``results/calibration/*.json``). The README's headline and the documentation's results and benchmarks
pages are then *rendered* from those files, between marker comments::

    <!-- dscd report: headline -->
    ... generated, never edited by hand ...
    <!-- dscd report end -->

:func:`render` rewrites every marked region of the files it is given and returns those that changed;
``dscd report`` runs it, and ``dscd report --check`` fails when the committed text differs from what the
committed result files give (a test runs it). So no result number in the README or the documentation
is typed by hand.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["KEPT_RUN_FILES", "MARKER_END", "PUBLISHED_FILES", "REGIONS", "KeptRuns", "benchmark_record",
           "benchmarks_page", "figure_markdown", "headline", "keep_runs", "notebook_figures", "profiles_page",
           "publish", "render", "render_text", "restore_runs", "results_page", "search_cost", "write_benchmark"]

#: The files of ``outputs/<profile>/`` that :func:`publish` copies, as glob patterns relative to it.
PUBLISHED_FILES: tuple[str, ...] = ("reproduce.json", "figures/*.json", "figures/*.png", "figures/*.pdf",
                                    "tables/*.md", "tables/*.csv")
#: Profiles from the largest to the smallest: the README's headline shows the first one published.
_PROFILE_ORDER: tuple[str, ...] = ("paper", "quick", "smoke")
#: The figure the README shows, by profile-relative path, in order of preference: time to collapse (the
#: evidence of the central claim, notebook 02), else Figure 1.
_HEADLINE_FIGURES: tuple[str, ...] = ("figures/02_survival.png", "figures/01_figure1.png")

_MARKER = re.compile(r"(<!-- dscd report: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- dscd report end -->)", re.S)
MARKER_END = "<!-- dscd report end -->"


# ------------------------------------------------------------------------------------ publishing


def publish(outputs: str | Path, results: str | Path) -> list[Path]:
    """Copy a finished regeneration's result files (:data:`PUBLISHED_FILES`) from ``outputs`` (an
    ``outputs/<profile>`` folder) into ``results`` (``results/<profile>``), replacing what an earlier
    publication put there, so that the folder holds one regeneration's files only. Returns the files
    written. Refuses a folder without ``reproduce.json`` or one whose notebooks did not all succeed."""
    outputs, results = Path(outputs), Path(results)
    record_path = outputs / "reproduce.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{outputs} holds no reproduce.json: run dscd reproduce first")
    record = json.loads(record_path.read_text())
    failed = sorted(n for n, r in (record.get("notebooks") or {}).items() if r.get("status") != "ok")
    if failed:
        raise ValueError(f"{outputs}: notebook(s) {', '.join(failed)} did not succeed; publish a finished "
                         "regeneration only")
    sources = sorted({p for pattern in PUBLISHED_FILES for p in outputs.glob(pattern) if p.is_file()})
    for pattern in PUBLISHED_FILES:  # the previous publication's files go: one regeneration per folder
        for old in results.glob(pattern):
            if old.is_file():
                old.unlink()
    written = []
    for source in sources:
        target = results / source.relative_to(outputs)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    return written


# ------------------------------------------------------------------------------------ kept searches

#: What :func:`keep_runs` keeps of a finished search besides its per-epoch records (``metrics.jsonl``, gzipped).
KEPT_RUN_FILES: tuple[str, ...] = ("config.json", "meta.json", "summary.json", "genotype.json", "genotype_best.json")


def keep_runs(outputs: str | Path, results: str | Path) -> list[str]:
    """Copy every finished search of a regeneration (``outputs/<profile>/runs/<name>`` with a
    ``summary.json``) not yet kept into ``results/<profile>/runs/<name>``: :data:`KEPT_RUN_FILES` and the
    per-epoch records gzipped, no checkpoints. A regeneration longer than one working session can so
    be committed in parts and continued elsewhere with :func:`restore_runs`. Returns the names kept."""
    import gzip

    from dscd.runfolder import write_atomic

    kept = []
    for folder in sorted(Path(outputs, "runs").glob("*/summary.json")):
        folder, target = folder.parent, Path(results, "runs", folder.parent.name)
        if (target / "summary.json").is_file() or not (folder / "metrics.jsonl").is_file():
            continue
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(target / "metrics.jsonl.gz", gzip.compress((folder / "metrics.jsonl").read_bytes(), mtime=0))
        for name in KEPT_RUN_FILES[::-1]:  # summary.json last: its presence says the kept run is whole
            if (folder / name).is_file():
                shutil.copyfile(folder / name, target / name)
        kept.append(folder.name)
    return kept


class KeptRuns:
    """While a regeneration runs, keep its finished searches (:func:`keep_runs`) every ``every`` seconds,
    and once more on leaving: a call killed outright (the end of a working session) has then kept all
    but the searches of its last ``every`` seconds. ``kept`` lists the names kept so far."""

    def __init__(self, outputs: str | Path, results: str | Path, every: float = 60.0) -> None:
        import threading

        # absolute now: papermill runs each notebook with the process' working directory changed (its cwd),
        # so a relative path would name another folder while the thread runs
        self.outputs, self.results, self.every = Path(outputs).resolve(), Path(results).resolve(), every
        self.kept: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keep-runs", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.kept += keep_runs(self.outputs, self.results)

    def __enter__(self) -> KeptRuns:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.kept += keep_runs(self.outputs, self.results)


def _reused_here(summary: dict[str, Any]) -> bool:
    """Whether the notebooks here would reuse a kept search: its profile's configuration resolves to data with
    the same contents on this machine, wherever they lie (else its folder would only be in the way)."""
    from dscd.data import source_fingerprint
    from dscd.profiles import get_profile
    from dscd.search import search_profile

    config = summary.get("config") or {}
    try:
        here = search_profile(get_profile(config.get("profile", "")).name).with_data_resolved().resolved_data
        return source_fingerprint(here) == summary.get("data_fingerprint")
    except (ValueError, OSError):  # an unknown profile, no data configured, a source missing here
        return False


def restore_runs(results: str | Path, outputs: str | Path) -> list[str]:
    """Put the searches kept by :func:`keep_runs` back into ``outputs/<profile>/runs``, where the notebooks
    reuse them (a finished search is reused when its summary holds the same configuration and data).
    A search whose folder already exists is left alone, and so is one the notebooks would not reuse
    here (other data, or data this machine lacks). Returns the names restored."""
    import gzip

    restored = []
    for path in sorted(Path(results, "runs").glob("*/summary.json")):
        source, target = path.parent, Path(outputs, "runs", path.parent.name)
        if target.exists() or not _reused_here(json.loads(path.read_text())):
            continue
        target.mkdir(parents=True)
        (target / "metrics.jsonl").write_bytes(gzip.decompress((source / "metrics.jsonl.gz").read_bytes()))
        for name in KEPT_RUN_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, target / name)
        restored.append(source.name)
    return restored


# ------------------------------------------------------------------------------------ benchmarks


def benchmark_record(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                     notes: str = "", **data: Any) -> dict[str, Any]:
    """A benchmark's JSON record: what it measured as a table (``columns``, ``rows``), the command that
    ran it, when, on what machine, and any further ``data``. :func:`benchmarks_page` renders it."""
    from dscd.run_common import run_metadata

    return {"title": title, "command": " ".join(["python", *sys.argv]), "date": datetime.now(UTC).date().isoformat(),
            **run_metadata(), "processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "others_cpu_percent": _others_cpu_percent(), "notes": notes,
            "table": {"columns": list(columns), "rows": [list(r) for r in rows]}, **data}


def _others_cpu_percent(seconds: float = 1.0) -> float | None:
    """How busy the CPUs are (percent of all cores, from ``/proc/stat``) over ``seconds`` while this
    process sleeps: other work beside a benchmark, sampled when it has finished measuring. ``None``
    where ``/proc/stat`` is missing."""
    import time

    def totals() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    try:
        total0, idle0 = totals()
        time.sleep(seconds)
        total1, idle1 = totals()
    except (OSError, ValueError, IndexError):
        return None
    return round(100.0 * (1 - (idle1 - idle0) / max(total1 - total0, 1)), 1)


def machine_tag(device: str = "cpu") -> str:
    """A short name for this machine in benchmark file names: ``cpu<cores>`` or ``cuda-<gpu name>``."""
    if device.startswith("cuda"):
        import torch

        name = torch.cuda.get_device_name(0).lower()
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.removeprefix("nvidia ")).strip("-")
    return f"cpu{os.cpu_count()}"


def write_benchmark(record: dict[str, Any], name: str, configuration: str, device: str = "cpu",
                    out: str | Path | None = None) -> Path:
    """Write ``record`` to ``out``, or by default to ``results/benchmarks/<name>-<configuration>-<machine>.json``."""
    from dscd.run_common import write_json

    path = Path(out) if out else Path("results/benchmarks") / f"{name}-{configuration}-{machine_tag(device)}.json"
    write_json(path, record)
    return path


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def benchmarks_page(root: str | Path, link_prefix: str = "") -> str:
    """Every benchmark record under ``root/results/benchmarks``: title, machine, command and table."""
    files = sorted((Path(root) / "results" / "benchmarks").glob("*.json"))
    if not files:
        return "No benchmark has been recorded yet.\n"
    parts = []
    for path in files:
        record = json.loads(path.read_text())
        busy = record.get("others_cpu_percent")
        load_text = f", other processes using {busy:.0f}% of the CPUs as it finished" if busy is not None else ""
        parts.append(f"### {record['title']}\n\n"
                     f"`{record['command']}`, {record['date']}, {record.get('cores', '?')} cores "
                     f"({record.get('processor', '?')}), torch {record.get('torch', '?')}{load_text}; "
                     f"[{path.name}]({link_prefix}results/benchmarks/{path.name})\n\n"
                     + _table(record["table"]["columns"], record["table"]["rows"])
                     + (f"\n{record['notes']}\n" if record.get("notes") else ""))
    return "\n".join(parts)


# ------------------------------------------------------------------------------------ results


def _published_profiles(root: Path) -> list[str]:
    return [p for p in _PROFILE_ORDER if (root / "results" / p / "reproduce.json").is_file()]


def _claims(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """(notebook, claim) for every claim recorded in the profile's ``figures/NN_*.json`` files."""
    out = []
    for path in sorted((folder / "figures").glob("[0-9][0-9]_*.json")):
        data = json.loads(path.read_text())
        for claim in data.get("claims", []) if isinstance(data, dict) else []:
            if isinstance(claim, dict) and "verdict" in claim:
                out.append((path.name[:2], claim))
    return out


def _test_text(test: dict[str, Any] | None) -> str:
    """A claim's test as the headline cites it: ``"; Fisher's exact test (two-sided), p = 0.0476"``, then the
    permutation p of a log-rank test and the Holm-adjusted p where the record has them:
    ``"; log-rank test (...), p = 0.00184 (permutation p = 0.00794; Holm-adjusted p = 0.00553)"``."""
    if not test or "p_value" not in test:
        return ""
    more = [f"{label} p = {float(test[key]):.3g}" for key, label in (("p_permutation", "permutation"),
                                                                     ("p_holm", "Holm-adjusted")) if key in test]
    return f"; {test.get('name', 'test')}, p = {float(test['p_value']):.3g}" + (f" ({'; '.join(more)})" if more else "")


#: The key to Table 1's columns, beside it in the README.
TABLE1_KEY = ("*Final Arch. valid*: seeds whose final cell is a valid architecture; *Search Test*: the supernet's "
              "test accuracy (%) at the search's end; *kept edges*: edges of each seed's discretised cell; "
              "*Eval. Test*: the valid cells trained from scratch (%); *runs*: the run folders kept in "
              "`results/<profile>/runs`; *y_best refreshed*: this package's DSCD variant that re-evaluates its "
              "record at each switch to global steps.")


def _data_words(config: Any) -> str:
    """A run configuration's images in words: ``CIFAR-10 at 8x8, 50 images per class``."""
    source = "sklearn's digits" if config.data == "digits" else "CIFAR-10"
    per_class = "all images" if config.per_class is None else f"{config.per_class} images per class"
    return f"{source} at {config.image_size}x{config.image_size}, {per_class}"


def _scale(profile: str) -> str:
    """One sentence: the data and network sizes of ``profile``'s searches and final trainings."""
    from dscd.search import search_profile
    from dscd.train import train_profile

    s, t = search_profile(profile), train_profile(profile)
    return (f"Scale: searches on {_data_words(s)}, C = {s.channels}, {s.layers} cells; final trainings on "
            f"{_data_words(t)}, "
            f"C = {t.channels}, {t.layers} cells, {t.epochs} epochs"
            + (". Accuracies at this scale do not compare with the paper's 97 %." if profile != "paper" else "."))


def _bottom_line(claims: Sequence[tuple[str, dict[str, Any]]], profile: str) -> str:
    """The study's bottom line, in the verdicts of its two central claims (notebook 02), or ``""``."""
    verdicts = {c.get("id"): c["verdict"] for _, c in claims}
    delays, prevents = verdicts.get("dscd_delays_collapse"), verdicts.get("dscd_prevents_collapse")
    if delays is None or prevents is None:
        return ""
    return (f"**Bottom line** (the DARTS space at `{profile}`): *DSCD delays FairDARTS' collapse*: **{delays}**; "
            f"*DSCD keeps every seed valid*: **{prevents}**.\n")


#: Notebook 06's claims per relaxation, by the end of their id (``darts_dscd_more_accurate``), in words.
_NAS_BENCH_201_CLAIMS = (("dscd_more_accurate", "more accurate cells"),
                         ("dscd_avoids_collapse", "the collapse avoided more often"),
                         ("dscd_collapses_later", "a later collapse"))


def _nas_bench_201_bottom_line(claims: Sequence[tuple[str, dict[str, Any]]], profile: str) -> str:
    """Notebook 06's bottom line: each claim of DSCD against Adam with its verdict per relaxation, or ``""``."""
    verdicts = {c.get("id"): c["verdict"] for notebook, c in claims if notebook.startswith("06")}
    parts = []
    for suffix, words in _NAS_BENCH_201_CLAIMS:
        found = [(name, verdicts[f"{relaxation}_{suffix}"]) for relaxation, name in
                 (("darts", "DARTS"), ("fairdarts", "FairDARTS")) if f"{relaxation}_{suffix}" in verdicts]
        if found:
            parts.append(f"*{words}*: " + ", ".join(f"{name} **{verdict}**" for name, verdict in found))
    if not parts:
        return ""
    return (f"**Bottom line** (NAS-Bench-201 at `{profile}`, DSCD against Adam at the same budget): "
            + "; ".join(parts) + ".\n")


def _claim_lines(claims: Sequence[tuple[str, dict[str, Any]]], summarise_ablations: bool = True) -> str:
    """A bullet per claim; with ``summarise_ablations`` (the README), one line per ablation notebook instead
    of its claims (its verdicts, by id), and one line for notebook 06's, whose verdicts its bottom line gives."""
    from dscd.paper.reproduce import ABLATIONS

    lines = []
    ablations: dict[str, list[str]] = {}
    nas_bench_201 = 0
    for notebook, c in claims:
        if summarise_ablations and notebook in ABLATIONS:
            ablations.setdefault(notebook, []).append(f"{c.get('id', '?')} {c['verdict']}")
            continue
        if summarise_ablations and notebook == "06":
            nas_bench_201 += 1
            if nas_bench_201 == 1:
                lines.append("- NAS-Bench-201, notebook 06: the verdicts of its bottom line above (each claim with its "
                             "counts, effect and Holm-adjusted test: [docs/results.md](docs/results.md))")
            continue
        paper = f" ({c['paper']})" if c.get("paper") else ""
        lines.append(f"- *{c.get('claim', c.get('id', '?'))}*{paper}: **{c['verdict']}**. "
                     f"{c.get('evidence', '')}{_test_text(c.get('test'))} [notebook {notebook}]")
    lines += [f"- Ablation, notebook {n}: {', '.join(v)} (each prediction with its counts: "
              "[docs/results.md](docs/results.md))" for n, v in sorted(ablations.items())]
    return "\n".join(lines) + "\n" if lines else "No claim is recorded.\n"


def _table1(folder: Path) -> tuple[str, str] | None:
    """The profile's Table 1 as (file name, Markdown): the final one of notebook 04, else the search rows."""
    for name in ("table1.md", "02_table1_search.md", "01_table1_search.md"):
        path = folder / "tables" / name
        if path.is_file():
            return name, path.read_text()
    return None


#: The key to the NAS-Bench-201 table, beside it in the README.
NAS_BENCH_201_KEY = (
    "one row per arm and budget; *CIFAR-10 test*: the found cells' accuracy looked up in NAS-Bench-201's "
    "12-epoch table (published tables quote 200-epoch training: compare through ranks); *rank percentile*: "
    "the share of all 15,625 cells that score no higher; *collapsed*: seeds whose cell learns nothing (no "
    "convolution from input to output); *against Adam*: DSCD's cells against Adam's at the same budget and "
    "relaxation, with the Holm-adjusted p of notebook 06's family.")


def _nas_bench_201_table(folder: Path) -> str:
    """Notebook 06's arm table with its scale and key, or ``""`` when the profile has none."""
    from dscd.profiles import method_changes
    from dscd.search import search_profile

    path = folder / "tables" / "06_nas_bench_201.md"
    if not path.is_file():
        return ""
    c = search_profile(folder.name, **method_changes("nb201-darts"))
    scale = f"searched on {_data_words(c)}, C = {c.channels}, {c.layers} cells (N = {c.layers // 3} per stage)"
    return (f"NAS-Bench-201 (notebook 06, `06_nas_bench_201.md`; {scale}): {NAS_BENCH_201_KEY}\n\n"
            f"{path.read_text()}")


def _minutes(folder: Path) -> str:
    record = json.loads((folder / "reproduce.json").read_text())
    notebooks = record.get("notebooks") or {}
    rows = [[n, r.get("notebook", ""), r.get("status", ""), round(float(r.get("seconds") or 0) / 60, 1)]
            for n, r in sorted(notebooks.items())]
    total = round(sum(row[3] for row in rows), 1)
    return (f"Package {record.get('version', '?')} at commit `{str(record.get('commit', '?'))[:10]}`, torch "
            f"{record.get('torch', '?')}, Python {record.get('python', '?')}. Wall time of each notebook's "
            f"last execution (which reuses finished runs), {total} min in all:\n\n"
            + _table(["notebook", "file", "status", "minutes"], rows))


def regeneration_cost(root: Path, profile: str, link_prefix: str = "") -> str:
    """One sentence: what regenerating ``profile`` from scratch costs, per notebook, from its
    ``results/benchmarks/regeneration-<profile>-*.json`` (``benchmarks/bench_regeneration.py``); ``""``
    when there is none."""
    files = sorted((root / "results" / "benchmarks").glob(f"regeneration-{profile}-*.json"))
    if not files:
        return ""
    data = json.loads(files[-1].read_text())
    columns, rows = data["table"]["columns"], [r for r in data["table"]["rows"] if r[0] != "all"]
    wall = columns.index("wall (min)")
    per_notebook = ", ".join(f"{row[0]} {row[wall]:.0f}" if row[wall] >= 10 else f"{row[0]} {row[wall]:.1f}"
                             for row in rows)
    total = sum(row[wall] for row in rows)
    how, detail = "", f"minutes per notebook: {per_notebook}"
    if "wall, one seed a process (min)" in columns:  # a record of the batched engine's regeneration
        separate = sum(row[columns.index("wall, one seed a process (min)")] for row in rows)
        names = {"darts": "DARTS", "nas-bench-201": "NAS-Bench-201"}
        batched = " and ".join(f"{n} seeds of a {names.get(space, space)} search"
                               for space, n in (data.get("batch_seeds") or {}).items() if n > 1)
        how = f" with {batched or 'no seeds'} in one process"
        detail = f"{separate / 60:.1f} h with every seed in its own process; {detail}"
    command = "make figures" + ("" if profile == "quick" else f" PROFILE={profile}")
    return (f"From scratch, `{command}` takes about {total / 60:.1f} h on {data.get('cores', '?')} CPU cores{how} "
            f"({detail}), estimated from parts measured with nothing else running "
            f"([{files[-1].name}]({link_prefix}results/benchmarks/{files[-1].name})).\n")


def search_cost(root: Path, profile: str, link_prefix: str = "") -> str:
    """One sentence: what a search of ``profile`` costs per epoch in each search space, from
    ``results/benchmarks/spaces-<profile>-*.json`` (``benchmarks/bench_spaces.py``); ``""`` when there is none."""
    files = sorted((root / "results" / "benchmarks").glob(f"spaces-{profile}-*.json"))
    if not files:
        return ""
    data = json.loads(files[-1].read_text())
    per_space: dict[str, list[float]] = {}
    for m in data.get("measurements", []):
        if m["configuration"] == m["space"]:  # the profile's own scale of the space, not a candidate
            per_space.setdefault(m["space"], []).append(m["epoch_s"])
    if not per_space:
        return ""
    threads = {m["threads"] for m in data["measurements"]}
    costs = " and ".join(f"{max(v):.2g} s in the {space} space" for space, v in per_space.items())
    return (f"A `{profile}` search epoch costs at most {costs} (Adam or DSCD, NAS-Bench-201 in either relaxation; "
            f"{'/'.join(map(str, sorted(threads)))} thread per seed, so two seeds at once on "
            f"{data.get('cores', '?')} cores), measured alone "
            f"([{files[-1].name}]({link_prefix}results/benchmarks/{files[-1].name})).\n")


def headline(root: str | Path) -> str:
    """The README's headline: Table 1, the paper's claims with their verdicts and one figure, from the
    largest profile published under ``root/results``."""

    root = Path(root)
    profiles = _published_profiles(root)
    if not profiles:
        return "No regeneration has been published yet: run `make figures`, then `dscd reproduce --publish`.\n"
    profile = profiles[0]
    folder = root / "results" / profile
    claims = _claims(folder)
    parts = [f"From the last `{profile}` regeneration, published in [results/{profile}](results/{profile}) "
             f"(every result: [docs/results.md](docs/results.md); budgets, seeds and configuration: "
             f"[profiles](docs/guide/profiles.md)). {_scale(profile)}\n"]
    for bottom in (_bottom_line(claims, profile), _nas_bench_201_bottom_line(claims, profile)):
        if bottom:
            parts.append(bottom)
    table = _table1(folder)
    if table:
        parts.append(f"Table 1 (`{table[0]}`): {TABLE1_KEY}\n\n{table[1]}")
    nas_bench_201 = _nas_bench_201_table(folder)
    if nas_bench_201:
        parts.append(nas_bench_201)
    parts.append("The paper's claims, as the notebooks judge them:\n\n" + _claim_lines(claims))
    for figure in _HEADLINE_FIGURES:
        if (folder / figure).is_file():
            parts.append(f"![{Path(figure).stem}](results/{profile}/{figure})\n")
            break
    return "\n".join(parts)


def _collapse_cost(entry: dict[str, Any], budget: int) -> tuple[str, str]:
    """A calibration budget's search seconds per epoch, and what one worker spends to reach its runs'
    Kaplan-Meier median collapse epoch; ``> `` the whole budget's minutes when the median is not reached."""
    from dscd.survival import CollapseTime, median_time

    per_epoch = entry.get("mean_seconds_per_epoch")
    if per_epoch is None:
        return "-", "-"
    median = median_time([CollapseTime(int(r["epoch"]), bool(r.get("collapsed"))) for r in entry.get("runs", [])])
    minutes = f"{median * per_epoch / 60:.0f}" if median is not None else f"> {budget * per_epoch / 60:.0f}"
    return f"{per_epoch:.2f}", minutes


def _calibration(root: Path, link_prefix: str) -> str:
    files = sorted((root / "results" / "calibration").glob("*.json"))
    if not files:
        return ""
    parts = ["## Calibration of the protocol\n\n"
             "One method alone on calibration seeds (never used for results), per candidate configuration and "
             "budget: runs collapsed from some epoch to the end, and those epochs. In the DARTS space the method "
             "is FairDARTS and the collapse an empty normal cell; other spaces say theirs.\n"]
    for path in files:
        data = json.loads(path.read_text())
        rows = []
        for name, candidate in sorted(data.get("candidates", {}).items()):
            changes = ", ".join(f"{k}={v}" for k, v in (candidate.get("changes") or {}).items()) or "the profile"
            for budget, entry in sorted(candidate.get("budgets", {}).items(), key=lambda kv: int(kv[0])):
                runs = entry.get("runs", [])
                collapsed = [r for r in runs if r.get("collapsed")]
                epochs = " ".join(str(r["epoch"]) for r in collapsed) or "-"  # a collapsed run's event epoch
                seeds = " ".join(str(r["seed"]) for r in runs)
                rows.append([name, changes, budget, f"{len(collapsed)}/{len(runs)}", epochs,
                             *_collapse_cost(entry, int(budget)), seeds])
        protocol = data.get("protocol") or {}
        chosen = protocol.get("chosen")
        if chosen:
            changes = ", ".join(f"{k}={v}" for k, v in (chosen.get("changes") or {}).items()) or "none"
            decision = (f"The rule ({protocol['rule']}) gives candidate `{chosen['candidate']}` (changes: {changes}), "
                        f"long budget {chosen['long_budget']} and short budget {chosen['short_budget']} epochs.\n")
        elif protocol.get("finding"):
            decision = f"The rule ({protocol['rule']}) gives no protocol: {protocol['finding']}.\n"
        elif protocol:
            decision = f"The rule ({protocol['rule']}) does not give a protocol yet.\n"
        else:
            decision = ""
        space = (f" in the {data['space']} space: {data.get('method', '')}; {data.get('measure', '')}"
                 if data.get("space") else "")
        parts.append(f"\n`{data.get('profile', path.stem)}`{space} ([{path.name}]({link_prefix}results/calibration/"
                     f"{path.name})):\n\n"
                     + _table(["candidate", "changes", "epochs", "collapsed", "collapse epochs", "s/epoch",
                               "minutes to the median collapse", "seeds"], rows)
                     + (f"\nTimes: {data['timing']}.\n" if data.get("timing") else "")
                     + (f"\n{decision}" if decision else ""))
    return "".join(parts)


def results_page(root: str | Path, link_prefix: str = "../") -> str:
    """The documentation's results page: per published profile, the wall times, every table, every
    claim and every figure; then the calibration summaries. Links are relative to ``link_prefix``."""
    root = Path(root)
    parts = []
    for profile in _published_profiles(root):
        folder = root / "results" / profile
        cost = regeneration_cost(root, profile, link_prefix)
        warning = ("**Plumbing only**: this profile checks that every code path runs, on tiny data; its verdicts "
                   "say nothing about the paper.\n\n" if profile == "smoke" else "")
        parts.append(f"## The `{profile}` profile\n\n{warning}{_scale(profile)}\n\n" + _minutes(folder)
                     + (f"\n{cost}" if cost else ""))
        parts.append("\n### Claims\n\n" + _claim_lines(_claims(folder), summarise_ablations=False))
        for table in sorted((folder / "tables").glob("*.md")):
            parts.append(f"\n### `{table.name}`\n\n" + table.read_text())
        figures = sorted((folder / "figures").glob("*.png"))
        if figures:
            parts.append("\n### Figures\n")
            parts += [figure_markdown(f"{link_prefix}results/{profile}/figures/{f.name}") for f in figures]
        parts.append("\n")
    calibration = _calibration(root, link_prefix)
    if calibration:
        parts.append(calibration)
    return "".join(parts) if parts else "No regeneration has been published yet.\n"


def figure_markdown(link: str) -> str:
    """A published figure for the documentation: a MyST ``figure`` at ``link``, its caption from
    :func:`dscd.paper.plots.figure_caption` (the file name where it has none)."""
    from dscd.paper.plots import figure_caption

    name = Path(link).name
    caption = figure_caption(name) or name
    return f"\n```{{figure}} {link}\n:alt: {Path(name).stem}\n\n{caption}\n```\n"


def notebook_figures(root: str | Path, notebook: str, link_prefix: str) -> str:
    """The figures a notebook (``"02_dscd_search"``) made in the largest published regeneration that has any,
    as Markdown for its documentation page (which shows the code unexecuted); ``""`` when none is published.
    The smoke profile's are marked as plumbing only."""
    root = Path(root)
    prefix = notebook[:3]
    for profile in _published_profiles(root):
        figures = sorted((root / "results" / profile / "figures").glob(f"{prefix}*.png"))
        if figures:
            warning = (" **Plumbing only**: the smoke profile runs every code path on tiny data; its figures say "
                       "nothing about the paper." if profile == "smoke" else "")
            return (f"## Figures as published (`{profile}` profile)\n\nWhat this notebook drew in the published "
                    f"`{profile}` regeneration (`results/{profile}/figures/`); this page shows the code without "
                    f"running it.{warning}\n" + "".join(figure_markdown(f"{link_prefix}results/{profile}/figures/"
                                                                         f"{f.name}") for f in figures))
    return ""


def profiles_page(root: str | Path | None = None) -> str:
    """The profiles as :data:`dscd.profiles.PROFILES` defines them: what each is for, its search and
    final-training configurations (the fields that differ from the paper's), and its budgets with
    seeds per budget. Rendered from the registry itself, so the page cannot drift from it."""
    from dscd.profiles import METHOD_LABELS, METHODS, PROFILES
    from dscd.search import search_profile, search_steps_per_epoch

    def changes(values: dict[str, Any]) -> str:
        return ", ".join(f"`{k}={v}`" for k, v in values.items()) or "the paper's"

    def budgets(profile: Any, method: str) -> str:
        return ", ".join(f"{e} ({len(profile.seeds(method, e))})" for e in profile.budgets(method)) or "-"

    methods = [m for m in METHODS if any(p.budgets(m) for p in PROFILES.values())]
    rows = [(f"`{p.name}`", p.summary, *(budgets(p, m) for m in methods), p.compare_budget) for p in PROFILES.values()]
    text = ("Search budgets in epochs, with the number of seeds (0, 1, ...) in brackets; B is the budget at which "
            "FairDARTS and FairDARTS + DSCD are compared.\n\n")
    text += _table(("profile", "for", *(METHOD_LABELS[m] for m in methods), "B"), rows)
    text += "\nConfigurations, as changes to the paper's (`dscd.search.SearchConfig`, `dscd.train.TrainConfig`):\n\n"
    text += _table(("profile", "search", "final training"),
                   [(f"`{p.name}`", changes(dict(p.search)), changes(dict(p.train))) for p in PROFILES.values()])
    text += ("\nDSCD's time constants in epochs (Algorithm 2: T steps per local or global phase, a record window of "
             "the last K objective values, and phi annealed over the whole search, so one phi schedule per budget). "
             "Steps per epoch are the search's iterations per epoch: each half of the training set (`per_class` "
             "images per class, CIFAR-10's 5,000 when null, ten classes) over `batch_size`:\n\n")
    constants = []
    for p in PROFILES.values():
        config = search_profile(p.name, optimizer="dscd")
        steps = search_steps_per_epoch(config)
        dscd_budgets = p.budgets("dscd")
        constants.append((f"`{p.name}`", steps, f"{config.dscd_T} steps = {config.dscd_T / steps:.3g} epochs",
                          f"{config.dscd_K:,} steps = {config.dscd_K / steps:.3g} epochs",
                          ", ".join(f"{e} epochs = {e * steps:,} steps" for e in dscd_budgets) or "-"))
    text += _table(("profile", "steps per epoch", "T", "K", "phi annealed over (DSCD's budgets)"), constants)
    names = {"darts": "DARTS", "nas-bench-201": "NAS-Bench-201"}
    batching = [f"`{p.name}`: " + (", ".join(f"{n} of a {names.get(space, space)} search"
                                             for space, n in p.batch_seeds.items() if n > 1) or "each alone")
                for p in PROFILES.values()]
    text += ("\nSeeds of one search that the notebooks and `dscd reproduce` run in one process (`batch_seeds`: how "
             f"runs execute, not what they compute; see the search guide): {'; '.join(batching)}.\n")
    return text


# ------------------------------------------------------------------------------------ rendering

#: What each marker name renders, given the repository root.
REGIONS: dict[str, Callable[[Path], str]] = {
    "headline": headline,
    "results": results_page,
    "benchmarks": lambda root: benchmarks_page(root, link_prefix="../"),
    "profiles": profiles_page,
    # the default profile's cost from scratch, beside `make figures` in the README's quick start
    "cost": lambda root: ((regeneration_cost(root, "quick")
                           or "`benchmarks/bench_regeneration.py` measures its cost.\n") + search_cost(root, "quick")),
}


def render_text(text: str, root: str | Path, source: str = "<text>") -> str:
    """``text`` with every marked region replaced by what :data:`REGIONS` renders from ``root``'s files."""
    root = Path(root)

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in REGIONS:
            raise ValueError(f"{source}: unknown report region {name!r}; known: {', '.join(REGIONS)}")
        return match[1] + "\n" + REGIONS[name](root).rstrip("\n") + "\n\n" + match[4]

    return _MARKER.sub(replace, text)


def render(files: Sequence[str | Path], root: str | Path, check: bool = False) -> list[Path]:
    """Render the marked regions of ``files`` from ``root``'s result files; return those whose text
    changed (with ``check=True`` nothing is written: the list is what is out of date)."""
    changed = []
    for file in files:
        path = Path(file)
        text = path.read_text()
        new = render_text(text, root, source=str(path))
        if new != text:
            changed.append(path)
            if not check:
                from dscd.run_common import write_text

                write_text(path, new)
    return changed


def default_files(root: str | Path) -> list[Path]:
    """The files ``dscd report`` renders: the README and every Markdown page of ``docs/`` with a marker."""
    root = Path(root)
    candidates = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [p for p in candidates if p.is_file() and _MARKER.search(p.read_text())]
