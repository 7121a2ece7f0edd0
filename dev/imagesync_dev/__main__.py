"""`python -m imagesync_dev` is `imagesync-dev`."""

from .cli import main

main()
