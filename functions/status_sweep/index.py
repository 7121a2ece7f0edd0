"""SCF entry of status_sweep (handler: index.main_handler)."""

from imagesync.platform import coldstart

coldstart.pause()  # the cold start's imports run without the cyclic collector (the handler resumes it)

from imagesync.handlers.status_sweep import main_handler  # noqa: E402

__all__ = ["main_handler"]
