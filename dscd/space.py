"""Deprecated: this module is now :mod:`dscd.search_network`; ``dscd.space`` goes in the next release."""

import warnings

from dscd.search_network import *  # noqa: F403
from dscd.search_network import __all__  # noqa: F401

warnings.warn("dscd.space is now dscd.search_network: import from there (the old name goes in the next release)",
              DeprecationWarning, stacklevel=2)
