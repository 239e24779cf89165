"""Probe for the batched-seeds engine (issue: many seeds in one process): is ``torch.func.vmap`` over the
real search supernet, N seeds' parameters and buffers stacked, an exact and faster way to run N seeds?

    OMP_NUM_THREADS=1 python dev/probe_batched_search.py [--space darts] [--seeds 1,2,3,5,8] [--steps 20]

For each N it builds N supernets of the ``quick`` profile (seeds 100..: calibration seeds), stacks their
parameters and buffers (``torch.func.stack_module_state``), and times one search iteration's two forward +
backward passes (alpha step, weight step) on N separate batches, against the N supernets run one after the
other, interleaved. It also checks that the stacked gradients equal the separate ones (max abs difference)
and that BatchNorm's running statistics advance per seed. A probe, not a benchmark: run it alone.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from dscd.search import search_profile
from dscd.search_network import SearchCell
from dscd.search_spaces import get_space


def _sync_one_by_one(self) -> None:
    """The shared pools' statistics copied one buffer at a time: vmap has no rule for ``_foreach_copy_``."""
    with torch.no_grad():
        for first, other in self._bn_siblings:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                getattr(other, name).copy_(getattr(first, name))


SearchCell._sync_shared_statistics = _sync_one_by_one  # the probe's only change to the supernet


def build(space: str, seed: int) -> nn.Module:
    config = search_profile("quick", space=space, seed=seed)
    net = get_space(space).supernet(config, 10, 3, torch.Generator().manual_seed(seed))
    return net.train()


def batches(config, n: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 * step + n)
    x = torch.randn(n, config.batch_size, 3, config.image_size, config.image_size, generator=g)
    y = torch.randint(0, 10, (n, config.batch_size), generator=g)
    return x, y


def separate(nets: list[nn.Module], x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    grads = []
    for k, net in enumerate(nets):
        net.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x[k]), y[k])
        loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters() if p.grad is not None]))
    return grads


def stacked(base: nn.Module, params: dict, buffers: dict, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    for p in params.values():
        p.grad = None

    def one(p, b, xb, yb):
        return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    losses = vmap(one, in_dims=(0, 0, 0, 0), randomness="different")(params, buffers, x, y)
    losses.sum().backward()
    n = x.shape[0]
    return [torch.cat([p.grad[k].reshape(-1) for p in params.values() if p.grad is not None]) for k in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="darts")
    parser.add_argument("--seeds", default="1,2,3,5,8")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    config = search_profile("quick", space=args.space)
    print(f"space {args.space}, threads {torch.get_num_threads()}, batch {config.batch_size}, "
          f"{config.image_size}x{config.image_size}, C = {config.channels}, {config.layers} cells")
    for n in [int(s) for s in args.seeds.split(",")]:
        nets = [build(args.space, 100 + k) for k in range(n)]
        base = copy.deepcopy(nets[0]).to("meta")
        params, buffers = stack_module_state([copy.deepcopy(net) for net in nets])
        params = {k: v.detach().requires_grad_() for k, v in params.items()}
        x, y = batches(config, n, 0)
        reference = separate(nets, x, y)
        got = stacked(base, params, buffers, x, y)
        diff = max(float((a - b).abs().max() / a.abs().max()) for a, b in zip(reference, got, strict=True))
        bn = [k for k in buffers if k.endswith("running_mean")][0]
        own = [dict(net.named_buffers())[bn] for net in nets]
        bn_ok = all(torch.allclose(buffers[bn][k], own[k], atol=1e-6) for k in range(n))
        times = {"separate": 0.0, "stacked": 0.0}
        for step in range(1, args.steps + 1):
            x, y = batches(config, n, step)
            for name in (("separate", "stacked") if step % 2 else ("stacked", "separate")):  # interleaved
                start = time.perf_counter()
                for _ in range(2):  # the alpha step's and the weight step's passes
                    separate(nets, x, y) if name == "separate" else stacked(base, params, buffers, x, y)
                times[name] += time.perf_counter() - start
        ratio = times["separate"] / times["stacked"]
        print(f"N = {n}: separate {1000 * times['separate'] / args.steps:.0f} ms/iteration, stacked "
              f"{1000 * times['stacked'] / args.steps:.0f} ms: {ratio:.2f}x seed-iterations per second; "
              f"max |grad difference| / max |grad| {diff:.2e}; BatchNorm statistics per seed: {bn_ok}")


if __name__ == "__main__":
    main()
