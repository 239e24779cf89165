"""Probe for the batched-seeds engine, second route: N seeds' DARTS supernets stacked along the channels
(every convolution grouped per seed, BatchNorm over N x C channels, each seed's own images and alphas), timed
against N separate supernets, at the ``quick`` scale. A speed probe only: the stacked network has the
supernet's shapes and operations (including the shared parameter-free operations) but its own initial
weights, so it checks no equality. The route taken, vmap over stacked parameters, is ``dscd.batched``, measured
by ``benchmarks/bench_batched.py`` and checked against separate runs by ``tests/test_batched.py``.

    OMP_NUM_THREADS=1 python dev/probe_stacked_supernet.py [--seeds 1,2,3,5,8] [--steps 10]

Each iteration is a search iteration's two forward + backward passes, interleaved with the separate runs'.
Run it alone.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F

from dscd.search import search_profile
from dscd.search_spaces import get_space


def conv(n: int, c_in: int, c_out: int, k: int, stride: int = 1, pad: int = 0, dil: int = 1,
         depthwise: bool = False) -> nn.Conv2d:
    groups = n * c_in if depthwise else n
    return nn.Conv2d(n * c_in, n * (c_in if depthwise else c_out), k, stride, pad, dilation=dil, groups=groups,
                     bias=False)


def dil_conv(n, c_in, c_out, k, stride, pad, dil):
    return nn.Sequential(nn.ReLU(), conv(n, c_in, c_in, k, stride, pad, dil, depthwise=True),
                         conv(n, c_in, c_out, 1), nn.BatchNorm2d(n * c_out, affine=False))


def sep_conv(n, c, k, stride, pad):
    return nn.Sequential(dil_conv(n, c, c, k, stride, pad, 1), dil_conv(n, c, c, k, 1, pad, 1))


class FactorizedReduce(nn.Module):
    def __init__(self, n: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.n, self.half = n, c_out // 2
        self.conv_1, self.conv_2 = conv(n, c_in, c_out // 2, 1), conv(n, c_in, c_out // 2, 1)
        self.bn = nn.BatchNorm2d(n * c_out, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        a, b = self.conv_1(x[:, :, ::2, ::2]), self.conv_2(shifted[:, :, ::2, ::2])
        batch, _, h, w = a.shape  # per seed: its conv_1 half, then its conv_2 half
        out = torch.stack([a.view(batch, self.n, self.half, h, w), b.view(batch, self.n, self.half, h, w)], 2)
        return self.bn(out.view(batch, -1, h, w))


def relu_conv_bn(n, c_in, c_out):
    return nn.Sequential(nn.ReLU(), conv(n, c_in, c_out, 1), nn.BatchNorm2d(n * c_out, affine=False))


class Cell(nn.Module):
    def __init__(self, n, nodes, c_pp, c_p, c, reduction, reduction_prev, ops):
        super().__init__()
        self.n, self.c, self.nodes, self.reduction, self.ops = n, c, nodes, reduction, ops
        self.pre0 = FactorizedReduce(n, c_pp, c) if reduction_prev else relu_conv_bn(n, c_pp, c)
        self.pre1 = relu_conv_bn(n, c_p, c)
        self.edges = nn.ModuleList()
        for i in range(nodes):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.edges.append(nn.ModuleDict({op: self.make(op, stride) for op in ops
                                                 if not (op.endswith("pool_3x3") or (op == "skip_connect"
                                                                                     and stride == 1))}))
        self.pools = nn.ModuleList(nn.ModuleDict({
            "max_pool_3x3": nn.Sequential(nn.MaxPool2d(3, 2 if reduction and j < 2 else 1, 1),
                                          nn.BatchNorm2d(n * c, affine=False)),
            "avg_pool_3x3": nn.Sequential(nn.AvgPool2d(3, 2 if reduction and j < 2 else 1, 1,
                                                       count_include_pad=False),
                                          nn.BatchNorm2d(n * c, affine=False))}) for j in range(1 + nodes))

    def make(self, op, stride):
        n, c = self.n, self.c
        return {"sep_conv_3x3": lambda: sep_conv(n, c, 3, stride, 1),
                "sep_conv_5x5": lambda: sep_conv(n, c, 5, stride, 2),
                "dil_conv_3x3": lambda: dil_conv(n, c, c, 3, stride, 2, 2),
                "dil_conv_5x5": lambda: dil_conv(n, c, c, 5, stride, 4, 2),
                "skip_connect": lambda: FactorizedReduce(n, c, c)}[op]()

    def forward(self, s0, s1, weights):  # weights: (N, edges, ops)
        states = [self.pre0(s0), self.pre1(s1)]
        offset = 0
        for i in range(self.nodes):
            node = None
            for j in range(2 + i):
                x = states[j]
                batch, _, h, w = x.shape
                stride = 2 if self.reduction and j < 2 else 1
                outs = []
                for k, op in enumerate(self.ops):
                    if op.endswith("pool_3x3"):
                        y = self.pools[j][op](x)
                    elif op == "skip_connect" and stride == 1:
                        y = x
                    else:
                        y = self.edges[offset + j][op](x)
                    hy, wy = y.shape[-2:]
                    outs.append(y.view(batch, self.n, self.c, hy, wy) * weights[:, offset + j, k].view(1, -1, 1, 1, 1))
                edge = torch.stack(outs).sum(0)
                node = edge if node is None else node + edge
            offset += 2 + i
            states.append(node.view(batch, -1, *node.shape[-2:]))
        hs, ws = states[-1].shape[-2:]
        return torch.cat([s.view(batch, self.n, self.c, hs, ws) for s in states[2:]], 2).view(batch, -1, hs, ws)


class StackedSupernet(nn.Module):
    def __init__(self, n, config):
        super().__init__()
        self.n, c, layers, nodes, ops = n, config.channels, config.layers, config.nodes, config.ops
        self.stem = nn.Sequential(conv(n, 3, 3 * c, 3, pad=1), nn.BatchNorm2d(n * 3 * c))
        c_pp, c_p, cur = 3 * c, 3 * c, c
        reductions = sorted({layers // 3, 2 * layers // 3})
        self.cells = nn.ModuleList()
        prev = False
        for i in range(layers):
            red = i in reductions
            cur = cur * 2 if red else cur
            self.cells.append(Cell(n, nodes, c_pp, c_p, cur, red, prev, ops))
            prev, c_pp, c_p = red, c_p, nodes * cur
        self.classifier = nn.Parameter(torch.randn(n, c_p, 10) * 0.01)
        edges = sum(2 + i for i in range(nodes))
        self.alpha = nn.Parameter(torch.zeros(2, n, edges, len(ops)))

    def forward(self, x):  # x: (N, batch, 3, H, W) -> logits (N, batch, 10)
        n, batch = x.shape[:2]
        w = torch.sigmoid(self.alpha)
        s0 = s1 = self.stem(x.transpose(0, 1).reshape(batch, n * 3, *x.shape[-2:]))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w[1] if cell.reduction else w[0])
        pooled = s1.mean((2, 3)).view(batch, n, -1)
        return torch.einsum("bnc,nck->nbk", pooled, self.classifier)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3,5,8")
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    config = search_profile("quick")
    print(f"threads {torch.get_num_threads()}, batch {config.batch_size}, {config.image_size}x{config.image_size}, "
          f"C = {config.channels}, {config.layers} cells, ops {len(config.ops)}")
    for n in [int(s) for s in args.seeds.split(",")]:
        nets = [get_space("darts").supernet(config.replace(seed=100 + k), 10, 3, torch.Generator().manual_seed(k))
                .train() for k in range(n)]
        stacked = StackedSupernet(n, config).train()
        times = {"separate": 0.0, "stacked": 0.0}
        for step in range(args.steps + 1):
            g = torch.Generator().manual_seed(step)
            x = torch.randn(n, config.batch_size, 3, config.image_size, config.image_size, generator=g)
            y = torch.randint(0, 10, (n, config.batch_size), generator=g)
            for name in (("separate", "stacked") if step % 2 else ("stacked", "separate")):
                start = time.perf_counter()
                for _ in range(2):
                    if name == "separate":
                        for k, net in enumerate(nets):
                            net.zero_grad(set_to_none=True)
                            F.cross_entropy(net(x[k]), y[k]).backward()
                    else:
                        stacked.zero_grad(set_to_none=True)
                        logits = stacked(x)
                        F.cross_entropy(logits.reshape(-1, 10), y.reshape(-1), reduction="none").view(n, -1) \
                            .mean(1).sum().backward()
                if step:  # the first iteration warms up
                    times[name] += time.perf_counter() - start
        print(f"N = {n}: separate {1000 * times['separate'] / args.steps:.0f} ms/iteration, stacked "
              f"{1000 * times['stacked'] / args.steps:.0f} ms: {times['separate'] / times['stacked']:.2f}x "
              "seed-iterations per second")


if __name__ == "__main__":
    main()
