"""Doubly stochastic coordinate descent (DSCD) and its hybrid with a gradient optimiser.

This module owns the optimisation algorithm of the paper (SPEC sections 2-4):

* :func:`phi_schedule`, :func:`beta_params` and :func:`propose`: the beta-annealed
  coordinate proposal of appendix C;
* :class:`DSCDEngine`: the bookkeeping of Algorithms 1 and 2 (``x_best``, the
  window of the last ``K`` objective values, the local/global schedule, the
  random streams), vectorised over ``L`` independent problems ("lanes") so that
  the synthetic benchmark runs all its runs as one tensor;
* :class:`DSCD`: a :class:`torch.optim.Optimizer` that drives one engine lane and
  wraps any gradient optimiser (Adam in the paper) for the local steps.

It knows nothing about networks or data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import betaincinv

__all__ = [
    "PHI_MAX",
    "DSCD",
    "DSCDEngine",
    "StepResult",
    "beta_params",
    "phi_schedule",
    "propose",
]

#: Largest concentration used: phi is "held just below 1 so the Beta stays proper".
#: At 1 - 1e-6 the proposal's standard deviation is 2.9e-7 of the domain width,
#: below float32 resolution for a [-3, 3] box, and the inverse-CDF sampler is still
#: exact (it returns NaN from about 1 - 1e-8 on).
PHI_MAX = 1.0 - 1e-6

_STATE_FORMAT = "dscd.DSCD/1"


def phi_schedule(step: int, total_steps: int, phi_max: float = PHI_MAX) -> float:
    """Cosine-annealed concentration: ``phi(t) = (1 - cos(pi t / t_end)) / 2``.

    ``phi`` is 0 at the first step (``step = 0``, uniform proposals) and reaches
    ``phi_max`` (just below 1, a near-Dirac proposal) at ``step = total_steps``;
    later steps keep ``phi_max``.

    >>> phi_schedule(0, 100), round(phi_schedule(50, 100), 12), phi_schedule(100, 100) == PHI_MAX
    (0.0, 0.5, True)
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    t = min(max(int(step), 0), int(total_steps))
    return min((1.0 - math.cos(math.pi * t / total_steps)) / 2.0, phi_max)


def _as_float64(x: Any) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def beta_params(v: Any, phi: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Parameters ``(alpha, beta)`` of the proposal Beta around unit position ``v``.

    SPEC section 4 / paper appendix C: the mean is ``mu = phi v + (1 - phi) / 2``
    and the standard deviation ``sigma = (1 - phi) / sqrt(12)``; ``phi = 0`` is the
    uniform ``Beta(1, 1)`` and ``phi -> 1`` a Dirac delta at ``v``.

    The paper writes ``beta = (c1 - c2) / (c2 (c1 + 1))`` and ``alpha = c1 beta`` with
    ``c1 = mu / (1 - mu)`` and ``c2 = sigma^2 (c1 + 1)^2``. That is algebraically the
    method-of-moments form used here, ``nu = mu (1 - mu) / sigma^2 - 1``,
    ``alpha = mu nu``, ``beta = (1 - mu) nu``, which loses less precision and gives
    exactly ``(1, 1)`` at ``phi = 0``.

    ``v`` and ``phi`` broadcast against each other (tensors, arrays or numbers); the
    result is float64.

    >>> a, b = beta_params(0.75, 0.0)
    >>> float(a), float(b)
    (1.0, 1.0)
    """
    v = _as_float64(v)
    phi = _as_float64(phi)
    if torch.isnan(v).any() or (v < 0).any() or (v > 1).any():
        raise ValueError("beta_params: the unit position v must lie in [0, 1] "
                         "(clip (x - lo) / (hi - lo) first)")
    if torch.isnan(phi).any() or (phi < 0).any() or (phi >= 1).any():
        raise ValueError("beta_params: phi must lie in [0, 1); phi = 1 is a Dirac delta, not a proper Beta")
    mu = phi * v + (1.0 - phi) * 0.5
    var = (1.0 - phi) ** 2 / 12.0
    nu = mu * (1.0 - mu) / var - 1.0
    return mu * nu, (1.0 - mu) * nu


def propose(x: Any, lo: Any, hi: Any, phi: Any, u: Any) -> torch.Tensor:
    """Sample new coordinate values around ``x`` from the annealed Beta proposal.

    ``u`` are uniform numbers in [0, 1) (one per value of ``x``); the Beta sample is
    their inverse CDF, so a proposal is a deterministic function of its uniform and
    a random stream can be saved and replayed exactly. Returns float64 values in
    ``[lo, hi]``; ``x`` may lie outside the box (the local optimiser may leave it),
    its unit position is clipped to [0, 1].
    """
    x, lo, hi = _as_float64(x), _as_float64(lo), _as_float64(hi)
    v = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    alpha, beta = beta_params(v, phi)
    unit = betaincinv(alpha.numpy(), beta.numpy(), _as_float64(u).numpy())
    unit = torch.from_numpy(np.asarray(unit, dtype=np.float64))
    # Past the sampler's range the distribution is a delta at its mean in all but name.
    mean = alpha / (alpha + beta)
    unit = torch.where(torch.isfinite(unit), unit, mean).clamp(0.0, 1.0)
    return lo + unit * (hi - lo)


@dataclass(frozen=True)
class StepResult:
    """What one engine step did, per lane (each a bool tensor of shape ``(L,)``)."""

    was_global: torch.Tensor
    accepted: torch.Tensor
    switched: torch.Tensor


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class DSCDEngine:
    """State and rules of the local/global hybrid for ``L`` independent problems.

    Each lane is one problem of ``n`` coordinates with its own ``x_best``, window of
    the last ``K`` observed values, schedule (local or global, run length) and
    random stream. All lanes step together, so the concentration ``phi`` is shared.
    The engine never evaluates the objective: a driver asks which lanes take a
    global step (:attr:`is_global`), asks for proposals (:meth:`propose`), evaluates
    them (and, for local lanes, the current point), and reports the values with
    :meth:`observe`. :class:`DSCD` is the single-lane driver for PyTorch
    parameters; ``dscd.bench`` drives many lanes at once.

    Args:
        x0: ``(L, n)`` starting points; ``x_best`` starts here (its value unknown).
        lo, hi: proposal box, broadcastable to ``(L, n)``, ``lo < hi``.
        total_steps: steps over which ``phi`` anneals from 0 to ``phi_max``.
        T: minimum run of same-type steps before a switch (paper: 50).
        K: window length for the acceptance test (paper: 1000).
        phi_max: cap on ``phi``, in (0, PHI_MAX].
        seeds: one entropy value per lane (an int or a tuple of ints) or one int,
            expanded to ``(seed, lane)``. Lane ``l``'s random numbers depend only on
            its own entropy, so a lane run alone replays exactly inside a batch.
        block: uniforms drawn per refill of a lane's buffer.
    """

    def __init__(
        self,
        x0: torch.Tensor,
        lo: Any,
        hi: Any,
        total_steps: int,
        *,
        T: int = 50,
        K: int = 1000,
        phi_max: float = PHI_MAX,
        seeds: int | Sequence[Any] | None = None,
        block: int = 256,
    ) -> None:
        if x0.dim() != 2 or x0.shape[0] < 1 or x0.shape[1] < 1:
            raise ValueError(f"x0 must have shape (lanes, coordinates) with both >= 1, got {tuple(x0.shape)}")
        self.total_steps = _check_int("total_steps", total_steps, 1)
        self.T = _check_int("T", T, 1)
        self.K = _check_int("K", K, 1)
        if not (isinstance(phi_max, (int, float)) and 0.0 < phi_max <= PHI_MAX):
            raise ValueError(f"phi_max must lie in (0, {PHI_MAX!r}] (phi must stay below 1), got {phi_max!r}")
        self.phi_max = float(phi_max)
        L, n = x0.shape
        x0 = x0.detach()
        self.lo = torch.as_tensor(lo, dtype=x0.dtype).broadcast_to((L, n)).clone()
        self.hi = torch.as_tensor(hi, dtype=x0.dtype).broadcast_to((L, n)).clone()
        if not (torch.isfinite(self.lo).all() and torch.isfinite(self.hi).all()):
            raise ValueError("the proposal domain must be finite")
        if not (self.lo < self.hi).all():
            raise ValueError("the proposal domain needs lo < hi for every coordinate, e.g. domain=(-3.0, 3.0)")
        self.block = _check_int("block", block, 1)

        self.x_best = x0.clone()
        self.window = torch.full((L, self.K), math.inf, dtype=torch.float64)
        self.window_pos = 0
        self.step_count = 0
        self.is_global = torch.zeros(L, dtype=torch.bool)
        self.run_length = torch.zeros(L, dtype=torch.long)
        self.local_steps = torch.zeros(L, dtype=torch.long)
        self.global_steps = torch.zeros(L, dtype=torch.long)
        self.accepted = torch.zeros(L, dtype=torch.long)
        self.rejected = torch.zeros(L, dtype=torch.long)
        self.nan_proposals = torch.zeros(L, dtype=torch.long)
        self.coord_proposed = torch.zeros((L, n), dtype=torch.long)
        self.coord_accepted = torch.zeros((L, n), dtype=torch.long)

        if seeds is None:
            seeds = int(np.random.SeedSequence().entropy % (2**63))
        if isinstance(seeds, (int, np.integer)):
            entropy = [int(seeds)] if L == 1 else [(int(seeds), lane) for lane in range(L)]
        else:
            entropy = list(seeds)
            if len(entropy) != L:
                raise ValueError(f"seeds must give one entropy value per lane ({L}), got {len(entropy)}")
        self._rngs = [np.random.default_rng(list(e) if isinstance(e, (tuple, list)) else e) for e in entropy]
        self._buffer = np.zeros((L, self.block, 2), dtype=np.float64)
        self._buffer_pos = np.full(L, self.block, dtype=np.int64)
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    # -- reading -----------------------------------------------------------------
    @property
    def lanes(self) -> int:
        return self.x_best.shape[0]

    @property
    def phi(self) -> float:
        """Concentration of the next proposal."""
        return phi_schedule(self.step_count, self.total_steps, self.phi_max)

    def best_value(self) -> torch.Tensor:
        """Minimum of the window per lane (``inf`` before any finite value)."""
        return self.window.min(dim=1).values

    # -- stepping ------------------------------------------------------------------
    def _uniforms(self, lanes: np.ndarray) -> np.ndarray:
        empty = lanes[self._buffer_pos[lanes] >= self.block]
        for lane in empty:
            self._buffer[lane] = self._rngs[lane].random((self.block, 2))
            self._buffer_pos[lane] = 0
        u = self._buffer[lanes, self._buffer_pos[lanes]]
        self._buffer_pos[lanes] += 1
        return u

    def propose(self) -> torch.Tensor:
        """Points to evaluate for the lanes in a global step.

        Returns ``(L, n)``: ``x_best`` with one uniformly chosen coordinate replaced
        by a Beta proposal in the lanes where :attr:`is_global` holds, and plain
        ``x_best`` elsewhere. Call :meth:`observe` with the values at these points.
        """
        x = self.x_best.clone()
        lanes = self.is_global.nonzero().flatten()
        coords = torch.zeros(0, dtype=torch.long)
        if lanes.numel():
            u = torch.from_numpy(self._uniforms(lanes.numpy()))
            n = x.shape[1]
            coords = (u[:, 0] * n).long().clamp_(max=n - 1)
            new = propose(x[lanes, coords], self.lo[lanes, coords], self.hi[lanes, coords], self.phi, u[:, 1])
            x[lanes, coords] = new.to(x.dtype)
        self._pending = (lanes, coords)
        return x

    def observe(self, values: Any, x_eval: torch.Tensor) -> StepResult:
        """Record the objective ``values`` (shape ``(L,)``) observed at ``x_eval``.

        For a global lane ``x_eval`` is its proposal (from :meth:`propose`), for a
        local lane the point before the local step. A value is accepted as the new
        ``x_best`` only if it is strictly below the window minimum before it is
        appended; non-finite values are never accepted and enter the window as
        ``inf``. Then the schedule switches the lanes that ran at least ``T``
        same-type steps and did not improve on this one. The caller moves global
        lanes back to ``x_best`` (backtracking).
        """
        values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        if values.shape[0] != self.lanes:
            raise ValueError(f"observe needs one value per lane ({self.lanes}), got {values.shape[0]}")
        was_global = self.is_global.clone()
        if was_global.any() and self._pending is None:
            raise RuntimeError("observe called for a global step without propose")
        finite = torch.isfinite(values)
        values = torch.where(finite, values, math.inf)
        accepted = values < self.best_value()
        self.x_best[accepted] = x_eval.detach().to(self.x_best.dtype)[accepted]
        self.window[:, self.window_pos] = values
        self.window_pos = (self.window_pos + 1) % self.K

        local = ~was_global
        self.local_steps += local
        self.global_steps += was_global
        self.accepted += was_global & accepted
        self.rejected += was_global & ~accepted
        self.nan_proposals += was_global & ~finite
        if self._pending is not None:
            lanes, coords = self._pending
            self.coord_proposed[lanes, coords] += 1
            self.coord_accepted[lanes, coords] += accepted[lanes].long()
            self._pending = None

        self.run_length += 1
        switched = (self.run_length >= self.T) & ~accepted
        self.is_global ^= switched
        self.run_length[switched] = 0
        self.step_count += 1
        return StepResult(was_global=was_global, accepted=accepted, switched=switched)

    # -- persistence ---------------------------------------------------------------
    _TENSORS = (
        "x_best", "lo", "hi", "window", "is_global", "run_length", "local_steps", "global_steps",
        "accepted", "rejected", "nan_proposals", "coord_proposed", "coord_accepted",
    )

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name).clone() for name in self._TENSORS}
        state.update(
            total_steps=self.total_steps, T=self.T, K=self.K, phi_max=self.phi_max, block=self.block,
            window_pos=self.window_pos, step_count=self.step_count,
            rng_states=[rng.bit_generator.state for rng in self._rngs],
            buffer=torch.from_numpy(self._buffer.copy()), buffer_pos=torch.from_numpy(self._buffer_pos.copy()),
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = [k for k in (*self._TENSORS, "window_pos", "step_count", "rng_states", "buffer", "buffer_pos")
                   if k not in state]
        if missing:
            raise ValueError(f"DSCD engine state is missing {missing}: not a state_dict() of this version")
        if tuple(state["x_best"].shape) != tuple(self.x_best.shape):
            raise ValueError(
                f"DSCD state holds {tuple(state['x_best'].shape)} (lanes, coordinates) but this optimiser has "
                f"{tuple(self.x_best.shape)}: load it into an optimiser over the same parameters"
            )
        if int(state["K"]) != self.K or int(state["block"]) != self.block:
            raise ValueError(f"DSCD state was saved with K={state['K']}, block={state['block']}; "
                             f"this optimiser has K={self.K}, block={self.block}")
        for name in self._TENSORS:
            setattr(self, name, state[name].detach().clone().to(getattr(self, name).dtype))
        self.total_steps, self.T, self.phi_max = int(state["total_steps"]), int(state["T"]), float(state["phi_max"])
        self.window_pos, self.step_count = int(state["window_pos"]), int(state["step_count"])
        for rng, rng_state in zip(self._rngs, state["rng_states"], strict=True):
            rng.bit_generator.state = rng_state
        self._buffer = state["buffer"].numpy().copy()
        self._buffer_pos = state["buffer_pos"].numpy().copy()
        self._pending = None


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
    """

    def __init__(
        self,
        params: Iterable[Any],
        local: torch.optim.Optimizer | Callable[[list[torch.nn.Parameter]], torch.optim.Optimizer],
        total_steps: int,
        *,
        domain: tuple[float, float] = (-3.0, 3.0),
        T: int = 50,
        K: int = 1000,
        phi_max: float = PHI_MAX,
        seed: int | None = None,
        reset_local_state: bool = False,
    ) -> None:
        params = list(params) if not isinstance(params, torch.Tensor) else [params]
        if not params:
            raise ValueError("DSCD got an empty parameter list: pass the tensors to optimise (e.g. model.alphas())")
        _check_domain(domain)
        super().__init__(params, dict(domain=tuple(float(d) for d in domain)))
        self._params = [p for group in self.param_groups for p in group["params"]]
        dtypes = {p.dtype for p in self._params}
        if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
            raise ValueError(f"DSCD needs floating-point parameters of one dtype, got {sorted(map(str, dtypes))}")

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
                lo.append(torch.full((p.numel(),), glo, dtype=torch.float64))
                hi.append(torch.full((p.numel(),), ghi, dtype=torch.float64))
        self.reset_local_state = bool(reset_local_state)
        self._engine = DSCDEngine(
            self._read()[None], torch.cat(lo)[None], torch.cat(hi)[None], total_steps,
            T=T, K=K, phi_max=phi_max, seeds=[seed] if seed is not None else None,
        )

    def __getstate__(self) -> dict[str, Any]:
        # torch keeps only defaults/state/param_groups; DSCD's engine and local optimiser
        # must travel too (deepcopy, pickling for multiprocessing).
        state = super().__getstate__()
        state.update(_params=self._params, local=self.local, _engine=self._engine,
                     reset_local_state=self.reset_local_state)
        return state

    # -- flat views ------------------------------------------------------------------
    def _read(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1).cpu() for p in self._params])

    def _write(self, flat: torch.Tensor) -> None:
        offset = 0
        for p in self._params:
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
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
            raise ValueError("DSCD.step needs a closure that returns the objective (a scalar tensor)")
        engine = self._engine
        if bool(engine.is_global[0]):
            x_prop = engine.propose()
            self._write(x_prop[0])
            loss = closure()
            result = engine.observe(self._value(loss), x_prop)  # a NaN proposal is rejected
            self._write(engine.x_best[0])
        else:
            x_current = self._read()
            with torch.enable_grad():
                loss = closure()
                value = self._value(loss)
                if not math.isfinite(value):
                    raise ValueError(
                        f"DSCD local step {engine.step_count}: the objective is {value}; nothing was changed "
                        "(parameters, x_best and the local optimiser's state are as before this step)"
                    )
                if not loss.requires_grad:
                    raise ValueError("the DSCD closure's loss does not depend on the parameters (no autograd graph)")
                for p in self._params:
                    p.grad = None
                loss.backward(inputs=self._params)
            result = engine.observe(value, x_current[None])
            self.local.step()
        if self.reset_local_state and bool(result.switched[0]) and not bool(engine.is_global[0]):
            self.local.state.clear()
        return loss

    # -- reading -------------------------------------------------------------------------
    @property
    def phi(self) -> float:
        """Concentration of the next global proposal."""
        return self._engine.phi

    @property
    def next_step_is_global(self) -> bool:
        return bool(self._engine.is_global[0])

    @property
    def stats(self) -> dict[str, Any]:
        """Counters to log: steps of each type, proposals accepted/rejected, phi, best value."""
        e = self._engine
        return {
            "step": e.step_count,
            "local_steps": int(e.local_steps[0]),
            "global_steps": int(e.global_steps[0]),
            "accepted": int(e.accepted[0]),
            "rejected": int(e.rejected[0]),
            "nan_proposals": int(e.nan_proposals[0]),
            "phi": e.phi,
            "next_step": "global" if bool(e.is_global[0]) else "local",
            "best_value": float(e.best_value()[0]),
        }

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
        flat, out, offset = self._engine.x_best[0], [], 0
        for p in self._params:
            out.append(flat[offset : offset + p.numel()].view_as(p).clone().to(p.device))
            offset += p.numel()
        return out

    @torch.no_grad()
    def load_best(self) -> None:
        """Set the parameters to ``x_best`` (the result of Algorithm 2)."""
        self._write(self._engine.x_best[0])

    # -- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        """Everything needed to continue bit for bit: x_best, window, schedule, RNG, local state."""
        return {
            "format": _STATE_FORMAT,
            "engine": self._engine.state_dict(),
            "local": self.local.state_dict(),
            "domains": [group["domain"] for group in self.param_groups],
            "reset_local_state": self.reset_local_state,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        if not isinstance(state_dict, dict) or state_dict.get("format") != _STATE_FORMAT:
            raise ValueError(f"not a DSCD state_dict (expected format {_STATE_FORMAT!r}); "
                             "was it saved by another optimiser or another version?")
        self._engine.load_state_dict(state_dict["engine"])
        self.local.load_state_dict(state_dict["local"])
        for group, domain in zip(self.param_groups, state_dict["domains"], strict=True):
            group["domain"] = tuple(domain)
        self.reset_local_state = bool(state_dict["reset_local_state"])


def _check_domain(domain: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(d) for d in domain)
    except (TypeError, ValueError):
        raise ValueError(f"domain must be a pair (lo, hi) of numbers, got {domain!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"domain must satisfy lo < hi with finite bounds, got ({lo}, {hi})")
    return lo, hi
