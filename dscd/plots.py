"""Figures from recorded numbers: data in, matplotlib Figure (or file) out.

Nothing here trains or searches; notebooks and the CLI call these functions.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation
from scipy import stats

from dscd.optim import PHI_MAX, beta_params

__all__ = ["animate_beta_annealing", "beta_density", "plot_beta_annealing", "save_figure"]


def save_figure(fig: plt.Figure, path_stem: str | Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``path_stem.<fmt>`` for each format; returns the paths written."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


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
    domain: tuple[float, float] = (-3.0, 3.0),
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


def animate_beta_annealing(
    out: str | Path,
    v: float = 0.75,
    frames: int = 60,
    fps: int = 12,
    domain: tuple[float, float] = (-3.0, 3.0),
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


def _method_style(method: str) -> tuple[str, str]:
    if method.startswith("adam_"):
        setting, _, dscd = method.removeprefix("adam_").partition("+")
        return _ADAM_COLOURS.get(setting, "tab:brown"), "-" if dscd else "--"
    return _OTHER_STYLE.get(method, ("tab:olive", "-"))


def plot_benchmark(summaries: Sequence[dict], log_floor: float = 1e-8) -> plt.Figure:
    """Figure 3: median gap to the global minimum against evaluations, shaded 95% CI of the median.

    One panel per summary (a function at a dimension, as :func:`dscd.bench.summarise`
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
            evals = np.arange(1, med.size + 1)
            ax.plot(evals, med, color=colour, ls=style, lw=1.4, label=entry["label"])
            ax.fill_between(evals, lo, hi, color=colour, alpha=0.12, lw=0)
        fn = summary["function"]
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlabel("function evaluations")
        ax.set_ylabel(r"median of $f(x_\mathrm{best}) - f_\mathrm{min}$")
        title = fn["name"].replace("_", " ").replace("styblinski tang", "Styblinski-Tang").capitalize()
        ax.set_title(f"{title}, d = {fn['dim']} ({summary['config']['runs']} runs)")
        ax.grid(alpha=0.3, which="both", lw=0.5)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.1 if len(labels) > 6 else 0.06, 1, 1))
    return fig


def plot_cell_weights(runs: Sequence[tuple[str, Sequence[dict]]], threshold: float = 0.85) -> plt.Figure:
    """Figures 1 and 2: mean cell weight per epoch, one panel per run (budget).

    Solid: mean weight (sigmoid(alpha)) of the normal and reduction cell before
    discretisation; dashed: the mean of the discretised (0/1) weights; dotted: the
    discretisation threshold; grey: epochs whose discretised architecture is
    invalid. ``runs`` is ``[(title, metrics records), ...]``.
    """
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False, sharey=True)
    for ax, (title, records) in zip(axes[0], runs, strict=True):
        epochs = [r["epoch"] for r in records]
        for cell, colour in (("normal", "tab:blue"), ("reduce", "tab:orange")):
            ax.plot(epochs, [r[f"mean_weight_{cell}"] for r in records], color=colour, lw=1.6,
                    label=f"{'normal' if cell == 'normal' else 'reduction'} cell")
            ax.plot(epochs, [r[f"mean_discretised_{cell}"] for r in records], color=colour, lw=1.0, ls="--",
                    label=f"{'normal' if cell == 'normal' else 'reduction'} cell, discretised")
        ax.axhline(threshold, color="k", ls=":", lw=1, label=f"threshold {threshold}")
        for r in records:
            if not r["valid"]:
                ax.axvspan(r["epoch"] - 0.5, r["epoch"] + 0.5, color="0.88", lw=0, zorder=0)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean cell weight")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.03))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_dscd_steps(runs: Sequence[tuple[str, Sequence[dict]]]) -> plt.Figure:
    """DSCD's bookkeeping per epoch: accepted proposals per cell type, and local vs global steps."""
    n = len(runs)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 5.4), squeeze=False, sharex="col")
    for col, (title, records) in enumerate(runs):
        epochs = np.array([r["epoch"] for r in records])

        def per_epoch(key: str, records=records) -> np.ndarray:
            cumulative = np.array([r["dscd"][key] for r in records], dtype=float)
            return np.diff(np.concatenate([[0.0], cumulative]))

        ax = axes[0][col]
        ax.plot(epochs, per_epoch("accepted_normal"), label="accepted, normal cell", color="tab:blue")
        ax.plot(epochs, per_epoch("accepted_reduce"), label="accepted, reduction cell", color="tab:orange")
        ax.set_title(title)
        ax.set_ylabel("proposals accepted per epoch")
        ax.grid(alpha=0.3)
        ax = axes[1][col]
        ax.plot(epochs, per_epoch("local_steps"), label="local (Adam) steps", color="tab:green")
        ax.plot(epochs, per_epoch("global_steps"), label="global (DSCD) steps", color="tab:red")
        ax.set_xlabel("epoch")
        ax.set_ylabel("steps per epoch")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_learning_curves(runs: Sequence[tuple[str, Sequence[dict]]]) -> plt.Figure:
    """Final training, one line per genotype: training loss, and train (dashed) and test (solid)
    accuracy per epoch. ``runs`` is ``[(label, metrics records of dscd.train), ...]``."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.8))
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
    ax_acc.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
