"""Candidate operations of the DARTS/FairDARTS cell space and the registry of their facts.

The operations are FairDARTS' (paper section 2, following DARTS' cell space):
pools, skip connection (a factorized reduction at stride 2), separable and
dilated convolutions. ``none`` (DARTS' zero op) exists for the softmax relaxation.

:data:`OPS` maps each name to an :class:`OpSpec`: how to build the operation and
the facts the search network relies on (does it start with a ReLU of its input,
has it parameters, is it a pool), per stride. Every convolutional operation
starts with a ReLU; in the search network a state's ReLU is computed once and
shared by every operation that starts with it (``pre_relu=True`` builds the
operation without its own leading ReLU; the parameters are the same).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "DARTS_OPS", "FAIRDARTS_OPS", "OPS", "DilConv", "FactorizedReduce", "OpSpec", "ReLUConvBN", "SepConv", "Zero",
    "check_ops", "make_op",
]

#: The FairDARTS candidate operations, in the reference's order.
FAIRDARTS_OPS = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                 "dil_conv_3x3", "dil_conv_5x5")
#: DARTS' operations: ``none`` first, then FairDARTS'.
DARTS_OPS = ("none", *FAIRDARTS_OPS)


def _relu(pre_relu: bool) -> list[nn.Module]:
    return [] if pre_relu else [nn.ReLU(inplace=False)]


class ReLUConvBN(nn.Sequential):
    """ReLU, convolution, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int, stride: int = 1, padding: int = 0,
                 affine: bool = True, pre_relu: bool = False) -> None:
        super().__init__(*_relu(pre_relu), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    """ReLU, depthwise (dilated) convolution, 1x1 convolution, BatchNorm."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int, stride: int, padding: int, dilation: int = 1,
                 affine: bool = True, pre_relu: bool = False) -> None:
        super().__init__(
            *_relu(pre_relu),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked [ReLU, depthwise kxk, 1x1, BN] blocks; only the first depthwise convolution strides."""

    def __init__(self, c_in: int, c_out: int, *, kernel: int, stride: int, padding: int, affine: bool = True,
                 pre_relu: bool = False) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel=kernel, stride=stride, padding=padding, affine=affine, pre_relu=pre_relu),
            DilConv(c_in, c_out, kernel=kernel, stride=1, padding=padding, affine=affine),
        )


class Zero(nn.Module):
    """DARTS' ``none``: zeros of the output's shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution: ReLU, two 1x1 stride-2 convolutions (the second on the input shifted by one
    pixel), concatenated, BatchNorm.

    The stride is taken by subsampling the input (``x[:, :, ::2, ::2]``) before a stride-1 convolution:
    the same numbers, and it avoids a heap corruption in torch 2.14's CPU backward of a strided 1x1
    convolution on channels_last tensors with one thread.
    """

    def __init__(self, c_in: int, c_out: int, *, affine: bool = True, pre_relu: bool = False) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = None if pre_relu else nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.relu is not None:
            x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))  # odd sizes stay aligned with conv_1
        return self.bn(torch.cat([self.conv_1(x[:, :, ::2, ::2]), self.conv_2(shifted[:, :, ::2, ::2])], dim=1))


#: factory(channels, stride, affine, pre_relu) -> the operation.
OpFactory = Callable[[int, int, bool, bool], nn.Module]


@dataclass(frozen=True)
class OpSpec:
    """One candidate operation: how to build it and what the search network may assume about it.

    ``relu_first_at`` and ``parameter_free_at`` are the strides (1, 2) at which the
    operation starts with a ReLU of its input and at which it has no parameters
    (``skip_connect`` is the identity at stride 1 and a factorized reduction at 2).
    ``pool``: a pooling operation, which the search network follows with a non-affine
    BatchNorm. ``zero``: DARTS' ``none``, which contributes nothing to an edge.
    """

    name: str
    build: OpFactory
    relu_first_at: frozenset[int] = frozenset()
    parameter_free_at: frozenset[int] = frozenset()
    pool: bool = False
    zero: bool = False

    def starts_with_relu(self, stride: int) -> bool:
        """Whether the operation begins with a ReLU at ``stride`` (the reference's ReLU-Conv-BN order)."""
        return stride in self.relu_first_at

    def parameter_free(self, stride: int) -> bool:
        """Whether the operation has no learnable parameter at ``stride``."""
        return stride in self.parameter_free_at


_BOTH = frozenset({1, 2})


def _spec(name: str, build: OpFactory, **facts) -> tuple[str, OpSpec]:
    return name, OpSpec(name, build, **facts)


#: The registry: name -> :class:`OpSpec`.
OPS: dict[str, OpSpec] = dict([
    _spec("none", lambda c, stride, affine, pre_relu: Zero(stride), parameter_free_at=_BOTH, zero=True),
    _spec("max_pool_3x3", lambda c, stride, affine, pre_relu: nn.MaxPool2d(3, stride=stride, padding=1),
          parameter_free_at=_BOTH, pool=True),
    _spec("avg_pool_3x3", lambda c, stride, affine, pre_relu: nn.AvgPool2d(3, stride=stride, padding=1,
                                                                            count_include_pad=False),
          parameter_free_at=_BOTH, pool=True),
    _spec("skip_connect", lambda c, stride, affine, pre_relu: (
        nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine=affine, pre_relu=pre_relu)),
          relu_first_at=frozenset({2}), parameter_free_at=frozenset({1})),
    _spec("sep_conv_3x3", lambda c, stride, affine, pre_relu: SepConv(
        c, c, kernel=3, stride=stride, padding=1, affine=affine, pre_relu=pre_relu), relu_first_at=_BOTH),
    _spec("sep_conv_5x5", lambda c, stride, affine, pre_relu: SepConv(
        c, c, kernel=5, stride=stride, padding=2, affine=affine, pre_relu=pre_relu), relu_first_at=_BOTH),
    _spec("dil_conv_3x3", lambda c, stride, affine, pre_relu: DilConv(
        c, c, kernel=3, stride=stride, padding=2, dilation=2, affine=affine, pre_relu=pre_relu), relu_first_at=_BOTH),
    _spec("dil_conv_5x5", lambda c, stride, affine, pre_relu: DilConv(
        c, c, kernel=5, stride=stride, padding=4, dilation=2, affine=affine, pre_relu=pre_relu), relu_first_at=_BOTH),
])


def check_ops(names: Sequence[str]) -> tuple[str, ...]:
    """Validate an operation set: known names, no repeats, at least one."""
    names = tuple(names)
    if not names:
        raise ValueError("the operation set is empty: give at least one operation, e.g. FAIRDARTS_OPS")
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise ValueError(f"unknown operation {unknown[0]!r}; known operations: {', '.join(OPS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"an operation is listed twice in {names}")
    return names


def make_op(name: str, channels: int, stride: int, affine: bool = True, pre_relu: bool = False) -> nn.Module:
    """Build operation ``name``; ``pre_relu=True`` leaves out its leading ReLU (the caller applies it)."""
    if name not in OPS:
        raise ValueError(f"unknown operation {name!r}; known operations: {', '.join(OPS)}")
    spec = OPS[name]
    return spec.build(channels, stride, affine, pre_relu and spec.starts_with_relu(stride))
