"""``python -m cmdvideo.cli`` (what ``accelerate launch -m`` and ``torchrun -m`` run)."""

import sys

from . import main

sys.exit(main())
