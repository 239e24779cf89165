"""DSCD in a DARTS-style loop: a drop-in for the first-order ``Architect`` of DARTS and its descendants.

DARTS' loop (and those of PC-DARTS, FairDARTS, NASLib and NNI, which copy it) alternates an
architecture step on a validation batch, ``architect.step(input_valid, target_valid)``, with a
weight step on a training batch. Its first-order ``Architect`` computes the validation loss, calls
``backward`` and then ``optimizer.step()``. DSCD cannot step that way: a global step evaluates the
objective at a proposed point, so it needs the objective, not a gradient. :class:`DSCDArchitect` keeps
the loop's call and hands DSCD the objective as a closure (paper section 3, Algorithm 2; Appendix E.2
for the search)::

    architect = DSCDArchitect(model, criterion, total_steps=epochs * len(valid_queue))
    for step, ((x, y), (x_val, y_val)) in enumerate(zip(train_queue, valid_queue)):
        architect.step(x_val, y_val)          # was: Architect(model, args).step(x, y, x_val, y_val, lr, w_optim)
        w_optim.zero_grad(); criterion(model(x), y).backward(); w_optim.step()

A runnable example on a toy supernet, whose architecture weight picks one of two operations:

>>> import torch
>>> from torch import nn
>>> class Toy(nn.Module):                      # out = sum_k softmax(alpha)_k op_k(x)
...     def __init__(self):
...         super().__init__()
...         self.ops = nn.ModuleList([nn.Linear(4, 2), nn.Identity()])
...         self.alpha = nn.Parameter(torch.zeros(2))
...     def arch_parameters(self):
...         return [self.alpha]
...     def forward(self, x):
...         w = torch.softmax(self.alpha, 0)
...         return w[0] * self.ops[0](x) + w[1] * self.ops[1](x)[:, :2]
>>> _ = torch.manual_seed(0)
>>> model = Toy()
>>> architect = DSCDArchitect(model, nn.CrossEntropyLoss(), total_steps=300, lr=0.05, T=5, K=5, seed=0)
>>> for _ in range(300):                         # a fresh validation batch per step, as in a search
...     x = torch.randn(32, 4)
...     loss = architect.step(x, (x[:, 0] > 0).long())
>>> stats = architect.optimizer.stats
>>> stats["global_steps"] > 0 and stats["local_steps"] > 0   # both kinds of step were taken
True
>>> all(p.grad is None for p in model.ops.parameters())      # the weights got no gradient from it
True

The loop's own ``backward`` then ``optimizer.step()`` (NASLib's and NNI's DARTS optimisers) is refused by
:class:`dscd.DSCD` in one line that points here: pass the objective instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from dscd.optim import DSCD, DSCD_DEFAULTS

__all__ = ["DSCDArchitect"]


class DSCDArchitect:
    """The first-order DARTS ``Architect`` with DSCD on the architecture weights.

    Args:
        model: the supernet; its architecture weights are ``model.arch_parameters()`` (DARTS' name) or,
            failing that, ``model.alphas()`` (dscd's supernets).
        criterion: ``criterion(model(x), y)`` is the architecture objective (add a regulariser in it,
            e.g. FairDARTS' zero-one loss, by passing a callable).
        total_steps: ``step`` calls in the whole search (phi anneals over them).
        lr, betas, weight_decay: the wrapped Adam's (DARTS': 3e-4, (0.5, 0.999), 1e-3).
        domain, T, K, seed, refresh_best, reset_local_state: :class:`dscd.DSCD`'s (defaults: the paper's).
    """

    def __init__(self, model: nn.Module, criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 total_steps: int, *, lr: float = 3e-4, betas: tuple[float, float] = (0.5, 0.999),
                 weight_decay: float = 1e-3, domain: tuple[float, float] = DSCD_DEFAULTS.domain,
                 T: int = DSCD_DEFAULTS.T, K: int = DSCD_DEFAULTS.K, seed: int | None = None,
                 refresh_best: bool = DSCD_DEFAULTS.refresh_best,
                 reset_local_state: bool = DSCD_DEFAULTS.reset_local_state) -> None:
        params = self._arch_parameters(model)
        self.model, self.criterion = model, criterion
        adam = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
        self.optimizer = DSCD(params, adam, total_steps=total_steps, domain=domain, T=T, K=K, seed=seed,
                              refresh_best=refresh_best, reset_local_state=reset_local_state)

    @staticmethod
    def _arch_parameters(model: nn.Module) -> list[nn.Parameter]:
        for name in ("arch_parameters", "alphas"):
            method: Any = getattr(model, name, None)
            if callable(method):
                return list(method())
        raise ValueError("DSCDArchitect needs a model with arch_parameters() (DARTS) or alphas() (dscd): the "
                         "architecture weights DSCD optimises")

    def step(self, input_valid: torch.Tensor, target_valid: torch.Tensor) -> torch.Tensor:
        """One architecture step on a validation batch (local: Adam; global: a DSCD proposal); returns the
        objective at the point before the step. Only the architecture weights receive gradients."""
        return self.optimizer.step(lambda: self.criterion(self.model(input_valid), target_valid))
