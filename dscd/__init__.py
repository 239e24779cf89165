"""dscd: FairDARTS with doubly stochastic coordinate descent (DSCD) for the architecture weights.

The optimiser is importable on its own::

    from dscd import DSCD, beta_params
"""

from dscd.optim import DSCD, PHI_MAX, DSCDEngine, beta_params, phi_schedule, propose

__version__ = "0.1.0"

__all__ = ["DSCD", "DSCDEngine", "PHI_MAX", "beta_params", "phi_schedule", "propose", "__version__"]
