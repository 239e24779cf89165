"""Deprecated: this module is now :mod:`dscd.model_files`; ``dscd.models`` goes in the next release."""

import warnings

from dscd.model_files import *  # noqa: F403
from dscd.model_files import __all__  # noqa: F401

warnings.warn("dscd.models is now dscd.model_files: import from there (the old name goes in the next release)",
              DeprecationWarning, stacklevel=2)
