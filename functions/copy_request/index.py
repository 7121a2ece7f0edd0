"""SCF entry of copy_request (handler: index.main_handler)."""

from imagesync.handlers.copy_request import main_handler

__all__ = ["main_handler"]
