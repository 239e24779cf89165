"""Deprecated: this module is now :mod:`dscd.eval_network`; ``dscd.network`` goes in the next release."""

import warnings

from dscd.eval_network import *  # noqa: F403
from dscd.eval_network import __all__  # noqa: F401

warnings.warn("dscd.network is now dscd.eval_network: import from there (the old name goes in the next release)",
              DeprecationWarning, stacklevel=2)
