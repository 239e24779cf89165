"""DSCD's global proposal (paper section 3, Appendix C): a new value for one coordinate, drawn around the
current best value from a Beta whose concentration ``phi`` anneals from 0 (uniform over the domain) to
just below 1 (a near-Dirac at the current value).

A proposal is a :class:`Proposal`: its concentration per step and how it draws values. The engine
(:class:`dscd.optim.DSCDEngine`) takes any; :class:`BetaAnnealing`, the paper's, is the default. A new
proposal is one class with these two methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

__all__ = ["PHI_MAX", "BetaAnnealing", "Proposal", "beta_params", "phi_schedule", "propose"]

#: Largest concentration used: phi is "held just below 1 so the Beta stays proper".
#: At 1 - 1e-6 the proposal's standard deviation is 2.9e-7 of the domain width,
#: below float32 resolution for a [-3, 3] box, and NumPy's Beta sampler still has the
#: intended mean and spread there.
PHI_MAX = 1.0 - 1e-6





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


def _beta_params(v: np.ndarray, phi: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    mu = phi * v + (1.0 - phi) * 0.5
    var = (1.0 - phi) ** 2 / 12.0
    nu = mu * (1.0 - mu) / var - 1.0
    return mu * nu, (1.0 - mu) * nu


def _unit_position(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.minimum(np.maximum((x - lo) / (hi - lo), 0.0), 1.0)


def _float64(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def beta_params(v: Any, phi: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Parameters ``(alpha, beta)`` of the proposal Beta around unit position ``v``.

    Paper appendix C: the mean is ``mu = phi v + (1 - phi) / 2``
    and the standard deviation ``sigma = (1 - phi) / sqrt(12)``; ``phi = 0`` is the
    uniform ``Beta(1, 1)`` and ``phi -> 1`` a Dirac delta at ``v``.

    The paper writes ``beta = (c1 - c2) / (c2 (c1 + 1))`` and ``alpha = c1 beta`` with
    ``c1 = mu / (1 - mu)`` and ``c2 = sigma^2 (c1 + 1)^2``. That is algebraically the
    method-of-moments form used here, ``nu = mu (1 - mu) / sigma^2 - 1``,
    ``alpha = mu nu``, ``beta = (1 - mu) nu``, which loses less precision and gives
    exactly ``(1, 1)`` at ``phi = 0``.

    ``v`` and ``phi`` broadcast against each other (tensors, arrays or numbers); the
    result is a pair of float64 tensors.

    >>> a, b = beta_params(0.75, 0.0)
    >>> float(a), float(b)
    (1.0, 1.0)
    """
    v, phi = _float64(v), _float64(phi)
    if np.isnan(v).any() or (v < 0).any() or (v > 1).any():
        raise ValueError("beta_params: the unit position v must lie in [0, 1] "
                         "(clip (x - lo) / (hi - lo) first)")
    if np.isnan(phi).any() or (phi < 0).any() or (phi >= 1).any():
        raise ValueError("beta_params: phi must lie in [0, 1); phi = 1 is a Dirac delta, not a proper Beta")
    alpha, beta = _beta_params(v, phi)
    return torch.from_numpy(np.asarray(alpha)), torch.from_numpy(np.asarray(beta))


def propose(x: Any, lo: Any, hi: Any, phi: float, rng: np.random.Generator) -> torch.Tensor:
    """Sample new coordinate values around ``x`` from the annealed Beta proposal.

    One sample per value of ``x`` from ``rng`` (a NumPy ``Generator``, whose state
    can be saved and restored exactly). Returns float64 values in ``[lo, hi]``;
    ``x`` may lie outside the box (the local optimiser may leave it), its unit
    position is clipped to [0, 1].
    """
    if not 0.0 <= float(phi) < 1.0:
        raise ValueError(f"phi must lie in [0, 1), got {phi}")
    x, lo, hi = np.broadcast_arrays(_float64(x), _float64(lo), _float64(hi))
    if not (lo < hi).all():
        raise ValueError("propose needs lo < hi")
    return torch.from_numpy(np.asarray(_proposal_kernel(x, lo, hi, float(phi), rng.beta), dtype=np.float64))


def _proposal_kernel(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, phi: float,
                     draw_beta: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The one proposal rule (paper section 3, Appendix C), used by :func:`propose` and :class:`DSCDEngine`.

    The unit position of ``x`` in ``[lo, hi]`` (clipped to [0, 1]) sets the annealed Beta's
    parameters; ``draw_beta(alpha, beta)`` draws one value per element (from whichever
    generator owns that element), mapped back into the box.
    """
    alpha, beta = _beta_params(_unit_position(x, lo, hi), phi)
    return lo + draw_beta(alpha, beta) * (hi - lo)


class Proposal(Protocol):
    """A global proposal: how concentrated it is at each step, and how it draws new coordinate values."""

    def concentration(self, step: int, total_steps: int) -> float:
        """``phi`` at ``step`` of ``total_steps``, in [0, 1): 0 is uniform over the domain."""

    def sample(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, phi: float,
               rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """One new value in ``[lo[i], hi[i]]`` around each ``x[i]`` (float64, 1-D arrays), element ``i`` drawn
        from ``rngs[i]`` (each lane's own stream, so a lane replays alone exactly as inside a batch)."""


@dataclass(frozen=True)
class BetaAnnealing:
    """The paper's proposal: a Beta around the value's unit position whose concentration follows
    :func:`phi_schedule` up to ``phi_max`` (Appendix C)."""

    phi_max: float = PHI_MAX

    def concentration(self, step: int, total_steps: int) -> float:
        """The concentration phi at ``step`` of ``total_steps`` (:func:`phi_schedule`)."""
        return phi_schedule(step, total_steps, self.phi_max)

    def sample(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, phi: float,
               rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """One proposal per lane around ``x`` in ``[lo, hi]`` at concentration ``phi``, each lane from its own
        generator (section 3.2)."""
        def draw(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
            return np.array([rng.beta(a, b) for rng, a, b in zip(rngs, alpha, beta, strict=True)])

        return _proposal_kernel(x, lo, hi, phi, draw)
