"""Time to collapse: when a search collapses for good, and how methods compare on it.

The paper's failure (section 3, Figure 1) is a normal cell whose every weight sinks below the
discretisation threshold, so the discretised architecture is invalid. Each search space says what its
collapse is (``collapsed`` of :mod:`dscd.search_spaces`): in the DARTS space that invalid normal cell, in
NAS-Bench-201's a cell without a convolution between its input and its output, where DARTS ends there.
Read as a time-to-event problem, each search run is one subject:

- its *collapse epoch* is the first epoch from which the discretised architecture stays collapsed until
  the end of the run (one that collapses and later recovers has not collapsed at that earlier epoch);
- a run not collapsed at its last epoch is *censored* at its budget: it did not collapse within the
  epochs it was given.

:func:`kaplan_meier` gives the fraction of runs still valid per epoch, and :func:`logrank` compares
two methods' collapse times with :func:`scipy.stats.logrank` (a two-sided log-rank test, which
assumes that censoring is unrelated to the outcome: here every run is censored only by its budget).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dscd.search_spaces import space_of

__all__ = ["CollapseTime", "LogRank", "collapse_time", "is_collapsed", "kaplan_meier", "logrank", "logrank_z",
           "median_time", "permutation_logrank", "restricted_mean"]


def is_collapsed(record: Mapping[str, Any]) -> bool:
    """Whether one per-epoch search record (``metrics.jsonl``) is collapsed, as its space defines it
    (``collapsed`` of :mod:`dscd.search_spaces`): the DARTS space's normal cell invalid, or a NAS-Bench-201
    cell without a convolution between its input and its output."""
    return space_of(record["genotype"]).collapsed(record["genotype"])


@dataclass(frozen=True)
class CollapseTime:
    """One run as a survival subject: ``epoch`` is the collapse epoch, or the last epoch when ``collapsed``
    is False (censored: the normal cell was still valid at the end of the budget)."""

    epoch: int
    collapsed: bool

    def to_dict(self) -> dict[str, Any]:
        """The collapse time as a JSON-ready dict."""
        return {"epoch": self.epoch, "collapsed": self.collapsed}


def collapse_time(records: Sequence[Mapping[str, Any]]) -> CollapseTime:
    """The :class:`CollapseTime` of a run from its per-epoch records (in epoch order).

    >>> ok = {"normal": [["skip_connect", 0, 2]], "reduce": [["skip_connect", 0, 2]]}
    >>> empty = {"normal": [], "reduce": ok["reduce"]}
    >>> def run(*cells): return [{"epoch": e, "genotype": g} for e, g in enumerate(cells, 1)]
    >>> collapse_time(run(ok, empty, ok, empty, empty))   # the first empty spell recovered
    CollapseTime(epoch=4, collapsed=True)
    >>> collapse_time(run(ok, empty, ok))
    CollapseTime(epoch=3, collapsed=False)
    """
    if not records:
        raise ValueError("a run with no per-epoch records has no collapse time")
    epochs = [int(r["epoch"]) for r in records]
    valid = [not is_collapsed(r) for r in records]
    if valid[-1]:
        return CollapseTime(epochs[-1], False)
    first = len(valid) - 1
    while first > 0 and not valid[first - 1]:
        first -= 1
    return CollapseTime(epochs[first], True)


def kaplan_meier(times: Iterable[CollapseTime]) -> tuple[np.ndarray, np.ndarray]:
    """The Kaplan-Meier estimate of the fraction of runs whose normal cell is still valid.

    Returns ``(epochs, surviving)``: a step function that starts at ``(0, 1.0)`` and drops at each
    collapse epoch; censored runs leave the risk set after their last epoch without a drop.

    >>> kaplan_meier([CollapseTime(10, True), CollapseTime(20, False), CollapseTime(30, True)])
    (array([ 0, 10, 30]), array([1.        , 0.66666667, 0.        ]))
    """
    times = list(times)
    epochs, surviving, s = [0], [1.0], 1.0
    for t in sorted({c.epoch for c in times if c.collapsed}):
        at_risk = sum(c.epoch >= t for c in times)
        events = sum(c.epoch == t and c.collapsed for c in times)
        s *= 1.0 - events / at_risk
        epochs.append(t)
        surviving.append(s)
    return np.array(epochs), np.array(surviving)


@dataclass(frozen=True)
class LogRank:
    """A two-sided log-rank test of two groups' collapse times: scipy's asymptotic p
    (:func:`scipy.stats.logrank`) and, beside it, the permutation p (:func:`permutation_logrank`)."""

    statistic: float
    pvalue: float
    collapsed: tuple[int, int]
    runs: tuple[int, int]
    medians: tuple[float | None, float | None]
    #: The permutation p-value, and whether it enumerated every relabelling (exact) or sampled them.
    permutation_pvalue: float | None = None
    permutation_exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The test as a claim record's ``test`` entry: name, statistic, p, counts and median collapse epochs
        (and the exact permutation p when computed)."""
        out = {"name": "log-rank test (two-sided, scipy.stats.logrank)", "statistic": self.statistic,
               "p_value": self.pvalue, "collapsed": list(self.collapsed), "runs": list(self.runs),
               "median_collapse_epoch": list(self.medians)}
        if self.permutation_pvalue is not None:
            out["p_permutation"] = self.permutation_pvalue
            out["permutation"] = ("exact: every relabelling of the pooled runs" if self.permutation_exact else
                                  f"{PERMUTATION_SAMPLES} random relabellings (seed 0) of the pooled runs")
        return out


#: Above this many relabellings, :func:`permutation_logrank` samples this many instead of enumerating them.
PERMUTATION_SAMPLES = 200_000


def logrank_z(epochs: Sequence[int], collapsed: Sequence[bool], in_first: np.ndarray) -> np.ndarray:
    """The log-rank statistic Z = U / sqrt(V) of the first group against the rest, for each row of
    ``in_first`` (a boolean matrix, relabellings by runs): U sums observed minus expected collapses of
    the first group at each collapse epoch, V the hypergeometric variances. Z is 0 where V is.

    >>> float(logrank_z([1, 2], [True, True], np.array([[True, False]]))[0])
    1.0
    """
    t, event = np.asarray(epochs), np.asarray(collapsed, dtype=bool)
    times = np.unique(t[event])
    at_risk = (t[:, None] >= times[None, :]).astype(float)          # runs x collapse epochs
    events = ((t[:, None] == times[None, :]) & event[:, None]).astype(float)
    n, d = at_risk.sum(0), events.sum(0)
    labels = np.atleast_2d(in_first).astype(float)
    n1, d1 = labels @ at_risk, labels @ events
    u = (d1 - d * n1 / n).sum(1)
    v = (d * (n1 / n) * (1 - n1 / n) * np.where(n > 1, (n - d) / np.maximum(n - 1, 1), 0.0)).sum(1)
    return np.divide(u, np.sqrt(v), out=np.zeros_like(u), where=v > 0)


def permutation_logrank(a: Sequence[CollapseTime], b: Sequence[CollapseTime]) -> tuple[float, bool]:
    """``(p, exact)``: the two-sided permutation p-value of the log-rank statistic of ``a`` against ``b``,
    the fraction of relabellings of the pooled runs (``len(a)`` of them called ``a``) whose ``abs(Z)`` is
    at least the observed one. Every relabelling is enumerated up to :data:`PERMUTATION_SAMPLES` of them
    (exact; 184,756 at 10 runs a side), else that many are drawn (seed 0) and ``p = (hits + 1) / (draws + 1)``.
    The test assumes the runs exchangeable under the null: true here, where every run is censored
    only by its budget, when the two groups share one budget.

    >>> ok, gone = CollapseTime(300, False), CollapseTime(150, True)
    >>> round(permutation_logrank([gone] * 3, [ok] * 3)[0], 4)   # 2 of the C(6, 3) = 20 relabellings
    0.1
    """
    from itertools import combinations
    from math import comb

    pooled = [*a, *b]
    epochs, collapsed = [c.epoch for c in pooled], [c.collapsed for c in pooled]
    total, k = len(pooled), len(a)
    observed = abs(logrank_z(epochs, collapsed, np.arange(total)[None, :] < k)[0])
    exact = comb(total, k) <= PERMUTATION_SAMPLES
    if exact:
        labels = np.zeros((comb(total, k), total), dtype=bool)
        for row, chosen in enumerate(combinations(range(total), k)):
            labels[row, list(chosen)] = True
    else:
        rng = np.random.default_rng(0)
        labels = np.argsort(rng.random((PERMUTATION_SAMPLES, total)), axis=1) < k
    z = np.abs(logrank_z(epochs, collapsed, labels))
    hits = int(np.sum(z >= observed - 1e-9))
    return (hits / len(labels), True) if exact else ((hits + 1) / (len(labels) + 1), False)


def median_time(times: Sequence[CollapseTime]) -> float | None:
    """The Kaplan-Meier median: the first epoch at which at most half the runs are still valid, or
    ``None`` when more than half survive to the end (the median is then beyond the budgets)."""
    epochs, surviving = kaplan_meier(times)
    below = np.nonzero(surviving <= 0.5)[0]
    return float(epochs[below[0]]) if below.size else None


def restricted_mean(times: Sequence[CollapseTime], horizon: int) -> float:
    """The restricted mean time to collapse: the area under the Kaplan-Meier curve from epoch 0 to
    ``horizon`` (the expected number of epochs a run stays valid within ``horizon``; defined with
    censored runs, unlike a median that more than half the runs never reach).

    >>> restricted_mean([CollapseTime(10, True), CollapseTime(20, False)], 20)
    15.0
    """
    epochs, surviving = kaplan_meier(times)
    edges = np.append(np.minimum(epochs, horizon), horizon)
    return float(np.sum(np.diff(edges) * surviving))


def logrank(a: Sequence[CollapseTime], b: Sequence[CollapseTime]) -> LogRank:
    """Compare the collapse times of groups ``a`` and ``b`` with a two-sided log-rank test.

    A test needs at least one collapse in the two groups together; otherwise ``p`` is 1 (nothing
    happened, so nothing differs) and the statistic 0. Beside scipy's asymptotic p, which small
    groups make approximate, the result carries the permutation p (:func:`permutation_logrank`).
    """
    from scipy import stats

    if not a or not b:
        raise ValueError("the log-rank test needs at least one run in each group")
    counts = (sum(c.collapsed for c in a), sum(c.collapsed for c in b))
    medians = (median_time(a), median_time(b))
    if not sum(counts):
        return LogRank(0.0, 1.0, counts, (len(a), len(b)), medians, 1.0)

    def censored(group: Sequence[CollapseTime]) -> Any:
        return stats.CensoredData(uncensored=[c.epoch for c in group if c.collapsed],
                                  right=[c.epoch for c in group if not c.collapsed])

    permutation, exact = permutation_logrank(a, b)
    pooled = [*a, *b]
    if not logrank_z([c.epoch for c in pooled], [c.collapsed for c in pooled], np.arange(len(pooled)) < len(a))[0]:
        # no variance or no difference (e.g. every run collapsed at one epoch): scipy's statistic is 0/0
        return LogRank(0.0, 1.0, counts, (len(a), len(b)), medians, permutation, exact)
    result = stats.logrank(censored(a), censored(b))
    return LogRank(float(result.statistic), float(result.pvalue), counts, (len(a), len(b)), medians,
                   permutation, exact)
