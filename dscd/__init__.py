"""dscd: FairDARTS with doubly stochastic coordinate descent (DSCD) for the architecture weights.

The optimiser is importable on its own::

    from dscd import DSCD, beta_params

Trained networks and genotypes by name::

    from dscd import load_genotype, load_model
    net = load_model("runs/train-quick-DARTS_V2")     # eval mode, forward returns logits
    darts_v2 = load_genotype("DARTS_V2")              # shipped published genotypes
"""

import logging

from dscd.optim import DSCD, PHI_MAX, DSCDEngine, beta_params, phi_schedule, propose
from dscd.version import __version__

logging.getLogger("dscd").addHandler(logging.NullHandler())  # a library's messages show where its user asks


def __getattr__(name: str):  # the network side is imported on first use: `import dscd` stays light
    if name == "load_model":
        from dscd.model_files import load_model

        return load_model
    if name == "load_genotype":
        from dscd.genotype import load_genotype

        return load_genotype
    raise AttributeError(f"module 'dscd' has no attribute {name!r}")


__all__ = ["DSCD", "DSCDEngine", "PHI_MAX", "beta_params", "load_genotype", "load_model", "phi_schedule", "propose",
           "__version__"]
