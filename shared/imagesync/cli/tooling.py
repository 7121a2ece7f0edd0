"""deploy-steps and emulator: setting up around the functions (the deploy steps serverless.yml cannot declare, the
Tencent Cloud API emulator); and what answers for the development commands that moved to `imagesync-dev`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import err


def deploy_steps(ctx: typer.Context) -> None:
    """The deploy steps serverless.yml cannot declare: async retries, dead letter, EventBridge rules (see
    `imagesync deploy-steps --help` and docs/deploy.md)."""
    from ..deploy_steps import main

    raise typer.Exit(main(list(ctx.args)))


def emulator(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 = any free port)")] = 0,
    world: Annotated[Path | None, typer.Option(help="world file (YAML or JSON); default: the built-in world")] = None,
    time_scale: Annotated[float, typer.Option(help="emulated seconds per real second")] = 600.0,
    seed: Annotated[int, typer.Option(help="seed for copy times and faults")] = 0,
    rate_limits: Annotated[bool, typer.Option(help="enforce the API's per-second limits")] = True,
    deploy: Annotated[Path | None, typer.Option(help="deploy this serverless.yml onto the emulated SCF")] = None,
    layer: Annotated[
        list[str] | None,
        typer.Option(help="layer zip for --deploy: NAME=ZIP (repeat), or one ZIP for the one layer declared"),
    ] = None,
    code_dir: Annotated[Path | None, typer.Option(help="code folder for --deploy (default: inputs.src)")] = None,
) -> None:
    """Serve the Tencent Cloud API emulator; its first stdout line is JSON with endpoint and keys (and, with
    --deploy, each function's Function URL)."""
    from imagesync_emulator.cli import serve

    code = serve(
        host=host,
        port=port,
        world=str(world) if world else None,
        time_scale=time_scale,
        seed=seed,
        rate_limits=rate_limits,
        deploy=deploy,
        layers=layer or [],
        code_dir=code_dir,
    )
    if code:
        raise typer.Exit(code)


def _moved(old: str, new: str) -> None:
    err.print(
        f"[red]error[/red] Command.Moved: `imagesync {old}` is development tooling and moved to "
        f"`imagesync-dev {new}` (dev/, installed by `make venv` in a checkout; not in the wheel)",
        highlight=False,
    )
    raise typer.Exit(2)


def demo() -> None:
    """Moved: `imagesync-dev demo` (development tooling)."""
    _moved("demo", "demo")


def bench() -> None:
    """Moved: `imagesync-dev chaos` (development tooling)."""
    _moved("bench chaos", "chaos")
