"""One smoke search per method and one smoke training into sys.argv[1] (bit-identity check, old vs new code)."""
import sys, torch
torch.set_num_threads(1)
from dscd.search import search_profile, run_search
from dscd.train import train_profile, train_genotype
from dscd.genotype import load_genotype
out = sys.argv[1]
for name, changes in (("adam", {"optimizer": "adam"}), ("dscd", {"optimizer": "dscd"}),
                      ("refresh", {"optimizer": "dscd", "dscd_refresh_best": True})):
    run_search(search_profile("smoke", epochs=4, seed=3, **changes), f"{out}/{name}", progress=False)
train_genotype(train_profile("smoke", epochs=2, seed=1), load_genotype("DARTS_V2"), f"{out}/train", progress=False)
