"""``python -m ecg_dino`` is the ``ecg-dino`` command."""

import sys

from ecg_dino.cli import main

sys.exit(main())
