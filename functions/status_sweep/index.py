"""SCF entry of status_sweep (handler: index.main_handler)."""

from imagesync.handlers.status_sweep import main_handler

__all__ = ["main_handler"]
