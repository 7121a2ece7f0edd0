"""``python -m imagesync_emulator``: serve the emulator until SIGINT/SIGTERM.

When ready, the FIRST line on stdout is one JSON object: {"endpoint", "host_port", "secret_id", "secret_key",
"admin", "accounts", "pid"}, plus, with ``--deploy``, "functions" (function key -> deployed name) and
"function_urls" (function key -> the local URL of its http trigger) and "ignored_inputs" (serverless.yml inputs
read but not emulated); it is flushed at once so a parent process can
read it. A deploy the emulated SCF refuses prints "CODE: message" on stderr and exits 2.
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
from .scf import DeployError


def parse_layers(specs: Sequence[str]) -> dict[str, str] | str | None:
    """``--layer`` values: one bare ZIP (for the one layer name serverless.yml declares), or NAME=ZIP each."""
    if not specs:
        return None
    if len(specs) == 1 and "=" not in specs[0]:
        return specs[0]
    if not all("=" in s for s in specs):
        raise ValueError("with several --layer options, give each as NAME=ZIP")
    return dict(s.split("=", 1) for s in specs)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    world: str | Path | None = None,
    time_scale: float = 600.0,
    seed: int = 0,
    rate_limits: bool = True,
    deploy: str | Path | None = None,
    layers: Sequence[str] = (),
    code_dir: str | Path | None = None,
) -> int:
    """Run an emulator in the foreground; returns 0 after SIGINT or SIGTERM (signals only in the main thread),
    2 when the deploy of ``deploy`` (a serverless.yml) is refused."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    with Emulator(world=world, time_scale=time_scale, seed=seed, rate_limits=rate_limits, host=host, port=port) as emu:
        deployment = None
        if deploy is not None:
            try:
                deployment = emu.deploy(deploy, layers=parse_layers(layers), code_dir=code_dir)
            except (DeployError, ValueError, OSError) as exc:
                code = exc.code if isinstance(exc, DeployError) else "Deploy.Invalid"
                sys.stderr.write(f"{code}: {getattr(exc, 'message', str(exc))}\n")
                return 2
        ready = {
            "endpoint": emu.endpoint,
            "host_port": emu.host_port,
            "secret_id": emu.secret_id,
            "secret_key": emu.secret_key,
            "admin": emu.admin_url,
            "accounts": emu.admin.accounts(),
            "pid": os.getpid(),
        }
        if deployment is not None:
            ready.update(
                functions=deployment.functions, function_urls=deployment.urls, ignored_inputs=deployment.ignored
            )
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m imagesync_emulator", description="An offline emulator of the Tencent Cloud API for imagesync."
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = any free port")
    ap.add_argument("--world", default=None, help="a world file (YAML or JSON); default: the built-in world")
    ap.add_argument("--time-scale", type=float, default=600.0, help="emulated seconds per real second")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-rate-limits", action="store_true")
    ap.add_argument(
        "--deploy",
        default=None,
        metavar="SERVERLESS_YML",
        help="deploy this serverless.yml (component multi-scf) onto the emulated SCF; ${env:NAME} "
        "is read from this environment",
    )
    ap.add_argument(
        "--layer",
        action="append",
        default=[],
        metavar="[NAME=]ZIP",
        help="a layer zip for --deploy: NAME=ZIP per layer name, or one ZIP for the one name declared",
    )
    ap.add_argument("--code-dir", default=None, help="the code folder for --deploy (default: inputs.src)")
    args = ap.parse_args(argv)
    return serve(
        args.host,
        args.port,
        args.world,
        args.time_scale,
        args.seed,
        not args.no_rate_limits,
        args.deploy,
        args.layer,
        args.code_dir,
    )
