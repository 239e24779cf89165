"""Doubly stochastic coordinate descent (DSCD) and its hybrid with a gradient optimiser.

This module owns the optimisation algorithm of the paper (section 3, Algorithm 2, Appendices C and F):

* the beta-annealed coordinate proposal of appendix C lives in :mod:`dscd.proposals`
  (:func:`~dscd.proposals.phi_schedule`, :func:`~dscd.proposals.beta_params`, :func:`~dscd.proposals.propose`,
  and the :class:`~dscd.proposals.Proposal` protocol the engine takes);
* :class:`DSCDEngine`: the bookkeeping of Algorithms 1 and 2 (``x_best``, the
  window of the last ``K`` objective values, the local/global schedule, the
  random streams), vectorised over ``L`` independent problems ("lanes") so that
  the synthetic benchmark runs all its runs as one tensor;
* :class:`DSCD`: a :class:`torch.optim.Optimizer` that drives one engine lane and
  wraps any gradient optimiser (Adam in the paper) for the local steps.

It knows nothing about networks or data.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import secrets
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dscd.proposals import PHI_MAX, BetaAnnealing, Proposal, _float64, beta_params, phi_schedule, propose

__all__ = [
    "PHI_MAX",
    "Backward",
    "DSCD",
    "DSCDCounters",
    "DSCDEngine",
    "DSCDSettings",
    "DSCD_DEFAULTS",
    "Evaluate",
    "NonFiniteLoss",
    "StepResult",
    "beta_params",
    "drive_stages",
    "phi_schedule",
    "propose",
]

@dataclass(frozen=True)
class DSCDSettings:
    """DSCD's hyper-parameters, with the paper's values as defaults: the one place they are written.

    ``T``: local (Adam) steps between global phases (paper section 3); ``K``: the record window, the
    number of recent objective values whose minimum a global proposal must beat (Algorithm 2);
    ``domain``: the box ``(lo, hi)`` proposals are drawn from (section 4: ``(-3, 3)``); ``refresh_best``
    and ``reset_local_state``: this package's two options of :class:`DSCD` (both off: Algorithm 2 as
    published). The search configuration's ``dscd_*`` fields and the synthetic benchmark default to these.
    """

    T: int = 50
    K: int = 1000
    domain: tuple[float, float] = (-3.0, 3.0)
    refresh_best: bool = False
    reset_local_state: bool = False

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`DSCD` these settings give."""
        return dataclasses.asdict(self)


#: The paper's settings.
DSCD_DEFAULTS = DSCDSettings()

_STATE_FORMAT = "dscd.DSCD/2"  # /2: x_best age, phase counters, refresh_best


class NonFiniteLoss(ValueError):
    """A local step's objective was NaN or infinite; nothing was changed."""


@dataclass(frozen=True)
class StepResult:
    """What one engine step did, per lane (each a bool array of shape ``(L,)``)."""

    was_global: np.ndarray
    accepted: np.ndarray
    switched: np.ndarray


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass
class DSCDCounters:
    """What DSCD counts as it runs, one entry per lane: the one list of its diagnostic counters.

    :class:`DSCDEngine` owns them (``engine.counters``) and saves them under their field names;
    :attr:`DSCD.stats`, a search's per-epoch record and the claims read them from here, so a new
    counter is one field here and one line where the engine increments it.
    """

    #: Global steps whose objective was not finite (rejected).
    nan_proposals: np.ndarray
    #: Local steps that set x_best (Algorithm 2 keeps the best point seen by either kind of step).
    local_improvements: np.ndarray
    #: Global phases begun.
    global_phases: np.ndarray
    #: Global phases in which at least one proposal was accepted.
    phases_accepting: np.ndarray
    #: Windows restarted with f(x_best) re-evaluated (``refresh_best``).
    refreshes: np.ndarray

    @classmethod
    def zeros(cls, lanes: int) -> DSCDCounters:
        """Every counter at zero for ``lanes`` lanes."""
        return cls(**{name: np.zeros(lanes, dtype=np.int64) for name in cls.names()})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The counters' names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def lane(self, lane: int) -> dict[str, int]:
        """The counters of one lane, as plain ints."""
        return {name: int(getattr(self, name)[lane]) for name in self.names()}


class DSCDEngine:
    """State and rules of the local/global hybrid for ``L`` independent problems.

    Each lane is one problem of ``n`` coordinates with its own ``x_best``, window of
    the last ``K`` observed values, schedule (local or global, run length) and
    random stream. All lanes step together, so the concentration ``phi`` is shared.
    The engine never evaluates the objective: a driver asks which lanes take a
    global step (:attr:`is_global`), asks for proposals (:meth:`propose`), evaluates
    them (and, for local lanes, the current point), and reports the values with
    :meth:`observe`. :class:`DSCD` is the single-lane driver for PyTorch
    parameters; ``dscd.paper.figure3`` drives many lanes at once. The state is NumPy
    (small arrays, where NumPy's per-operation cost is a fraction of torch's).

    Args:
        x0: ``(L, n)`` starting points (float32 or float64; ``x_best`` keeps that
            dtype, so proposals are rounded to it before they are evaluated).
        lo, hi: proposal box, broadcastable to ``(L, n)``, ``lo < hi``.
        total_steps: steps over which ``phi`` anneals from 0 to ``phi_max``.
        T: minimum run of same-type steps before a switch (paper: 50).
        K: window length for the acceptance test (paper: 1000).
        phi_max: cap on ``phi``, in (0, PHI_MAX], of the default proposal.
        proposal: the global proposal (:class:`dscd.proposals.Proposal`); default the paper's
            :class:`~dscd.proposals.BetaAnnealing` up to ``phi_max``.
        seeds: one entropy value per lane (an int or a tuple of ints) or one int,
            expanded to ``(seed, lane)``. Lane ``l``'s random numbers depend only on
            its own entropy, so a lane run alone replays exactly inside a batch.
    """

    def __init__(
        self,
        x0: Any,
        lo: Any,
        hi: Any,
        total_steps: int,
        *,
        T: int = DSCD_DEFAULTS.T,
        K: int = DSCD_DEFAULTS.K,
        phi_max: float = PHI_MAX,
        seeds: int | Sequence[Any] | None = None,
        proposal: Proposal | None = None,
    ) -> None:
        x0 = x0.detach().cpu().numpy() if isinstance(x0, torch.Tensor) else np.asarray(x0)
        if x0.dtype not in (np.float32, np.float64):
            x0 = x0.astype(np.float64)
        if x0.ndim != 2 or x0.shape[0] < 1 or x0.shape[1] < 1:
            raise ValueError(f"x0 must have shape (lanes, coordinates) with both >= 1, got {x0.shape}")
        self.total_steps = _check_int("total_steps", total_steps, 1)
        self.T = _check_int("T", T, 1)
        self.K = _check_int("K", K, 1)
        if not (isinstance(phi_max, (int, float)) and 0.0 < phi_max <= PHI_MAX):
            raise ValueError(f"phi_max must lie in (0, {PHI_MAX!r}] (phi must stay below 1), got {phi_max!r}")
        self.phi_max = float(phi_max)
        self.proposal: Proposal = proposal if proposal is not None else BetaAnnealing(self.phi_max)
        L, n = x0.shape
        self.lo = np.broadcast_to(_float64(lo), (L, n)).copy()
        self.hi = np.broadcast_to(_float64(hi), (L, n)).copy()
        if not (np.isfinite(self.lo).all() and np.isfinite(self.hi).all()):
            raise ValueError("the proposal domain must be finite")
        if not (self.lo < self.hi).all():
            raise ValueError("the proposal domain needs lo < hi for every coordinate, e.g. domain=(-3.0, 3.0)")

        self.x_best = x0.copy()
        self.window = np.full((L, self.K), np.inf)
        self.window_pos = 0
        self.step_count = 0
        self.is_global = np.zeros(L, dtype=bool)
        self.run_length = np.zeros(L, dtype=np.int64)
        self.coord_proposed = np.zeros((L, n), dtype=np.int64)
        self.coord_accepted = np.zeros((L, n), dtype=np.int64)
        # Where the search stands (section 3): x_best's age is step_count - best_step; proposals accepted in
        # the current global phase; and the diagnostic counters.
        self.best_step = np.zeros(L, dtype=np.int64)
        self.phase_accepted = np.zeros(L, dtype=np.int64)
        self.counters = DSCDCounters.zeros(L)

        if seeds is None:
            seeds = secrets.randbits(63)  # fresh entropy, as numpy's own SeedSequence() draws it
        if isinstance(seeds, (int, np.integer)):
            entropy = [int(seeds)] if L == 1 else [(int(seeds), lane) for lane in range(L)]
        else:
            entropy = list(seeds)
            if len(entropy) != L:
                raise ValueError(f"seeds must give one entropy value per lane ({L}), got {len(entropy)}")
        self._rngs = [np.random.default_rng(list(e) if isinstance(e, (tuple, list)) else e) for e in entropy]
        self._best = np.full(L, np.inf)  # == self.window.min(axis=1), kept up to date
        self._pending: tuple[list[int], list[int]] | None = None  # the lanes proposed in, and their coordinates

    # -- reading -----------------------------------------------------------------
    @property
    def lanes(self) -> int:
        """The number of independent lanes (parameter groups) the engine steps at once."""
        return self.x_best.shape[0]

    @property
    def phi(self) -> float:
        """Concentration of the next proposal."""
        return self.proposal.concentration(self.step_count, self.total_steps)

    @property
    def global_steps(self) -> np.ndarray:
        """Global steps taken, per lane."""
        return self.coord_proposed.sum(axis=1)

    @property
    def local_steps(self) -> np.ndarray:
        """The local (gradient) steps taken so far, per lane."""
        return self.step_count - self.global_steps

    @property
    def accepted(self) -> np.ndarray:
        """Proposals accepted, per lane."""
        return self.coord_accepted.sum(axis=1)

    @property
    def rejected(self) -> np.ndarray:
        """The global proposals rejected so far, per lane."""
        return self.global_steps - self.accepted

    def best_value(self) -> np.ndarray:
        """Minimum of the window per lane (``inf`` before any finite value)."""
        return self._best.copy()

    @property
    def best_age(self) -> np.ndarray:
        """Steps since ``x_best`` last changed, per lane (0 right after an acceptance)."""
        return self.step_count - self.best_step

    def restart_window(self, values: Any) -> None:
        """Forget the window: each lane's window holds only ``values`` (one per lane), its new minimum.

        For a lane whose value is not finite nothing changes. Used by ``DSCD(refresh_best=True)``
        with ``f(x_best)`` re-evaluated by the current network, so that the acceptance test of
        the coming global phase compares proposals with ``x_best`` under the same weights.
        """
        values = _float64(values).reshape(-1)
        if values.shape[0] != self.lanes:
            raise ValueError(f"restart_window needs one value per lane ({self.lanes}), got {values.shape[0]}")
        lanes = np.isfinite(values)
        if not lanes.any():
            return
        self.window[lanes] = np.inf
        self.window[lanes, (self.window_pos - 1) % self.K] = values[lanes]
        self._best[lanes] = values[lanes]
        self.counters.refreshes += lanes

    # -- stepping ------------------------------------------------------------------
    def propose(self) -> np.ndarray:
        """Points to evaluate for the lanes in a global step.

        Returns ``(L, n)``: ``x_best`` with one uniformly chosen coordinate replaced
        by a Beta proposal in the lanes where :attr:`is_global` holds, and plain
        ``x_best`` elsewhere. Call :meth:`observe` with the values at these points.
        """
        x = self.x_best.copy()
        lanes = self.is_global.nonzero()[0].tolist()
        coords: list[int] = []
        if lanes:
            n, rngs = x.shape[1], self._rngs
            coords = [min(int(rngs[lane].random() * n), n - 1) for lane in lanes]  # each lane's own stream

            x[lanes, coords] = self.proposal.sample(x[lanes, coords].astype(np.float64), self.lo[lanes, coords],
                                                    self.hi[lanes, coords], self.phi, [rngs[lane] for lane in lanes])
            self.coord_proposed[lanes, coords] += 1
        self._pending = (lanes, coords)
        return x

    def observe(self, values: Any, x_eval: Any) -> StepResult:
        """Record the objective ``values`` (shape ``(L,)``) observed at ``x_eval``.

        For a global lane ``x_eval`` is its proposal (from :meth:`propose`), for a
        local lane the point before the local step. A value is accepted as the new
        ``x_best`` only if it is strictly below the window minimum before it is
        appended; non-finite values are never accepted and enter the window as
        ``inf``. Then the schedule switches the lanes that ran at least ``T``
        same-type steps and did not improve on this one. The caller moves global
        lanes back to ``x_best`` (backtracking).
        """
        if type(values) is not np.ndarray or values.dtype != np.float64:
            values = _float64(values)
        values = values.reshape(-1)
        if values.shape[0] != self.lanes:
            raise ValueError(f"observe needs one value per lane ({self.lanes}), got {values.shape[0]}")
        was_global = self.is_global
        if self._pending is None and was_global.any():
            raise RuntimeError("observe called for a global step without propose")
        finite = np.isfinite(values)
        if not finite.all():
            values = np.where(finite, values, np.inf)
            self.counters.nan_proposals += was_global & ~finite
        best = self._best
        accepted = values < best
        if accepted.any():
            x_eval = x_eval.detach().cpu().numpy() if isinstance(x_eval, torch.Tensor) else np.asarray(x_eval)
            self.x_best[accepted] = x_eval[accepted]
            self.best_step[accepted] = self.step_count + 1
            self.counters.local_improvements += accepted & ~was_global
            first_in_phase = accepted & was_global & (self.phase_accepted == 0)
            self.counters.phases_accepting += first_in_phase
            self.phase_accepted += accepted & was_global
        leaving = self.window[:, self.window_pos].copy()
        self.window[:, self.window_pos] = values
        self.window_pos = (self.window_pos + 1) % self.K
        self._best = np.minimum(best, values)
        stale = leaving == best
        if stale.any():  # the minimum may have left the window
            stale &= (values > best) & np.isfinite(leaving)
            self._best[stale] = self.window[stale].min(axis=1)

        if self._pending is not None:
            lanes, coords = self._pending
            if lanes:
                hit = accepted[lanes]
                if hit.any():
                    self.coord_accepted[np.asarray(lanes)[hit], np.asarray(coords)[hit]] += 1
            self._pending = None

        self.run_length += 1
        switched = (self.run_length >= self.T) & ~accepted
        self.is_global = was_global ^ switched
        starting = switched & self.is_global
        self.counters.global_phases += starting
        self.phase_accepted[starting] = 0
        self.run_length[switched] = 0
        self.step_count += 1
        return StepResult(was_global=was_global, accepted=accepted, switched=switched)

    def snapshot(self) -> tuple[Any, ...]:
        """What :meth:`restart_window` and :meth:`propose` change, to put back with :meth:`restore` when the
        evaluation between them and :meth:`observe` fails (an exception, Ctrl-C)."""
        return (self.window.copy(), self._best.copy(), self.counters.refreshes.copy(), self.coord_proposed.copy(),
                [rng.bit_generator.state for rng in self._rngs], self._pending)

    def restore(self, snapshot: tuple[Any, ...]) -> None:
        """Undo everything since :meth:`snapshot` was taken (before any :meth:`observe`)."""
        self.window, self._best, self.counters.refreshes, self.coord_proposed, streams, self._pending = snapshot
        for rng, state in zip(self._rngs, streams, strict=True):
            rng.bit_generator.state = state

    # -- persistence ---------------------------------------------------------------
    _ARRAYS = ("x_best", "lo", "hi", "window", "is_global", "run_length", "coord_proposed", "coord_accepted",
               "best_step", "phase_accepted", *DSCDCounters.names())  # the counters are saved by their names

    def _array(self, name: str) -> np.ndarray:
        return getattr(self.counters if name in DSCDCounters.names() else self, name)

    def _set_array(self, name: str, value: np.ndarray) -> None:
        setattr(self.counters if name in DSCDCounters.names() else self, name, value)

    def state_dict(self) -> dict[str, Any]:
        """Everything, as tensors and plain Python values (loadable with ``torch.load(weights_only=True)``)."""
        state: dict[str, Any] = {name: torch.from_numpy(self._array(name).copy()) for name in self._ARRAYS}
        state.update(
            total_steps=self.total_steps, T=self.T, K=self.K, phi_max=self.phi_max,
            window_pos=self.window_pos, step_count=self.step_count,
            rng_states=[_rng_state_out(rng.bit_generator.state) for rng in self._rngs],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state (all or nothing): a missing key, a shape or a schedule that
        differs is ValueError, and nothing is changed."""
        keys = list(self._ARRAYS) + ["window_pos", "step_count", "rng_states", "K", "T",
                                                               "total_steps", "phi_max"]
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"DSCD engine state is missing {missing}: not a state_dict() of this version")
        if tuple(state["x_best"].shape) != self.x_best.shape:
            raise ValueError(
                f"DSCD state holds {tuple(state['x_best'].shape)} (lanes, coordinates) but this optimiser has "
                f"{self.x_best.shape}: load it into an optimiser over the same parameters"
            )
        saved = {"K": int(state["K"]), "T": int(state["T"]), "total_steps": int(state["total_steps"]),
                 "phi_max": float(state["phi_max"])}
        differ = [f"{k}={v!r} (this optimiser: {getattr(self, k)!r})" for k, v in saved.items()
                  if v != getattr(self, k)]
        if differ:
            raise ValueError(f"DSCD state was saved with {', '.join(differ)}: construct the optimiser with the "
                             "settings it was saved with to continue that run")
        wrong = [f"{name} {tuple(state[name].shape)} (expected {self._array(name).shape})"
                 for name in self._ARRAYS if tuple(state[name].shape) != self._array(name).shape]
        position, steps = state["window_pos"], state["step_count"]
        for key, value, limit in (("window_pos", position, self.K), ("step_count", steps, None)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 or \
                    (limit is not None and value >= limit):
                wrong.append(f"{key} {value!r} (expected an integer in [0, {limit if limit else 'inf'}))")
        if len(state["rng_states"]) != self.lanes:
            wrong.append(f"rng_states of {len(state['rng_states'])} lanes (expected {self.lanes})")
        if wrong:
            raise ValueError(f"DSCD engine state is inconsistent: {'; '.join(wrong)}; it was altered or is not a "
                             "state_dict() of this optimiser")
        for name in self._ARRAYS:
            self._set_array(name, np.asarray(state[name].numpy(), dtype=self._array(name).dtype).copy())
        self.window_pos, self.step_count = int(state["window_pos"]), int(state["step_count"])
        self._best = self.window.min(axis=1)
        for rng, rng_state in zip(self._rngs, state["rng_states"], strict=True):
            rng.bit_generator.state = _rng_state_in(rng_state)
        self._pending = None


def _rng_state_out(state: Mapping[str, Any]) -> dict[str, Any]:
    """PCG64's 128-bit integers as strings, so the state survives ``torch.load(weights_only=True)``."""
    inner = state["state"]
    return {**state, "state": {k: str(v) for k, v in inner.items()}}


def _rng_state_in(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "state": {k: int(v) for k, v in state["state"].items()}}


@dataclass(frozen=True)
class Evaluate:
    """A step's request: the objective at the parameters as they now are, with autograd (``grad``) or
    without (a global step's forward pass only)."""

    grad: bool


@dataclass(frozen=True)
class Backward:
    """A step's request: back-propagate ``loss`` into ``inputs`` (their ``.grad``), and nothing else."""

    loss: torch.Tensor
    inputs: Sequence[torch.Tensor]


def drive_stages(stages: Generator[Evaluate | Backward, Any, torch.Tensor],
                 evaluate: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Run one optimiser step's :meth:`DSCD.stages`-style generator alone: each :class:`Evaluate` calls
    ``evaluate()`` (under autograd when asked), each :class:`Backward` back-propagates; an exception
    raised by ``evaluate`` is thrown into the step, which undoes itself. Returns the step's loss."""
    reply: Any = None
    while True:
        try:
            request = stages.send(reply)
        except StopIteration as done:
            return done.value
        try:
            with torch.set_grad_enabled(isinstance(request, Backward) or request.grad):
                if isinstance(request, Evaluate):
                    reply = evaluate()
                else:
                    request.loss.backward(inputs=list(request.inputs))
                    reply = None
        except BaseException as err:
            stages.throw(err)  # the step restores itself and re-raises
            raise  # pragma: no cover  (throw re-raises; kept for type checkers)


class DSCD(torch.optim.Optimizer):
    """Adam-style local steps alternating with DSCD global steps (paper Algorithm 2).

    DSCD wraps a gradient optimiser (``local``) over the same parameters. Every call
    of :meth:`step` is one step of one of two types:

    * **local**: the closure is called with autograd enabled, DSCD back-propagates
      the returned loss into its own parameters only (``loss.backward(inputs=...)``)
      and calls ``local.step()``. The loss is the objective at the position *before*
      the step; if it beats the window minimum that position becomes ``x_best``.
    * **global**: one coordinate, chosen uniformly, of ``x_best`` is replaced by a
      sample from the beta-annealed proposal inside the parameter group's
      ``domain``; the closure is called under :func:`torch.no_grad` (no graph, a
      forward pass only); the point becomes ``x_best`` if its loss is strictly below
      the minimum of the last ``K`` observed losses; then the parameters are set
      back to ``x_best`` (backtracking).

    The type switches when ``T`` consecutive steps of the current type were taken
    and the step did not improve on the window minimum. ``phi`` anneals from 0
    (uniform proposals) to just below 1 over ``total_steps`` steps (all types).

    **The closure only evaluates**: it returns the objective as a scalar tensor and
    must not call ``backward()`` itself (DSCD does that in local steps, and only for
    its own parameters, so a network's weights receive no gradient from it).

    Example::

        >>> import torch
        >>> from dscd import DSCD
        >>> x = torch.nn.Parameter(torch.full((2,), 2.5))
        >>> opt = DSCD([x], torch.optim.Adam([x], lr=0.05), total_steps=400, domain=(-3, 3), T=20, seed=0)
        >>> f = lambda: ((x**2 - 1) ** 2 + 0.3 * x).sum()   # two wells per coordinate
        >>> for _ in range(400):
        ...     loss = opt.step(lambda: f())
        >>> opt.load_best()                                # parameters := x_best
        >>> bool((x < 0).all())                            # both coordinates in the better well
        True

    Args:
        params: parameters or parameter groups; a group may set its own
            ``domain=(lo, hi)``.
        local: the local optimiser, an :class:`torch.optim.Optimizer` over exactly
            these parameters, or a callable that builds one from the parameter list.
        total_steps: number of ``step()`` calls in the whole run (anneals ``phi``).
        domain: default proposal box ``(lo, hi)`` (paper: ``(-3, 3)``).
        T: same-type steps before a switch may happen (paper: 50).
        K: window of observed values for acceptance (paper: 1000).
        phi_max: cap on the concentration, just below 1.
        seed: seed of the proposal stream (saved and restored by ``state_dict``).
        reset_local_state: clear the local optimiser's state (Adam's moments) each
            time the schedule switches back to local steps. Default ``False``: the
            moments survive global phases, as the paper describes one optimiser.
        refresh_best: at each switch from local to global steps, re-evaluate the
            objective at ``x_best`` (one extra forward pass, on the minibatch of the
            phase's first proposal) and restart the window with that value alone, so
            proposals must beat ``x_best`` as the current objective sees it. Default
            ``False``: Algorithm 2 as published, whose window minimum ``y_best`` was
            observed under earlier network weights and can become a stale low value
            that no proposal beats once the weights have moved on.
    """

    def __init__(
        self,
        params: Iterable[Any],
        local: torch.optim.Optimizer | Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
        total_steps: int,
        *,
        domain: tuple[float, float] = DSCD_DEFAULTS.domain,
        T: int = DSCD_DEFAULTS.T,
        K: int = DSCD_DEFAULTS.K,
        phi_max: float = PHI_MAX,
        seed: int | None = None,
        reset_local_state: bool = DSCD_DEFAULTS.reset_local_state,
        refresh_best: bool = DSCD_DEFAULTS.refresh_best,
    ) -> None:
        params = list(params) if not isinstance(params, torch.Tensor) else [params]
        if not params:
            raise ValueError("DSCD got an empty parameter list: pass the tensors to optimise (e.g. model.alphas())")
        _check_domain(domain)
        super().__init__(params, dict(domain=tuple(float(d) for d in domain)))
        self._params = [p for group in self.param_groups for p in group["params"]]
        dtypes = {p.dtype for p in self._params}
        if len(dtypes) != 1 or next(iter(dtypes)) not in (torch.float32, torch.float64):
            raise ValueError(f"DSCD needs float32 or float64 parameters of one dtype, got {sorted(map(str, dtypes))} "
                             "(keep architecture weights in float32 and use autocast for the network)")

        if isinstance(local, torch.optim.Optimizer):
            self.local = local
        elif callable(local):
            self.local = local(self._params)
        else:
            raise ValueError("local must be a torch.optim.Optimizer or a callable building one from the parameters")
        local_ids = {id(p) for group in self.local.param_groups for p in group["params"]}
        if local_ids != {id(p) for p in self._params}:
            raise ValueError("the local optimiser must hold exactly the parameters given to DSCD")

        lo, hi = [], []
        for group in self.param_groups:
            glo, ghi = _check_domain(group["domain"])
            for p in group["params"]:
                lo.append(np.full(p.numel(), glo))
                hi.append(np.full(p.numel(), ghi))
        self.reset_local_state = bool(reset_local_state)
        self.refresh_best = bool(refresh_best)
        self._engine = DSCDEngine(
            self._read()[None], np.concatenate(lo)[None], np.concatenate(hi)[None], total_steps,
            T=T, K=K, phi_max=phi_max, seeds=[seed] if seed is not None else None,
        )
        # A learning-rate scheduler attached to DSCD drives the wrapped optimiser: each DSCD group whose
        # parameters all sit in one group of ``local`` mirrors that group's ``lr`` (see _sync_lr).
        self._lr_targets: list[dict[str, Any] | None] = []
        for group in self.param_groups:
            homes = {id(g) for p in group["params"] for g in self.local.param_groups
                     if any(p is q for q in g["params"])}
            target = next((g for g in self.local.param_groups if id(g) in homes), None) if len(homes) == 1 else None
            if target is not None and "lr" in target:
                group["lr"] = target["lr"]
            self._lr_targets.append(target if target is not None and "lr" in target else None)
        self._lr_seen = [g.get("lr") for g in self.param_groups]
        self._constructed = True

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Only during construction: x_best, the window and the proposal box cover a fixed set of parameters."""
        if getattr(self, "_constructed", False):
            raise ValueError("DSCD's parameters are fixed when it is built (x_best, the loss window and the "
                             "proposal box cover exactly them): build a new DSCD over all the parameters")
        super().add_param_group(param_group)

    def _sync_lr(self) -> None:
        """Carry an ``lr`` changed on DSCD's groups (by a scheduler attached to DSCD) to the wrapped optimiser,
        and an ``lr`` changed on the wrapped optimiser (a scheduler attached to ``opt.local``) back."""
        for i, (group, target) in enumerate(zip(self.param_groups, self._lr_targets, strict=True)):
            if target is None:
                continue
            if group["lr"] != self._lr_seen[i]:
                target["lr"] = group["lr"]
            else:
                group["lr"] = target["lr"]
            self._lr_seen[i] = target["lr"]

    def __getstate__(self) -> dict[str, Any]:
        # torch keeps only defaults/state/param_groups; DSCD's engine and local optimiser
        # must travel too (deepcopy, pickling for multiprocessing).
        state = super().__getstate__()
        state.update(_params=self._params, local=self.local, _engine=self._engine,
                     reset_local_state=self.reset_local_state, refresh_best=self.refresh_best,
                     _lr_targets=self._lr_targets, _lr_seen=self._lr_seen, _constructed=True)
        return state

    # -- flat views ------------------------------------------------------------------
    def _read(self) -> np.ndarray:
        return torch.cat([p.detach().reshape(-1) for p in self._params]).cpu().numpy()

    @torch.no_grad()
    def _write(self, flat: np.ndarray) -> None:
        flat_t = torch.from_numpy(np.ascontiguousarray(flat))
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(flat_t[offset : offset + n].view_as(p))
            offset += n

    @staticmethod
    def _value(loss: Any) -> float:
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"the DSCD closure must return the objective as a scalar tensor, got {shape}")
        return float(loss.detach())

    # -- the step ----------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        """Take one local or one global step; returns the closure's loss."""
        if closure is None:
            raise ValueError("DSCD.step needs a closure that returns the objective (a scalar tensor), evaluated anew "
                             "at each call: a loop that calls loss.backward() then step() (DARTS' Architect, NASLib, "
                             "NNI) passes step(lambda: objective(...)) instead, without its own backward (recipe: "
                             "dscd.architect.DSCDArchitect)")
        return drive_stages(self.stages(), lambda: self._evaluate(closure))

    def stages(self) -> Generator[Evaluate | Backward, Any, torch.Tensor]:
        """One step as a generator of what it needs from its caller, for drivers that evaluate many
        optimisers' objectives in one pass (the batched search): it yields :class:`Evaluate` (set the
        objective at the parameters as they now are, with autograd or not, and ``send`` it) and
        :class:`Backward` (back-propagate that loss into ``inputs`` and ``send`` anything); an exception
        ``throw``-n in leaves the optimiser as before the step. Returns the step's loss.
        :meth:`step` drives it with a closure, and so does :func:`drive_stages`."""
        for p in self._params:  # a closure that calls backward leaves gradients behind: checked after each call
            p.grad = None
        engine = self._engine
        if bool(engine.is_global[0]):
            before = engine.snapshot()
            try:
                if self.refresh_best and int(engine.run_length[0]) == 0:  # the first step of a global phase
                    self._write(engine.x_best[0])
                    engine.restart_window(self._value((yield Evaluate(grad=False))))
                x_prop = engine.propose()
                self._write(x_prop[0])
                loss = yield Evaluate(grad=False)
                value = self._value(loss)
            except BaseException:  # the closure failed or was interrupted: as if this step had not begun
                engine.restore(before)
                self._write(engine.x_best[0])
                raise
            result = engine.observe(value, x_prop)  # a NaN proposal is rejected
            self._write(engine.x_best[0])
        else:
            x_current = self._read()
            loss = yield Evaluate(grad=True)
            value = self._value(loss)
            if not math.isfinite(value):
                raise NonFiniteLoss(
                    f"DSCD local step {engine.step_count}: the objective is {value}; nothing was changed "
                    "(parameters, x_best and the local optimiser's state are as before this step)"
                )
            if not loss.requires_grad:
                raise ValueError("the DSCD closure's loss does not depend on the parameters (no autograd graph)")
            for p in self._params:
                p.grad = None
            yield Backward(loss, self._params)
            result = engine.observe(value, x_current[None])
            self._sync_lr()
            self.local.step()
        if self.reset_local_state and bool(result.switched[0]) and not bool(engine.is_global[0]):
            self.local.state.clear()
        return loss

    def _evaluate(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``closure()``, which must only evaluate: DSCD calls ``backward`` itself on local steps, and a global
        step evaluates without gradients. A closure that calls ``backward`` is one clear error either way."""
        try:
            loss = closure()
        except RuntimeError as err:  # backward on a global step's graph-less loss
            if "does not require grad" not in str(err) and "backward through the graph" not in str(err):
                raise
            raise ValueError(_BACKWARD_IN_CLOSURE) from None
        if any(p.grad is not None for p in self._params):
            raise ValueError(_BACKWARD_IN_CLOSURE)
        return loss

    # -- reading -------------------------------------------------------------------------
    @property
    def phi(self) -> float:
        """Concentration of the next global proposal."""
        return self._engine.phi

    @property
    def next_step_is_global(self) -> bool:
        """Whether the next :meth:`step` is a global one (a Beta proposal, Algorithm 2), not a local gradient step."""
        return bool(self._engine.is_global[0])

    @property
    def stats(self) -> dict[str, Any]:
        """What to log: the step, steps of each type, proposals accepted/rejected, phi, the next step's type,
        y_best (the window minimum), x_best's age in steps, whether the parameters sit at x_best, then
        every counter of :class:`DSCDCounters`."""
        e = self._engine
        return {
            "step": e.step_count,
            "local_steps": int(e.local_steps[0]),
            "global_steps": int(e.global_steps[0]),
            "accepted": int(e.accepted[0]),
            "rejected": int(e.rejected[0]),
            "phi": e.phi,
            "next_step": "global" if bool(e.is_global[0]) else "local",
            "best_value": float(e.best_value()[0]),
            "best_age": int(e.best_age[0]),
            "at_best": self.at_best(),
            **e.counters.lane(0),
        }

    def at_best(self) -> bool:
        """Whether the parameters equal ``x_best`` exactly (true between global steps, and while a
        search is stuck: every global phase ends by setting them back to ``x_best``)."""
        return bool(np.array_equal(self._read(), self._engine.x_best[0]))

    def stats_per_parameter(self) -> list[dict[str, int]]:
        """Proposals made and accepted per parameter tensor, in parameter order."""
        out, offset = [], 0
        for p in self._params:
            n = p.numel()
            out.append({
                "proposed": int(self._engine.coord_proposed[0, offset : offset + n].sum()),
                "accepted": int(self._engine.coord_accepted[0, offset : offset + n].sum()),
            })
            offset += n
        return out

    def best_params(self) -> list[torch.Tensor]:
        """``x_best`` shaped like the parameters (copies)."""
        flat, out, offset = torch.from_numpy(self._engine.x_best[0].copy()), [], 0
        for p in self._params:
            out.append(flat[offset : offset + p.numel()].view_as(p).to(p.device))
            offset += p.numel()
        return out

    @torch.no_grad()
    def load_best(self) -> None:
        """Set the parameters to ``x_best`` (the result of Algorithm 2)."""
        self._write(self._engine.x_best[0])

    # -- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit: x_best, window, schedule, RNG, local state."""
        return {
            "format": _STATE_FORMAT,
            "engine": self._engine.state_dict(),
            "local": self.local.state_dict(),
            "domains": [group["domain"] for group in self.param_groups],
            "shapes": [list(p.shape) for p in self._params],
            "reset_local_state": self.reset_local_state,
            "refresh_best": self.refresh_best,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` saved, all or nothing: on any error nothing has changed.

        The parameters' shapes and the settings ``T``, ``K``, ``phi_max`` and ``total_steps``
        must equal this optimiser's (a differing one is refused, never silently taken over).
        """
        if not isinstance(state_dict, dict) or state_dict.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a DSCD state_dict (expected format {_STATE_FORMAT!r}); "
                             "was it saved by another optimiser or another version?")
        shapes = [list(p.shape) for p in self._params]
        if "shapes" in state_dict and [list(s) for s in state_dict["shapes"]] != shapes:
            raise ValueError(f"DSCD state holds parameters of shapes {state_dict['shapes']} but this optimiser has "
                             f"{shapes}: load it into an optimiser over the same parameters")
        if len(state_dict.get("domains", [])) != len(self.param_groups):
            raise ValueError(f"DSCD state has {len(state_dict.get('domains', []))} parameter groups, this "
                             f"optimiser {len(self.param_groups)}")
        backup = copy.deepcopy(self.state_dict())
        try:
            self._load(state_dict)
        except Exception:
            self._load(backup)
            raise

    def _load(self, state_dict: dict[str, Any]) -> None:
        self._engine.load_state_dict(state_dict["engine"])
        self.local.load_state_dict(state_dict["local"])
        for group, domain in zip(self.param_groups, state_dict["domains"], strict=True):
            group["domain"] = tuple(domain)
        self.reset_local_state = bool(state_dict["reset_local_state"])
        self.refresh_best = bool(state_dict["refresh_best"])
        for i, (group, target) in enumerate(zip(self.param_groups, self._lr_targets, strict=True)):
            if target is not None:  # the wrapped optimiser's state carries the learning rate
                target = self._lr_targets[i] = next(
                    g for g in self.local.param_groups if any(p is group["params"][0] for p in g["params"]))
                group["lr"] = self._lr_seen[i] = target["lr"]


#: What a closure that calls ``backward`` is told (DSCD's contract is the reverse of LBFGS').
_BACKWARD_IN_CLOSURE = ("the DSCD closure called backward: it must only compute and return the objective (DSCD "
                        "back-propagates on local steps and needs no gradient on global ones); remove loss.backward() "
                        "(and zero_grad) from the closure")


def _check_domain(domain: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(d) for d in domain)
    except (TypeError, ValueError):
        raise ValueError(f"domain must be a pair (lo, hi) of numbers, got {domain!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"domain must satisfy lo < hi with finite bounds, got ({lo}, {hi})")
    return lo, hi
