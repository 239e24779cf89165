"""Synthetic multimodal test functions of the paper's appendix B (Figure 3).

Each function maps a batch of points ``(B, d)`` to values ``(B,)`` and is a plain
torch function (autograd gives its gradient). Both are separable, which favours
coordinate-wise methods; the rotated variants ``f(R (x - x*) + x*)`` with a
seeded random orthogonal ``R`` keep the global minimum ``x*`` in place but couple
the coordinates.

>>> import torch
>>> st = make_function("styblinski_tang", dim=3)
>>> round(float(st(st.x_min[None])[0] - st.f_min), 9)
0.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

__all__ = [
    "FUNCTIONS", "SyntheticFunction", "make_function", "random_rotation", "schwefel", "schwefel_grad",
    "styblinski_tang", "styblinski_tang_grad",
]

#: Global minimiser of one Styblinski-Tang coordinate and the value there.
ST_X_MIN = -2.903534027771178
ST_F_MIN_PER_DIM = -39.16616570377142
#: Global minimiser of one Schwefel coordinate (x sin(sqrt|x|) is largest there in [-500, 500]).
SCHWEFEL_X_MIN = 420.9687463491
SCHWEFEL_CONSTANT = 418.9829
#: Penalty factor outside [-500, 500] (pycma's `schwefelmult` uses the same form).
SCHWEFEL_PENALTY = 1e4
SCHWEFEL_BOX = 500.0


#: NumPy arrays or torch tensors: each function returns the kind it was given.
Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _xp(x: np.ndarray | torch.Tensor) -> Any:
    return torch if isinstance(x, torch.Tensor) else np


def styblinski_tang(x: Array) -> Array:
    """``0.5 * sum(x^4 - 16 x^2 + 5 x)`` over the last dimension; minimum -39.166 d at x = -2.9035.

    Works on torch tensors (autograd-friendly) and NumPy arrays alike.
    """
    x2 = x * x
    return 0.5 * (x2 * x2 - 16.0 * x2 + 5.0 * x).sum(-1)


def styblinski_tang_grad(x: Array) -> Array:
    """Gradient of :func:`styblinski_tang`, elementwise: ``2 x^3 - 16 x + 2.5``."""
    return 2.0 * x * x * x - 16.0 * x + 2.5


def schwefel(x: Array) -> Array:
    """``418.9829 d - sum(x sin(sqrt|x|)) + 1e4 sum(max(|x| - 500, 0)^2)``.

    Minimum about 1.3e-5 d at x = 420.97. Outside the box [-500, 500] the plain
    function keeps falling (the oscillation grows with ``|x|``), so a gradient method
    that leaves the box would find values below the "global minimum"; the quadratic
    penalty outside the box, as in pycma's ``schwefelmult``, rules that out.
    """
    xp = _xp(x)
    excess = xp.clip(abs(x) - SCHWEFEL_BOX, 0.0, None)
    return (SCHWEFEL_CONSTANT * x.shape[-1] - (x * xp.sin(xp.sqrt(abs(x)))).sum(-1)
            + SCHWEFEL_PENALTY * (excess * excess).sum(-1))


def schwefel_grad(x: Array) -> Array:
    """Gradient of :func:`schwefel`, elementwise: ``-(sin(s) + s cos(s) / 2)`` (``s = sqrt|x|``) + the penalty's."""
    xp = _xp(x)
    s = xp.sqrt(abs(x))
    excess = xp.clip(abs(x) - SCHWEFEL_BOX, 0.0, None)
    return -(xp.sin(s) + 0.5 * s * xp.cos(s)) + 2.0 * SCHWEFEL_PENALTY * excess * xp.sign(x)


def random_rotation(dim: int, seed: int) -> np.ndarray:
    """A uniformly distributed random orthogonal matrix (QR of a Gaussian with sign fix), float64."""
    g = np.random.default_rng(seed).standard_normal((dim, dim))
    q, r = np.linalg.qr(g)
    return q * np.sign(np.diag(r))


@dataclass(frozen=True, eq=False)
class SyntheticFunction:
    """A test function on a box, with its known global minimum.

    Calling it maps points ``(..., dim)`` to values ``(...)``, on torch tensors
    (differentiable) or NumPy arrays; :meth:`value_and_grad` gives the analytic
    gradient for NumPy arrays (what the batched benchmark uses).

    Attributes:
        name: ``styblinski_tang`` or ``schwefel`` (``rotated_`` prefixed when rotated).
        dim: number of coordinates.
        lo, hi: the box ``[lo, hi]^dim`` the runs start in and DSCD proposes in.
        x_min: ``(dim,)`` global minimiser (float64 tensor); ``f_min``: the value there.
        basin_gap: gap ``f - f_min`` of the best non-global local minimum of the
            separable function (one coordinate in the second-best well). A final
            gap below it means every coordinate reached the global basin (exact for
            the separable functions, a proxy for the rotated ones).
        rotation: ``(dim, dim)`` orthogonal matrix ``R`` (NumPy) or ``None``; the
            rotated function is ``f(R (x - x_min) + x_min)`` (Schwefel's penalty then
            applies to the rotated point, so the rotation cannot carry points to the
            better values Schwefel has outside its box).
    """

    name: str
    dim: int
    lo: float
    hi: float
    x_min: torch.Tensor
    f_min: float
    basin_gap: float
    rotation: np.ndarray | None = None
    _base: str = field(default="", repr=False)

    def _inner(self, x: Array) -> Array:
        if self.rotation is None:
            return x
        if isinstance(x, torch.Tensor):
            x_min = self.x_min.to(x.dtype)
            return (x - x_min) @ torch.from_numpy(self.rotation).to(x.dtype).T + x_min
        x_min = self.x_min.numpy()
        return (x - x_min) @ self.rotation.T + x_min

    def __call__(self, x: Array) -> Array:
        """Values at a batch of points ``(..., dim)`` -> ``(...)``."""
        z = self._inner(x)
        if self._base == "styblinski_tang":
            return styblinski_tang(z)
        return schwefel(z)

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values ``(...)`` and analytic gradients ``(..., dim)`` at NumPy points ``(..., dim)``."""
        z = self._inner(x)
        if self._base == "styblinski_tang":
            value, grad = styblinski_tang(z), styblinski_tang_grad(z)
        else:
            value, grad = schwefel(z), schwefel_grad(z)
        if self.rotation is not None:
            grad = grad @ self.rotation  # d z / d x = R, so grad_x = R^T grad_z
        return value, grad


def _basin_gap(f1, lo: float, hi: float, x_min: float, f_min: float) -> float:
    """Gap of the second-best local minimum of a 1-D function on [lo, hi] (dense grid, then refined)."""
    from scipy.optimize import minimize_scalar

    grid = np.linspace(lo, hi, 200001)
    y = f1(grid)
    idx = np.nonzero((y[1:-1] < y[:-2]) & (y[1:-1] < y[2:]))[0] + 1
    minima = []
    for i in idx:
        res = minimize_scalar(f1, bracket=(grid[i - 1], grid[i], grid[i + 1]))
        if abs(res.x - x_min) > 1e-3 * (hi - lo):
            minima.append(float(res.fun))
    return min(minima) - f_min


def _make_base(name: str) -> tuple[float, float, float, float, float]:
    if name == "styblinski_tang":
        lo, hi, x1, f1 = -5.0, 5.0, ST_X_MIN, ST_F_MIN_PER_DIM
        gap = _basin_gap(lambda x: 0.5 * (x**4 - 16 * x**2 + 5 * x), lo, hi, x1, f1)
    elif name == "schwefel":
        lo, hi, x1 = -500.0, 500.0, SCHWEFEL_X_MIN
        f1 = SCHWEFEL_CONSTANT - x1 * math.sin(math.sqrt(x1))
        gap = _basin_gap(lambda x: SCHWEFEL_CONSTANT - x * np.sin(np.sqrt(np.abs(x))), lo, hi, x1, f1)
    else:
        raise ValueError(f"unknown function {name!r}: choose one of {', '.join(FUNCTIONS)}")
    return lo, hi, x1, f1, gap


_BASE_CACHE: dict[str, tuple[float, float, float, float, float]] = {}

#: Names accepted by :func:`make_function` (``rotated_`` prefix allowed).
FUNCTIONS = ("styblinski_tang", "schwefel")


def make_function(name: str, dim: int, rotation_seed: int | None = None) -> SyntheticFunction:
    """Build a test function by name (``styblinski_tang``, ``schwefel``, or ``rotated_<name>``).

    A rotated function needs ``rotation_seed`` (default 0) for its fixed orthogonal ``R``.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    rotated = name.startswith("rotated_")
    base = name.removeprefix("rotated_")
    if base not in FUNCTIONS:
        raise ValueError(f"unknown function {name!r}: choose one of "
                         f"{', '.join(FUNCTIONS + tuple('rotated_' + f for f in FUNCTIONS))}")
    if base not in _BASE_CACHE:
        _BASE_CACHE[base] = _make_base(base)
    lo, hi, x1, f1, gap = _BASE_CACHE[base]
    rotation = random_rotation(dim, 0 if rotation_seed is None else rotation_seed) if rotated else None
    return SyntheticFunction(
        name=name, dim=dim, lo=lo, hi=hi, x_min=torch.full((dim,), x1, dtype=torch.float64),
        f_min=f1 * dim, basin_gap=gap, rotation=rotation, _base=base,
    )
