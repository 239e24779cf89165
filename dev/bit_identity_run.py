"""Bit-identity check of a refactoring, part 1: one smoke search per method and one smoke training into a folder.

Run it once with the old code and once with the new (one torch thread; the same machine), then compare::

    git worktree add /tmp/old HEAD~1
    PYTHONPATH=/tmp/old python dev/bit_identity_run.py /tmp/bit/old
    python dev/bit_identity_run.py /tmp/bit/new
    python dev/bit_identity_compare.py /tmp/bit/old /tmp/bit/new     # exit 1 on any difference
"""
import sys

import torch

from dscd.genotype import load_genotype
from dscd.search import run_search, search_profile
from dscd.train import train_genotype, train_profile

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = sys.argv[1]
    for name, changes in (("adam", {"optimizer": "adam"}), ("dscd", {"optimizer": "dscd"}),
                          ("refresh", {"optimizer": "dscd", "dscd_refresh_best": True})):
        run_search(search_profile("smoke", epochs=4, seed=3, **changes), f"{out}/{name}", progress=False)
    train_genotype(train_profile("smoke", epochs=2, seed=1), load_genotype("DARTS_V2"), f"{out}/train",
                   progress=False)
