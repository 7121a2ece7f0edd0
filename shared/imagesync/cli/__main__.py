"""`python -m imagesync.cli`: the `imagesync` command (what the end-to-end tests run)."""

from . import main

main()
