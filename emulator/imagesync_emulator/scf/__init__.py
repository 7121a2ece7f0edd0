"""The emulated Serverless Cloud Function: deploy a serverless.yml, run its functions in warm worker processes.

Generic: nothing here knows the project the functions belong to. See docs/emulator.md ("Emulated SCF").
"""

from .deploy import DeployError, Deployment
from .runtime import ScfRuntime

__all__ = ["DeployError", "Deployment", "ScfRuntime"]
