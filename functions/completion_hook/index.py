"""SCF entry of completion_hook (handler: index.main_handler)."""

from imagesync.handlers.completion_hook import main_handler

__all__ = ["main_handler"]
