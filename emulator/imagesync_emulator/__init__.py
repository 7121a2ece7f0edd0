"""An offline Tencent Cloud API emulator (CVM images, tag, TDMQ CMQ, EventBridge, region) for imagesync tests.

    from imagesync_emulator import Emulator
    with Emulator() as emu:
        ...  # point the official SDK at HttpProfile(protocol="http", endpoint=emu.host_port)

This package never imports ``imagesync``: the emulator stands for the cloud, not for the project.
"""

from .emulator import Emulator
from .errors import ApiError
from .signature import sign_request

__all__ = ["ApiError", "Emulator", "sign_request"]
