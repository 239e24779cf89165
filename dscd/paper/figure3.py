"""The synthetic benchmark of the paper's appendix B (Figure 3): Adam with and without
DSCD, CMA-ES, uniform sampling and dual annealing on multimodal test functions.

All methods get the same budget of function evaluations and start from the same
seeded points. One local step is one evaluation with gradient, one global step
one evaluation. The gradient methods (every Adam variant, with and without DSCD,
every run) advance together as one ``(lanes, dim)`` tensor; DSCD's bookkeeping
is :class:`dscd.optim.DSCDEngine`, the same code the optimiser uses.

>>> cfg = BenchConfig(function="styblinski_tang", dim=2, runs=3, budget=60, methods=("adam_0.1", "random"))
>>> res = run_benchmark(cfg, progress=False)
>>> sorted(res.curves), res.curves["random"].shape
(['adam_0.1', 'random'], (3, 60))
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from tqdm.auto import tqdm

from dscd.optim import DSCD_DEFAULTS, DSCDEngine
from dscd.paper.functions import FUNCTIONS, SyntheticFunction, make_function

__all__ = [
    "ADAM_SETTINGS", "ALL_METHODS", "BenchConfig", "BenchResult", "benchmark_method_label", "figure3_claims",
    "median_ci", "paper_claims", "results_table", "run_benchmark", "run_gradient_methods", "summarise", "summary_table",
    "write_results",
]

#: Learning-rate settings of the Adam variants: a constant, or "schedule" (linear 0.001 -> 0.1).
ADAM_SETTINGS = ("0.001", "0.01", "0.1", "schedule")
SCHEDULE = (0.001, 0.1)
ALL_METHODS = (
    *(f"adam_{s}" for s in ADAM_SETTINGS),
    *(f"adam_{s}+dscd" for s in ADAM_SETTINGS),
    "cmaes", "random", "dual_annealing",
)
_BETAS, _EPS = (0.9, 0.999), 1e-8


def benchmark_method_label(method: str) -> str:
    """Legend text, naming learning rates as the paper does ("Adam 0.01 + DSCD")."""
    if method.startswith("adam_"):
        setting, _, dscd = method.removeprefix("adam_").partition("+")
        return f"Adam {setting}" + (" + DSCD" if dscd else "")
    return {"cmaes": "CMA-ES", "random": "Uniform sampling", "dual_annealing": "Dual annealing"}[method]


def _parse_adam(method: str) -> tuple[float | None, bool]:
    """(constant learning rate or None for the schedule, with DSCD?)."""
    setting, _, dscd = method.removeprefix("adam_").partition("+")
    if setting == "schedule":
        return None, bool(dscd)
    lr = float(setting)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"--methods: the learning rate of {method!r} must be a positive finite number")
    return lr, bool(dscd)


def _is_method(name: str) -> bool:
    if name in ("cmaes", "random", "dual_annealing"):
        return True
    if not name.startswith("adam_"):
        return False
    setting, _, dscd = name.removeprefix("adam_").partition("+")
    if dscd not in ("", "dscd"):
        return False
    if setting == "schedule":
        return True
    try:
        float(setting)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run: one function at one dimension, every method.

    ``methods`` accepts the names in :data:`ALL_METHODS` and ``adam_<lr>`` /
    ``adam_<lr>+dscd`` for any positive learning rate. ``cma_sigma0`` is CMA-ES's
    initial step size as a fraction of the box width (0.25: a quarter of the box,
    pycma's usual advice for a start anywhere in it).
    """

    function: str = "styblinski_tang"
    dim: int = 10
    runs: int = 20
    budget: int = 10000
    methods: tuple[str, ...] = ALL_METHODS
    seed: int = 0
    T: int = DSCD_DEFAULTS.T
    K: int = DSCD_DEFAULTS.K
    cma_sigma0: float = 0.25
    rotation_seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "methods", tuple(self.methods))
        names = FUNCTIONS + tuple("rotated_" + f for f in FUNCTIONS)
        if self.function not in names:
            raise ValueError(f"--function: unknown function {self.function!r}; choose from {', '.join(names)}")
        for name, value, minimum in (("dim", self.dim, 1), ("runs", self.runs, 1), ("budget", self.budget, 1),
                                     ("T", self.T, 1), ("K", self.K, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"--{name}: must be an integer >= {minimum}, got {value!r}")
        if self.budget < self.runs:
            raise ValueError(f"--budget: {self.budget} evaluations is below the number of runs ({self.runs})")
        if not self.methods:
            raise ValueError("--methods: give at least one method")
        for m in self.methods:
            if not _is_method(m):
                raise ValueError(f"--methods: unknown method {m!r}; choose from {', '.join(ALL_METHODS)} "
                                 "(or adam_<lr>[+dscd] for another positive learning rate)")
            if m.startswith("adam_"):
                _parse_adam(m)
        if len(set(self.methods)) != len(self.methods):
            raise ValueError("--methods: a method is listed twice")
        if not 0 < self.cma_sigma0 <= 1:
            raise ValueError(f"cma_sigma0 must lie in (0, 1] (a fraction of the box width), got {self.cma_sigma0}")


@dataclass
class BenchResult:
    """Best-so-far value after every evaluation, per method: ``curves[method]`` is ``(runs, budget)``."""

    config: BenchConfig
    function: SyntheticFunction
    starts: np.ndarray
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    evaluations: dict[str, np.ndarray] = field(default_factory=dict)


def start_points(cfg: BenchConfig, fn: SyntheticFunction) -> np.ndarray:
    """The ``(runs, dim)`` uniformly sampled starting points shared by every method."""
    return np.random.default_rng([cfg.seed, 0]).uniform(fn.lo, fn.hi, size=(cfg.runs, cfg.dim))


# ---------------------------------------------------------------------------- gradient methods


def run_gradient_methods(
    fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    lo: float,
    hi: float,
    starts: np.ndarray,
    methods: Sequence[str],
    budget: int,
    *,
    seed: int = 0,
    T: int = DSCD_DEFAULTS.T,
    K: int = DSCD_DEFAULTS.K,
    run_ids: Sequence[int] | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Run Adam variants (``adam_<lr>``, ``adam_schedule``, each optionally ``+dscd``) from every start.

    ``fn`` maps points ``(L, d)`` to ``(values (L,), gradients (L, d))``, e.g.
    :meth:`SyntheticFunction.value_and_grad`. All (method, run) pairs are lanes of
    one float64 array; a batched Adam (torch.optim.Adam's update, with a per-lane
    step count) moves the lanes taking a local step. Lane ``(method, run)`` draws
    its DSCD randomness from entropy ``(seed, method, run_id)``, so a run's
    trajectory does not depend on which other runs share the batch (``run_ids``
    names the runs when only some are given). Returns ``{method: (runs, budget)}``
    best-so-far curves.
    """
    runs, dim = starts.shape
    run_ids = list(range(runs)) if run_ids is None else list(run_ids)
    parsed = [_parse_adam(m) for m in methods]
    lanes = len(methods) * runs
    x = np.tile(np.asarray(starts, dtype=np.float64), (len(methods), 1))  # (L, d)
    const_lr = np.repeat([lr if lr is not None else np.nan for lr, _ in parsed], runs)[:, None]
    scheduled = np.isnan(const_lr)
    dscd_idx = np.flatnonzero(np.repeat([d for _, d in parsed], runs))
    engine = None
    if dscd_idx.size:
        entropy = [(seed, i, run_ids[r]) for i, (_, d) in enumerate(parsed) if d for r in range(runs)]
        engine = DSCDEngine(x[dscd_idx], lo, hi, budget, T=T, K=K, seeds=entropy)

    m1, m2 = np.zeros_like(x), np.zeros_like(x)
    steps = np.zeros((lanes, 1))
    b1, b2 = _BETAS
    values = np.empty((budget, lanes))
    schedule = np.linspace(SCHEDULE[0], SCHEDULE[1], budget)
    all_local = np.ones((lanes, 1), dtype=bool)
    for t in tqdm(range(budget), desc="gradient methods", disable=not progress, leave=False, mininterval=0.5):
        local, point = all_local, x
        if engine is not None and engine.is_global.any():
            is_global = engine.is_global
            point = x.copy()
            point[dscd_idx[is_global]] = engine.propose()[is_global]
            local = all_local.copy()
            local[dscd_idx[is_global]] = False
        f, grad = fn(point)
        values[t] = f
        if engine is not None:
            result = engine.observe(f[dscd_idx], point[dscd_idx])
            if result.was_global.any():
                x = x.copy()
                x[dscd_idx[result.was_global]] = engine.x_best[result.was_global]
        # batched Adam (torch.optim.Adam's update) on the lanes taking a local step
        lr = np.where(scheduled, schedule[t], const_lr)
        steps = steps + local
        m1 = np.where(local, b1 * m1 + (1 - b1) * grad, m1)
        m2 = np.where(local, b2 * m2 + (1 - b2) * grad * grad, m2)
        with np.errstate(divide="ignore", invalid="ignore"):  # lanes with no local step yet: masked out
            update = (lr / (1 - b1**steps)) * m1 / (np.sqrt(m2) / np.sqrt(1 - b2**steps) + _EPS)
        x = np.where(local, x - update, x)

    best = np.minimum.accumulate(values, axis=0).T  # (L, budget)
    return {m: best[i * runs : (i + 1) * runs] for i, m in enumerate(methods)}


# ---------------------------------------------------------------------------- black-box methods


class _BudgetSpent(Exception):
    pass


def _best_so_far(values: list[float], budget: int) -> tuple[np.ndarray, int]:
    """Curve of length ``budget`` from the first ``budget`` values; a method that stopped early keeps its best."""
    used = min(len(values), budget)
    curve = np.minimum.accumulate(np.asarray(values[:used], dtype=np.float64))
    if used < budget:
        curve = np.concatenate([curve, np.full(budget - used, curve[-1] if used else np.inf)])
    return curve, used


def run_cmaes(fn: SyntheticFunction, starts: np.ndarray, budget: int, seed: int, sigma0: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """pycma's CMA-ES from each start, bounded to the box (pycma's BoundTransform), no restarts.

    CMA-ES stops by its own termination criteria when it has converged; the rest of
    the budget then keeps its best value (``evaluations`` records what it used).
    """
    import cma

    curves, used = [], []
    for r, x0 in enumerate(starts):
        opts = {"bounds": [fn.lo, fn.hi], "seed": seed * 100003 + r + 1, "verbose": -9,
                "maxfevals": budget, "verb_disp": 0, "verb_log": 0}
        es = cma.CMAEvolutionStrategy(list(x0), sigma0 * (fn.hi - fn.lo), opts)
        values: list[float] = []
        while not es.stop() and len(values) < budget:
            X = es.ask()
            y = fn(np.asarray(X))
            values.extend(y.tolist())
            es.tell(X, y.tolist())
        curve, n = _best_so_far(values, budget)
        curves.append(curve)
        used.append(n)
    return np.stack(curves), np.asarray(used)


def run_random(fn: SyntheticFunction, starts: np.ndarray, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform sampling over the box (the start point is not used)."""
    curves = []
    for r in range(starts.shape[0]):
        rng = np.random.default_rng([seed, 1, r])
        vals = np.concatenate([fn(rng.uniform(fn.lo, fn.hi, size=(min(4096, budget - i), fn.dim)))
                               for i in range(0, budget, 4096)])
        curves.append(np.minimum.accumulate(vals))
    return np.stack(curves), np.full(starts.shape[0], budget)


def run_dual_annealing(fn: SyntheticFunction, starts: np.ndarray, budget: int, seed: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """scipy's dual_annealing from each start; every call of the objective counts and it is cut at the budget."""
    from scipy.optimize import dual_annealing

    curves, used = [], []
    for r, x0 in enumerate(starts):
        values: list[float] = []

        def objective(x: np.ndarray, values: list[float] = values) -> float:
            if len(values) >= budget:
                raise _BudgetSpent
            v = float(fn(x[None])[0])
            values.append(v)
            return v

        try:
            dual_annealing(objective, bounds=[(fn.lo, fn.hi)] * fn.dim, x0=x0, seed=seed * 100003 + r,
                           maxfun=budget, maxiter=10**7)
        except _BudgetSpent:
            pass
        curve, n = _best_so_far(values, budget)
        curves.append(curve)
        used.append(n)
    return np.stack(curves), np.asarray(used)


# ---------------------------------------------------------------------------- the whole benchmark


def run_benchmark(cfg: BenchConfig, progress: bool = True) -> BenchResult:
    """Every method of ``cfg`` on its function; returns the best-so-far curves."""
    fn = make_function(cfg.function, cfg.dim, rotation_seed=cfg.rotation_seed)
    starts = start_points(cfg, fn)
    result = BenchResult(config=cfg, function=fn, starts=starts)
    gradient = [m for m in cfg.methods if m.startswith("adam_")]
    if gradient:
        t0 = time.perf_counter()
        curves = run_gradient_methods(fn.value_and_grad, fn.lo, fn.hi, starts, gradient, cfg.budget,
                                      seed=cfg.seed, T=cfg.T, K=cfg.K, progress=progress)
        share = (time.perf_counter() - t0) / len(gradient)
        for m in gradient:
            result.curves[m] = curves[m]
            result.seconds[m] = share  # they ran together: an equal share of the batch's time
            result.evaluations[m] = np.full(cfg.runs, cfg.budget)
    others = {
        "cmaes": lambda: run_cmaes(fn, starts, cfg.budget, cfg.seed, cfg.cma_sigma0),
        "random": lambda: run_random(fn, starts, cfg.budget, cfg.seed),
        "dual_annealing": lambda: run_dual_annealing(fn, starts, cfg.budget, cfg.seed),
    }
    for m in tqdm([m for m in cfg.methods if m in others], desc="black-box methods", disable=not progress,
                  leave=False):
        t0 = time.perf_counter()
        result.curves[m], result.evaluations[m] = others[m]()
        result.seconds[m] = time.perf_counter() - t0
    result.curves = {m: result.curves[m] for m in cfg.methods}
    return result


def median_ci(values: np.ndarray, confidence: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Distribution-free confidence interval of the median from order statistics.

    With ``n`` values sorted, ``[x_(l), x_(n+1-l)]`` covers the median with
    probability ``P(l <= B <= n - l)``, ``B ~ Binomial(n, 1/2)``; ``l`` is the largest
    rank keeping that at least ``confidence``. Returns ``(lower, upper, coverage)``;
    with too few values for the confidence (n < 6 at 95%) it returns the range.

    >>> lo, hi, cov = median_ci(np.arange(1.0, 21.0))   # n = 20: ranks 6 and 15
    >>> float(lo), float(hi), round(cov, 4)
    (6.0, 15.0, 0.9586)
    """
    x = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = x.shape[axis]
    half_alpha = (1 - confidence) / 2
    k = int(stats.binom.ppf(half_alpha, n, 0.5))  # smallest k with P(B <= k) >= alpha / 2
    if stats.binom.cdf(k, n, 0.5) > half_alpha:
        k -= 1
    k = max(k, 0)  # 0-based index of the lower bound: rank k + 1, upper rank n - k
    coverage = float(stats.binom.cdf(n - k - 1, n, 0.5) - stats.binom.cdf(k, n, 0.5))
    l, u = k, n - 1 - k
    return np.take(x, l, axis=axis), np.take(x, u, axis=axis), coverage


def summarise(result: BenchResult, include_curves: bool = True) -> dict[str, Any]:
    """Every number of the run as plain JSON: per method the median and its 95% CI after every
    evaluation, the final best value of every run, and how many runs reached the global basin."""
    fn = result.function
    out: dict[str, Any] = {
        "config": asdict(result.config),
        "function": {"name": fn.name, "dim": fn.dim, "lo": fn.lo, "hi": fn.hi, "f_min": fn.f_min,
                     "x_min": fn.x_min.tolist(), "basin_gap": fn.basin_gap, "rotated": fn.rotation is not None},
        "median_ci": "order statistics of Binomial(runs, 1/2) (distribution-free), 95%",
        "methods": {},
    }
    for m, curves in result.curves.items():
        med = np.median(curves, axis=0)
        lo, hi, coverage = median_ci(curves, axis=0)
        final = curves[:, -1]
        gap = final - fn.f_min
        entry = {
            "label": benchmark_method_label(m),
            "final": final.tolist(),
            "final_gap": gap.tolist(),
            "final_median": float(np.median(final)),
            "final_median_gap": float(np.median(gap)),
            "final_ci": [float(lo[-1]), float(hi[-1])],
            "ci_coverage": coverage,
            "in_global_basin": int((gap < fn.basin_gap).sum()),
            "evaluations_used": np.asarray(result.evaluations[m]).tolist(),
            "seconds": result.seconds[m],
        }
        if include_curves:
            entry.update(median=med.tolist(), ci_lower=lo.tolist(), ci_upper=hi.tolist())
        out["methods"][m] = entry
    return out


def summary_table(summary: dict[str, Any]) -> str:
    """Plain-text table: method, median final gap and its CI, runs in the global basin, seconds."""
    runs = summary["config"]["runs"]
    f_min = summary["function"]["f_min"]
    head = f"{summary['function']['name']} d={summary['function']['dim']} budget={summary['config']['budget']}"
    rows = [head, f"{'method':<22} {'median gap':>12} {'95% CI of median':>24} {'in basin':>9} {'seconds':>8}"]
    for m in summary["methods"].values():
        lo, hi = (v - f_min for v in m["final_ci"])
        rows.append(f"{m['label']:<22} {m['final_median_gap']:>12.4g} {f'[{lo:.3g}, {hi:.3g}]':>24} "
                    f"{m['in_global_basin']:>4}/{runs:<4} {m['seconds']:>8.2f}")
    return "\n".join(rows)


def write_results(results: Sequence[BenchResult], out: str | Path, extra: dict[str, Any] | None = None,
                  figure: bool = True) -> Path:
    """Write ``results.json``, ``curves.npz`` and (unless ``figure=False``) ``figure.png``/``.pdf`` into ``out``.

    Everything is written to a temporary folder beside ``out`` first and moved in at
    the end, so an interrupted or failed run leaves nothing half-written.
    """
    from dscd import __version__
    from dscd.paper.plots import plot_benchmark, save_figure

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        summaries = [summarise(r) for r in results]
        doc = {"version": __version__, "benchmarks": summaries, **(extra or {})}
        (tmp / "results.json").write_text(json.dumps(doc))
        curves: dict[str, Any] = {f"{r.function.name}_d{r.function.dim}_{m}": c
                                  for r in results for m, c in r.curves.items()}
        np.savez_compressed(tmp / "curves.npz", **curves)
        if figure:
            import matplotlib.pyplot as plt

            fig = plot_benchmark(summaries)
            save_figure(fig, tmp / "figure")
            plt.close(fig)
        out.mkdir(parents=True, exist_ok=True)
        for path in tmp.iterdir():
            os.replace(path, out / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def paper_claims(summary: dict[str, Any]) -> dict[str, Any]:
    """Check the paper's two appendix-B claims on one summary (one function at one dimension).

    1. For each Adam setting run both ways, is the median final value with DSCD
       strictly below the one without?
    2. How many runs of each plain Adam variant ended in the global basin (the
       paper: none, on Styblinski-Tang)?
    """
    methods = summary["methods"]
    settings = [m.removeprefix("adam_") for m in methods if m.startswith("adam_") and "+" not in m]
    improvement = {}
    for s in settings:
        if f"adam_{s}+dscd" in methods:
            without, with_ = methods[f"adam_{s}"]["final_median"], methods[f"adam_{s}+dscd"]["final_median"]
            improvement[s] = {"median_without": without, "median_with": with_, "dscd_better": with_ < without}
    basin = {s: methods[f"adam_{s}"]["in_global_basin"] for s in settings}
    return {
        "function": summary["function"]["name"],
        "dim": summary["function"]["dim"],
        "runs": summary["config"]["runs"],
        "budget": summary["config"]["budget"],
        "dscd_improves": improvement,
        "dscd_improves_every_setting": bool(improvement) and all(v["dscd_better"] for v in improvement.values()),
        "plain_adam_runs_in_global_basin": basin,
        "plain_adam_never_in_global_basin": bool(basin) and all(v == 0 for v in basin.values()),
    }


def figure3_claims(checks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paper's two appendix-B claims as verdicts (the same records as the other notebooks' claims),
    from :func:`paper_claims` of Figure 3's functions at one dimension."""
    from dscd.paper.claims import HELD, NOT_HELD, claim_record

    runs = {c["function"]: c["runs"] for c in checks}
    out = []
    st = next((c for c in checks if c["function"] == "styblinski_tang"), None)
    if st is not None:
        basin = ", ".join(f"Adam {k}: {v}/{st['runs']}" for k, v in st["plain_adam_runs_in_global_basin"].items())
        out.append(claim_record(
            "adam_alone_stuck", "On Styblinski-Tang every Adam setting alone ends outside the global basin in every "
            "run", f"Appendix B, Figure 3 (d = {st['dim']})", HELD if st["plain_adam_never_in_global_basin"]
            else NOT_HELD, f"runs in the global basin: {basin}"))

    def better(c: dict[str, Any]) -> str:
        yes = [k for k, v in c["dscd_improves"].items() if v["dscd_better"]]
        no = [k for k, v in c["dscd_improves"].items() if not v["dscd_better"]]
        return (f"{c['function']}: better median for Adam {', '.join(yes) or 'none'}"
                + (f", not for {', '.join(no)}" if no else ""))

    if checks:
        out.append(claim_record(
            "dscd_improves_every_adam_setting", "Adam + DSCD ends with a better median than Adam alone, for every "
            "Adam setting", f"Appendix B, Figure 3 (d = {checks[0]['dim']}, {max(runs.values())} runs)",
            HELD if all(c["dscd_improves_every_setting"] for c in checks) else NOT_HELD,
            "; ".join(better(c) for c in checks)))
    return out


def results_table(summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (function, dimension, method): median final gap, its 95% CI, runs in the global basin."""
    rows = []
    for s in summaries:
        f_min = s["function"]["f_min"]
        for m in s["methods"].values():
            rows.append({
                "function": s["function"]["name"], "dim": s["function"]["dim"], "budget": s["config"]["budget"],
                "method": m["label"], "median_gap": m["final_median_gap"],
                "ci_low": m["final_ci"][0] - f_min, "ci_high": m["final_ci"][1] - f_min,
                "in_global_basin": f"{m['in_global_basin']}/{s['config']['runs']}",
            })
    return rows
