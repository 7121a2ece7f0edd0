"""``python -m imagesync_emulator``: serve the emulator until SIGINT/SIGTERM.

When ready, the FIRST line on stdout is one JSON object: {"endpoint", "host_port", "secret_id", "secret_key",
"admin", "accounts", "pid"}; it is flushed at once so a parent process can read it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .emulator import Emulator


def serve(host: str = "127.0.0.1", port: int = 0, world: str | Path | None = None, time_scale: float = 600.0,
          seed: int = 0, rate_limits: bool = True) -> int:
    """Run an emulator in the foreground; returns 0 after SIGINT or SIGTERM (signals only in the main thread)."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    with Emulator(world=world, time_scale=time_scale, seed=seed, rate_limits=rate_limits, host=host,
                  port=port) as emu:
        ready = {
            "endpoint": emu.endpoint,
            "host_port": emu.host_port,
            "secret_id": emu.secret_id,
            "secret_key": emu.secret_key,
            "admin": emu.admin_url,
            "accounts": emu.admin.accounts(),
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m imagesync_emulator",
                                 description="An offline emulator of the Tencent Cloud API for imagesync.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--world", default=None, help="a world file (YAML or JSON); default: the built-in world")
    ap.add_argument("--time-scale", type=float, default=600.0, help="emulated seconds per real second")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-rate-limits", action="store_true")
    args = ap.parse_args(argv)
    return serve(args.host, args.port, args.world, args.time_scale, args.seed, not args.no_rate_limits)
