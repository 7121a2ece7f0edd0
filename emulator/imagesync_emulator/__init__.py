"""An offline Tencent Cloud API emulator (CVM images, tag, TDMQ CMQ, EventBridge, region, and an emulated SCF that
deploys a serverless.yml and runs its functions) for imagesync tests.

    from imagesync_emulator import Emulator
    with Emulator() as emu:
        ...  # point the official SDK at HttpProfile(protocol="http", endpoint=emu.host_port)

This package never imports ``imagesync``: the emulator stands for the cloud, not for the project.
"""

from .emulator import Emulator
from .errors import ApiError
from .scf import DeployError, Deployment
from .signature import sign_request

__all__ = ["ApiError", "DeployError", "Deployment", "Emulator", "sign_request"]
