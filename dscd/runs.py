"""Deprecated: this module is now :mod:`dscd.run_common`; ``dscd.runs`` goes in the next release."""

import warnings

from dscd.run_common import *  # noqa: F403
from dscd.run_common import __all__  # noqa: F401

warnings.warn("dscd.runs is now dscd.run_common: import from there (the old name goes in the next release)",
              DeprecationWarning, stacklevel=2)
