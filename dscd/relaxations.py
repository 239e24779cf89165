"""Relaxations: how a differentiable search turns architecture weights (alpha) into edge weights.

One :class:`Relaxation` record per relaxation, in :data:`RELAXATIONS`, says everything the rest of the
package needs of it, as :class:`dscd.ops.OpSpec` does for an operation:

- ``weights``: alpha ``(edges, operations)`` to the mixing weights of each edge's operations;
- ``allows_none``: whether ``none`` may be a candidate operation;
- ``regulariser`` and ``default_w01``: the term added to the search objective (weighted by the search
  configuration's ``w01``) and that weight's default;
- ``default_rule``: the discretisation rule a search uses unless told otherwise;
- ``alpha_init_std``: the spread of alpha's random initialisation (0 starts every alpha at 0).

``sigmoid`` is FairDARTS' (paper section 2, eq. 2): every operation is weighted independently by
``sigmoid(alpha)``, ``none`` is not a candidate (all weights near 0 is the zero operation already), and
the zero-one loss ``-mean((sigmoid(alpha) - 0.5)^2)`` pushes the weights to 0 or 1. ``softmax`` is
DARTS': an edge's operations compete through a softmax, ``none`` is a candidate, there is no regulariser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = ["RELAXATIONS", "Relaxation", "get_relaxation", "zero_one_loss"]


def zero_one_loss(alphas: Sequence[torch.Tensor]) -> torch.Tensor:
    """FairDARTS' zero-one loss ``-mean((sigmoid(alpha) - 0.5)^2)`` over all values of all tensors.

    It is -0.25 when every weight is 0 or 1 and 0 when every weight is 0.5.
    """
    flat = torch.cat([a.reshape(-1) for a in alphas])
    return -((torch.sigmoid(flat) - 0.5) ** 2).mean()


def _softmax(alpha: torch.Tensor) -> torch.Tensor:
    return F.softmax(alpha, dim=-1)


@dataclass(frozen=True)
class Relaxation:
    """One relaxation of the discrete choice of operations (see the module docstring)."""

    name: str
    weights: Callable[[torch.Tensor], torch.Tensor]
    allows_none: bool
    regulariser: Callable[[Sequence[torch.Tensor]], torch.Tensor] | None
    default_w01: float
    default_rule: str
    alpha_init_std: float
    summary: str

    def objective(self, cross_entropy: torch.Tensor, alphas: Sequence[torch.Tensor], w01: float) -> torch.Tensor:
        """The search objective: ``cross_entropy`` plus ``w01`` times the regulariser, when there is one."""
        if self.regulariser is not None and w01:
            return cross_entropy + w01 * self.regulariser(alphas)
        return cross_entropy


#: Every relaxation, by name.
RELAXATIONS: dict[str, Relaxation] = {
    "sigmoid": Relaxation("sigmoid", torch.sigmoid, allows_none=False, regulariser=zero_one_loss,
                          default_w01=10.0, default_rule="fairdarts", alpha_init_std=0.0,
                          summary="FairDARTS: sigmoid(alpha) per operation, the zero-one loss"),
    "softmax": Relaxation("softmax", _softmax, allows_none=True, regulariser=None, default_w01=0.0,
                          default_rule="darts", alpha_init_std=1e-3,
                          summary="DARTS: softmax over an edge's operations, 'none' among them"),
}


def get_relaxation(name: str) -> Relaxation:
    """The relaxation called ``name``; an unknown name is a ValueError listing the known ones."""
    if name not in RELAXATIONS:
        raise ValueError(f"relaxation must be one of {', '.join(RELAXATIONS)}, got {name!r}")
    return RELAXATIONS[name]
