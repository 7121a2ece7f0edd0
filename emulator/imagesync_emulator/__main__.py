"""Entry point of ``python -m imagesync_emulator``."""

import sys

from .cli import main

sys.exit(main())
