"""``python -m dscd`` and ``torchrun --nproc_per_node N -m dscd search|train ...``: the ``dscd`` command."""

import sys

from dscd.cli import main

sys.exit(main())
