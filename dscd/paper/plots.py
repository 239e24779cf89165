"""Figures from recorded numbers: data in, matplotlib Figure (or file) out.

Nothing here trains or searches; notebooks and the CLI call these functions.
"""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy import stats

from dscd.optim import DSCD_DEFAULTS, PHI_MAX, beta_params

__all__ = ["FIGURE_CAPTIONS", "animate_beta_annealing", "beta_density", "draw_first_genotypes", "figure_caption",
           "plot_accuracy_over_search", "plot_benchmark", "plot_beta_annealing", "plot_cell_weights",
           "plot_dscd_steps", "plot_found_cells", "plot_learning_curves", "plot_phi_schedule", "plot_survival",
           "save_figure"]

#: The caption of each figure the notebooks save, by file-name pattern (``fnmatch``, without the suffix);
#: the results page and the notebooks' documentation pages print them under the figures.
FIGURE_CAPTIONS: dict[str, str] = {
    "01_figure1": "Figure 1 (section 4.1): FairDARTS' cells over the search. Top: mean sigmoid(alpha) per cell "
                  "type, the 0.85 threshold dotted; bottom: edges each cell keeps when discretised. Thin lines: one "
                  "seed each, thick: their mean; grey bands: epochs whose discretised normal cell is invalid "
                  "(darker: more seeds).",
    "01_genotype_*": "FairDARTS' discretised cells (first seed) at the end of the budget in the file name: the "
                     "edges whose sigmoid weight reaches 0.85, coloured by operation (key below the cells).",
    "02_figure2": "Figure 2 (section 4.2): FairDARTS + DSCD. Rows 1-2 as in Figure 1; row 3: epochs since x_best "
                  "last changed (a dot: alpha sits exactly at x_best at the epoch's end); row 4: global phases "
                  "begun (red) and those with an accepted proposal (green), cumulative.",
    "02_dscd_steps": "DSCD over the search (thin: a seed; thick: the mean): proposals accepted per epoch in each cell "
                     "type, and the alpha-step loss against y_best, the minimum of the last K observed losses that a "
                     "proposal must beat (Algorithm 2).",
    "02_survival": "Time to collapse: Kaplan-Meier fraction of seeds whose normal cell is still valid, per method "
                   "and budget; + marks a run valid at its end (censored); each curve is thinner than the one "
                   "before, so curves that coincide stay visible.",
    "02_genotype_*": "The discretised cells of the run in the file name (first seed): its final cell, coloured "
                     "by operation (key below the cells).",
    "03_beta_annealing": "Section 3.2: the Beta proposal density around a coordinate's value v as the concentration "
                         "phi grows; the proposals narrow around v.",
    "03_phi_schedule": "Appendix C: the cosine schedule of the concentration phi over a run's steps.",
    "04_learning_curves": "Final trainings, one colour per genotype (key below): training loss (left), train (dashed) "
                          "and test (solid) accuracy (right) per epoch.",
    "05_figure3": "Figure 3 (section 4.3): median gap to the global minimum against evaluations, shaded: 95 % "
                  "confidence interval of the median over runs. Adam: one colour per learning rate, "
                  "dashed alone (thin, on top), solid with DSCD (wide, beneath): where DSCD accepts nothing the two "
                  "coincide.",
    "05_figure3_*": "Figure 3 (section 4.3) at the setting in the file name (d2: the second dimension; rotated: the "
                    "rotated functions): median gap to the global minimum against evaluations, 95 % interval shaded.",
    "05_long_budget": "Figure 3's functions at a longer evaluation budget: median gap to the global minimum against "
                      "evaluations, 95 % interval shaded.",
    "06_found_cells": "NAS-Bench-201: the looked-up CIFAR-10 accuracy (12-epoch) of each arm's found cell, one point "
                      "per seed, over the distribution of all 15,625 cells; dotted: the all-skip cell.",
    "06_accuracy_over_search": "NAS-Bench-201: the discretised cell's looked-up CIFAR-10 accuracy at each epoch of "
                               "the search, one line per seed.",
    "06_survival": "NAS-Bench-201: Kaplan-Meier fraction of seeds whose cell still learns (has a convolution on a "
                   "path from input to output), per arm; + marks a censored run; each curve is thinner than the one "
                   "before, so curves that coincide stay visible.",
    "07_record_window": "The record-window experiment: Kaplan-Meier fraction of seeds whose normal cell is still "
                        "valid, per window K and phase length T, beside FairDARTS and DSCD at the defaults; + marks "
                        "a censored run; each curve is thinner than the one before.",
}


def figure_caption(name: str) -> str | None:
    """The caption of the figure file ``name`` (``02_survival.png`` or its stem) from :data:`FIGURE_CAPTIONS`:
    an exact entry first, else the first matching pattern; ``None`` for a figure without one."""
    stem = Path(name).stem
    if stem in FIGURE_CAPTIONS:
        return FIGURE_CAPTIONS[stem]
    return next((caption for pattern, caption in FIGURE_CAPTIONS.items() if fnmatch.fnmatchcase(stem, pattern)),
                None)


def save_figure(fig: plt.Figure, path_stem: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``path_stem.<fmt>`` for each format; returns the paths written. A PDF records no creation
    date, so the same figure gives the same bytes (a republished regeneration changes only what changed)."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"CreationDate": None} if fmt == "pdf" else None)
        paths.append(path)
    return paths


def draw_first_genotypes(groups: Mapping[str, Sequence[Any]], out: str | Path, name: Callable[[Any], str]
                         ) -> list[plt.Figure]:
    """Draw the final genotype of each group's first seed (``groups``: ``{label: [SearchOutcome, ...]}``)
    and save it as ``out/<name(outcome)>.png``; returns the figures."""
    from dscd.genotype import draw_genotype, load_genotype

    figures = []
    for label, outcomes in groups.items():
        first = outcomes[0]
        fig = draw_genotype(load_genotype(first.folder / "genotype.json"), title=f"{label}, seed {first.seed}")
        save_figure(fig, Path(out) / name(first), formats=("png",))
        figures.append(fig)
    return figures


def beta_density(v: float, phi: float, grid: np.ndarray) -> np.ndarray:
    """Proposal density over the unit interval around unit position ``v`` at ``phi``."""
    a, b = beta_params(v, phi)
    return stats.beta.pdf(grid, float(a), float(b))


def _density_axes(ax: plt.Axes, v: float, phi: float, lo: float, hi: float, grid: np.ndarray) -> None:
    dens = beta_density(v, phi, grid)
    x = lo + grid * (hi - lo)
    ax.fill_between(x, dens / (hi - lo), color="tab:blue", alpha=0.35, lw=0)
    ax.plot(x, dens / (hi - lo), color="tab:blue", lw=1.2)
    ax.axvline(lo + v * (hi - lo), color="tab:red", lw=1, ls="--")
    ax.set_xlim(lo, hi)
    ax.set_ylim(bottom=0)
    ax.set_title(f"$\\phi$ = {phi:.3g}", fontsize=9)


def plot_beta_annealing(
    v: float = 0.75,
    phis: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 0.9, 0.97, 0.99, 0.999),
    domain: tuple[float, float] = DSCD_DEFAULTS.domain,
    points: int = 2001,
) -> plt.Figure:
    """Small multiples of the proposal density around ``v`` for several ``phi``."""
    lo, hi = domain
    grid = np.linspace(0.0, 1.0, points)
    cols = min(4, len(phis))
    rows = int(np.ceil(len(phis) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows), squeeze=False)
    for ax, phi in zip(axes.flat, phis, strict=False):
        _density_axes(ax, v, phi, lo, hi, grid)
    for ax in list(axes.flat)[len(phis):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("proposed value")
    for ax in axes[:, 0]:
        ax.set_ylabel("density")
    fig.suptitle(f"Beta-annealed proposal around x = {lo + v * (hi - lo):.2f} (unit position v = {v}); "
                 "dashed: current position", fontsize=10)
    fig.tight_layout()
    return fig


def plot_phi_schedule(total: int = 1000) -> plt.Figure:
    """The concentration phi over a run of ``total`` steps (:func:`dscd.proposals.phi_schedule`, Appendix C)."""
    from dscd.proposals import phi_schedule

    steps = np.arange(total + 1)
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    ax.plot(steps / total, [phi_schedule(int(s), total) for s in steps])
    ax.set(xlabel="fraction of the step budget", ylabel=r"$\phi$", title="cosine schedule of the concentration")
    fig.tight_layout()
    return fig


def animate_beta_annealing(
    out: str | Path,
    v: float = 0.75,
    frames: int = 60,
    fps: int = 12,
    domain: tuple[float, float] = DSCD_DEFAULTS.domain,
    phi_end: float = 0.995,
    points: int = 1001,
) -> list[Path]:
    """Animate the proposal density as ``phi`` follows the cosine schedule to ``phi_end``.

    Writes ``out`` with suffix ``.gif`` always, and ``.mp4`` too when ffmpeg is on the
    PATH. Returns the paths written.
    """
    if frames < 2:
        raise ValueError(f"frames must be >= 2, got {frames}")
    if fps < 1:
        raise ValueError(f"fps must be >= 1, got {fps}")
    if not 0.0 <= phi_end <= PHI_MAX:
        raise ValueError(f"phi_end must lie in [0, {PHI_MAX}], got {phi_end}")
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"v (the unit position) must lie in [0, 1], got {v}")
    lo, hi = domain
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"the domain needs finite --lo < --hi, got lo={lo}, hi={hi}")
    grid = np.linspace(0.0, 1.0, points)
    steps = np.arange(frames)
    phis = np.minimum((1 - np.cos(np.pi * steps / (frames - 1))) / 2, phi_end)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.17, top=0.9)  # fixed: every frame keeps its x label

    def draw(i: int) -> list:
        ax.clear()
        _density_axes(ax, v, float(phis[i]), lo, hi, grid)
        ax.set_xlabel("proposed value")
        ax.set_ylabel("density")
        ax.set_title(f"step {i + 1}/{frames}:  $\\phi$ = {phis[i]:.3f}")
        return []

    anim = animation.FuncAnimation(fig, draw, frames=frames, blit=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".gif")]
    anim.save(paths[0], writer=animation.PillowWriter(fps=fps))
    if shutil.which("ffmpeg"):
        paths.append(out.with_suffix(".mp4"))
        anim.save(paths[1], writer=animation.FFMpegWriter(fps=fps))
    plt.close(fig)
    return paths


_ADAM_COLOURS = {"0.001": "tab:blue", "0.01": "tab:orange", "0.1": "tab:green", "schedule": "tab:red"}
_OTHER_STYLE = {"cmaes": ("black", "-."), "random": ("tab:gray", ":"), "dual_annealing": ("tab:purple", "--")}


#: Figure 3's function names as the paper writes them.
_FUNCTION_TITLES = {"styblinski_tang": "Styblinski-Tang", "schwefel": "Schwefel"}


def _function_title(name: str) -> str:
    """``styblinski_tang`` -> ``Styblinski-Tang``, ``rotated_schwefel`` -> ``Schwefel (rotated)``."""
    base = name.removeprefix("rotated_")
    title = _FUNCTION_TITLES.get(base, base.replace("_", " "))
    return f"{title} (rotated)" if base != name else title


def _method_style(method: str) -> tuple[str, str]:
    if method.startswith("adam_"):
        setting, _, dscd = method.removeprefix("adam_").partition("+")
        return _ADAM_COLOURS.get(setting, "tab:brown"), "-" if dscd else "--"
    return _OTHER_STYLE.get(method, ("tab:olive", "-"))


def plot_benchmark(summaries: Sequence[dict], log_floor: float = 1e-8) -> plt.Figure:
    """Figure 3: median gap to the global minimum against evaluations, shaded 95% CI of the median.

    One panel per summary (a function at a dimension, as :func:`dscd.paper.figure3.summarise`
    returns it, with curves). Adam variants share a colour per learning rate:
    dashed alone, solid with DSCD. The y axis is logarithmic (gaps below
    ``log_floor`` are drawn at it).
    """
    n = len(summaries)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.0), squeeze=False)
    for ax, summary in zip(axes[0], summaries, strict=True):
        f_min = summary["function"]["f_min"]
        for method, entry in summary["methods"].items():
            colour, style = _method_style(method)
            med = np.maximum(np.asarray(entry["median"]) - f_min, log_floor)
            lo = np.maximum(np.asarray(entry["ci_lower"]) - f_min, log_floor)
            hi = np.maximum(np.asarray(entry["ci_upper"]) - f_min, log_floor)
            # on the log x axis, 500 log-spaced evaluations draw the curve as well as all 10^4 (and keep the PDF
            # small: every point is a vertex of a vector path)
            at = np.unique(np.geomspace(1, med.size, 500).round().astype(int)) - 1
            evals, med, lo, hi = at + 1, med[at], lo[at], hi[at]
            # Adam alone (dashed) thin and on top, with DSCD (solid) wide and beneath: where DSCD never accepts
            # a proposal the two curves coincide, and both must stay visible
            wide = method.startswith("adam_") and "+" in method  # Adam with DSCD
            ax.plot(evals, med, color=colour, ls=style, lw=2.6 if wide else 1.2, alpha=0.6 if wide else 1.0,
                    zorder=2 if wide else 3, label=entry["label"])
            ax.fill_between(evals, lo, hi, color=colour, alpha=0.12, lw=0)
        fn = summary["function"]
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlabel("function evaluations")
        ax.set_ylabel(r"median of $f(x_\mathrm{best}) - f_\mathrm{min}$")
        title = _function_title(fn["name"])
        ax.set_title(f"{title}, d = {fn['dim']} ({summary['config']['runs']} runs)")
        ax.grid(alpha=0.3, which="both", lw=0.5)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.1 if len(labels) > 6 else 0.06, 1, 1))
    return fig


Group = tuple[str, Sequence[Sequence[dict]]]  # (title, one metrics list per seed)

_CELLS = (("normal", "tab:blue", "normal cell"), ("reduce", "tab:orange", "reduction cell"))


def _seed_lines(ax: plt.Axes, runs: Sequence[Sequence[dict]], value, colour: str, label: str,
                step: str | None = None) -> None:
    """One thin line per seed and their mean as a thick line (over the epochs all seeds share)."""
    curves = [(np.array([r["epoch"] for r in records]), np.array([value(r) for r in records], dtype=float))
              for records in runs]
    for epochs, values in curves:
        ax.plot(epochs, values, color=colour, lw=0.7, alpha=0.45, drawstyle=step or "default")
    length = min(len(v) for _, v in curves)
    mean = np.mean([v[:length] for _, v in curves], axis=0)
    ax.plot(curves[0][0][:length], mean, color=colour, lw=2.0,
            label=label + (" (thick: mean of seeds)" if len(runs) > 1 else ""),
            drawstyle=step or "default")


def _shade_invalid(ax: plt.Axes, runs: Sequence[Sequence[dict]]) -> None:
    """Grey behind the epochs whose discretised architecture is invalid, darker the more seeds it is."""
    invalid: dict[int, int] = {}
    for records in runs:
        for r in records:
            invalid[r["epoch"]] = invalid.get(r["epoch"], 0) + (not r["valid"])
    for epoch, count in invalid.items():
        if count:
            ax.axvspan(epoch - 0.5, epoch + 0.5, color="0.55", alpha=0.35 * count / len(runs), lw=0, zorder=0)


def plot_cell_weights(groups: Sequence[Group], threshold: float = 0.85) -> plt.Figure:
    """Figures 1 and 2: one column per method and budget, one thin line per seed, the mean thick.

    Row 1: mean weight (sigmoid(alpha)) of the normal and the reduction cell, and the
    discretisation threshold (dotted). Row 2: edges each cell keeps when discretised, the
    clearest view of the collapse (an empty normal cell is an invalid architecture). Grey:
    epochs whose discretised architecture is invalid, darker when more seeds are. For DSCD
    runs (records with ``"dscd"``) two more rows: the age of ``x_best`` in epochs (a dot where
    alpha sits exactly at ``x_best`` at the epoch's end) and the global phases begun and those
    in which a proposal was accepted (cumulative, mean over seeds).
    """
    dscd = any("dscd" in runs[0][-1] for _, runs in groups)
    rows = 4 if dscd else 2
    n = len(groups)
    fig, axes = plt.subplots(rows, n, figsize=(4.2 * n, 2.6 * rows), squeeze=False, sharex="col", sharey="row")
    for col, (title, runs) in enumerate(groups):
        ax_w, ax_k = axes[0][col], axes[1][col]
        for cell, colour, name in _CELLS:
            _seed_lines(ax_w, runs, lambda r, c=cell: r[f"mean_weight_{c}"], colour, name)
            _seed_lines(ax_k, runs, lambda r, c=cell: r[f"kept_edges_{c}"], colour, name, step="steps-mid")
        ax_w.axhline(threshold, color="k", ls=":", lw=1, label=f"threshold {threshold}")
        ax_w.set_ylim(0, 1)
        ax_w.set_title(f"{title}, {len(runs)} seed{'s' if len(runs) > 1 else ''}")
        ax_k.set_ylim(bottom=-0.3)
        for ax in (ax_w, ax_k):
            _shade_invalid(ax, runs)
        if dscd and "dscd" in runs[0][-1]:
            ax_a, ax_p = axes[2][col], axes[3][col]
            steps = runs[0][-1]["steps"]
            _seed_lines(ax_a, runs, lambda r, s=steps: r["dscd"]["best_age"] / s, "tab:purple", "x_best age")
            for records in runs:
                at = [(r["epoch"], r["dscd"]["best_age"] / steps) for r in records if r["dscd"]["at_best"]]
                if at:
                    ax_a.plot(*zip(*at, strict=True), ls="none", marker=".", ms=3, color="tab:purple", alpha=0.6)
            _seed_lines(ax_p, runs, lambda r: r["dscd"]["global_phases"], "tab:red", "global phases begun")
            _seed_lines(ax_p, runs, lambda r: r["dscd"]["phases_accepting"], "tab:green",
                        "global phases with an acceptance")
            ax_p.set_xlabel("epoch")
        else:
            ax_k.set_xlabel("epoch")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean cell weight")
    axes[1][0].set_ylabel("edges kept (discretised)")
    if dscd:
        axes[2][0].set_ylabel("x_best age (epochs)")
        axes[3][0].set_ylabel("global phases (cumulative)")
    handles, labels = [], []
    for ax in (axes[0][0],) if rows == 2 else (axes[0][0], axes[2][0], axes[3][0]):  # rows 1-2 share colours
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    handles.append(Patch(color="0.55", alpha=0.35, lw=0))
    labels.append("grey: epochs with an invalid normal cell (darker: more seeds)")
    if dscd:
        handles.append(Line2D([], [], ls="none", marker=".", ms=6, color="tab:purple"))
        labels.append("x_best age where alpha sits at x_best at the epoch's end (dense dots read as dashes)")
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.1 if rows == 2 else 0.06, 1, 1))
    return fig


def plot_dscd_steps(groups: Sequence[Group]) -> plt.Figure:
    """DSCD over the search, per method and budget (thin: a seed; thick: the mean): proposals accepted
    per epoch in each cell type, and the alpha-step loss per epoch against ``y_best``, the window
    minimum that a proposal must beat (Algorithm 2): when the loss rises past a stale ``y_best``,
    nothing is accepted any more."""
    n = len(groups)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 5.4), squeeze=False, sharex="col")
    for col, (title, runs) in enumerate(groups):
        for cell, colour, name in _CELLS:
            key = f"accepted_{cell}"
            per_epoch = [[{"epoch": r["epoch"], "accepted": r["dscd"][key] - (records[i - 1]["dscd"][key] if i else 0)}
                          for i, r in enumerate(records)] for records in runs]
            _seed_lines(axes[0][col], per_epoch, lambda r: r["accepted"], colour, f"accepted, {name}")
        _seed_lines(axes[1][col], runs, lambda r: r["alpha_loss"], "tab:green", "alpha-step loss (epoch mean)")
        _seed_lines(axes[1][col], runs, lambda r: r["dscd"]["best_value"], "tab:red", "y_best (window minimum)")
        axes[0][col].set_title(f"{title}, {len(runs)} seed{'s' if len(runs) > 1 else ''}")
        axes[1][col].set_xlabel("epoch")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("proposals accepted per epoch")
    axes[1][0].set_ylabel("objective")
    for row in axes:
        row[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_learning_curves(runs: Sequence[tuple[str, Sequence[dict]]]) -> plt.Figure:
    """Final training, one line per genotype: training loss, and train (dashed) and test (solid)
    accuracy per epoch. ``runs`` is ``[(label, metrics records of dscd.train), ...]``."""
    ncol = max(1, min(3, len(runs)))
    legend_rows = -(-len(runs) // ncol)
    height = 3.8 + 0.22 * legend_rows  # room below the panels for the legend
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, height))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, records) in enumerate(runs):
        colour = colours[k % len(colours)]
        epochs = [r["epoch"] for r in records]
        ax_loss.plot(epochs, [r["train_loss"] for r in records], color=colour, lw=1.4, label=label)
        ax_acc.plot(epochs, [100 * r["train_acc"] for r in records], color=colour, lw=1.0, ls="--")
        tested = [(r["epoch"], 100 * r["test_acc"]) for r in records if r["test_acc"] is not None]
        if tested:
            ax_acc.plot(*zip(*tested, strict=True), color=colour, lw=1.6, marker="o" if len(tested) < 30 else None,
                        ms=3, label=label)
    ax_loss.set(xlabel="epoch", ylabel="training loss (with auxiliary head)", title="training loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="test (solid) and training (dashed) accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    # the legend below both panels: inside, ten genotypes' labels covered the test curves
    handles, labels = ax_loss.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, (0.22 * legend_rows + 0.1) / height, 1, 1))
    return fig


def plot_survival(groups: Sequence[tuple[str, Sequence]], budget: int | None = None,
                  ylabel: str = "fraction of seeds with a valid normal cell") -> plt.Figure:
    """Time to collapse as Kaplan-Meier curves: per method, the fraction of seeds whose normal cell is
    still valid at each epoch (:func:`dscd.survival.kaplan_meier`), a step down at each collapse epoch.
    Censored runs (valid at the end of their budget) are marked with a ``+`` on their curve. Each curve is
    drawn thinner than the one before, over it, so that curves which coincide stay visible.

    ``groups`` is ``[(label, [CollapseTime, ...]), ...]``; ``ylabel`` names what survives (in NAS-Bench-201, a
    cell that still learns). Each curve ends at its runs' last epoch (so a
    shorter budget's curve stops where its runs stopped); ``budget`` sets the x axis' end.
    """
    from dscd.survival import kaplan_meier

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    end = budget or max((c.epoch for _, times in groups for c in times), default=1)
    for k, (label, times) in enumerate(groups):
        colour = colours[k % len(colours)]
        epochs, surviving = kaplan_meier(times)
        last = max((c.epoch for c in times), default=end)
        x, y = np.append(epochs, max(last, epochs[-1])), np.append(surviving, surviving[-1])
        collapsed = sum(c.collapsed for c in times)
        # each curve thinner than the one before and drawn over it: where curves coincide, all stay visible
        ax.step(x, y, where="post", color=colour, lw=max(1.0, 3.4 - 0.7 * k), zorder=2 + k,
                label=f"{label} ({collapsed}/{len(times)} collapsed)")
        censored = [c.epoch for c in times if not c.collapsed]
        if censored:
            at = np.searchsorted(epochs, censored, side="right") - 1  # the curve's height at each censoring
            ax.plot(censored, surviving[at], "+", color=colour, ms=10, mew=1.6, clip_on=False, zorder=20 + k)
    ax.set(xlabel="epoch", ylabel=ylabel, ylim=(-0.03, 1.05),
           xlim=(0, 1.02 * end),
           title="time to collapse (Kaplan-Meier; +: censored, not collapsed at its end)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    fig.tight_layout()
    return fig


def plot_found_cells(points: Sequence[tuple[str, float]], table: np.ndarray, reference: tuple[str, float] | None = None,
                     title: str = "found cells, one point per seed") -> plt.Figure:
    """NAS-Bench-201's found cells over the table: ``table`` (every cell's looked-up accuracy, %) as a violin
    with its quartiles, and one point per seed, ``points`` = ``[(arm label, accuracy), ...]``, per arm
    (seaborn's strip plot); ``reference`` = ``(name, accuracy)`` draws a known cell (the all-skip cell) dotted."""
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    sns.violinplot(x=np.full(len(table), "all cells"), y=table, color="0.85", inner="quartile", ax=ax, cut=0)
    arms = [label for label, _ in points]
    sns.stripplot(x=arms, y=[value for _, value in points], hue=arms, size=7, jitter=0.15, ax=ax, legend=False)
    if reference is not None:
        name, value = reference
        ax.axhline(value, color="0.4", ls=":", lw=1)
        ax.text(0.02, value + 1, name, color="0.4", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set(ylabel="CIFAR-10 test % (NAS-Bench-201, 12-epoch)", title=title)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


def plot_accuracy_over_search(groups: Sequence[tuple[str, Sequence[Sequence[float]]]]) -> plt.Figure:
    """The discretised cell's looked-up accuracy at each search epoch: one colour per arm, one line per seed.
    ``groups`` is ``[(arm label, [per-epoch accuracies of one seed, ...]), ...]``."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, seeds) in enumerate(groups):
        for i, values in enumerate(seeds):
            ax.plot(range(1, len(values) + 1), values, color=colours[k % len(colours)], lw=0.9, alpha=0.7,
                    label=f"{label} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})" if i == 0 else None)
    ax.set(xlabel="epoch", ylabel="found cell's CIFAR-10 test % (12-epoch)",
           title="the discretised cell's looked-up accuracy over the search")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig
