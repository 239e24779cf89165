"""What every search space's supernet offers the search loop: its architecture weights apart from the rest."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Supernet"]


class Supernet(nn.Module):
    """A supernet: ``forward`` gives logits, and the architecture weights (one tensor per cell of its space,
    in the space's ``cells`` order) are parameters of the module kept apart from the rest."""

    def alphas(self) -> list[nn.Parameter]:
        """The architecture weights, one ``(edges, operations)`` parameter per cell."""
        raise NotImplementedError

    def weights(self) -> list[nn.Parameter]:
        """Every parameter except the architecture weights (what the weight optimiser trains)."""
        alpha_ids = {id(a) for a in self.alphas()}
        return [p for p in self.parameters() if id(p) not in alpha_ids]

    def edge_weights(self, alphas: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """The mixing weights under the relaxation, one tensor per cell: of this network's alphas, or of
        ``alphas`` given in the same order (e.g. DSCD's ``x_best``)."""
        raise NotImplementedError
