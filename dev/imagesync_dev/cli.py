"""The `imagesync-dev` command (development tooling, never shipped): the demo and the chaos scenario on the emulator.

`make demo` runs `imagesync-dev demo`, `make demo-cloud` runs `imagesync-dev demo --cloud`; docs/chaos.md describes
`imagesync-dev chaos`. The product's command, `imagesync`, has none of these.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
app = typer.Typer(
    help="imagesync's development tooling: the demo and the chaos scenario on the emulator (not shipped).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(help="keep the demo's state in this folder")] = None,
    cloud: Annotated[
        bool,
        typer.Option(
            "--cloud",
            help="deploy dist/ (make package) from serverless.yml onto the emulated SCF and drive only the "
            "deployed functions (make demo-cloud)",
        ),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="--cloud: the state table, recreated empty (default "
            "mysql+pymysql://root@127.0.0.1:3306/imagesync_demo_cloud)"
        ),
    ] = None,
) -> None:
    """Replicate the emulator's demo images through the three real functions and print the outcome."""
    if cloud:
        from .demo_cloud import DEFAULT_DATABASE_URL
        from .demo_cloud import run as run_cloud

        sys.exit(run_cloud(database_url or DEFAULT_DATABASE_URL))
    from .demo import run

    sys.exit(run(keep))


@app.command()
def chaos(
    images: Annotated[int, typer.Option(help="images made by CreateImage, each copied to every region")] = 1000,
    regions: Annotated[str, typer.Option(help="destination regions, comma-separated")] = (
        "ap-shanghai,ap-beijing,ap-chengdu"
    ),
    database_url: Annotated[
        str | None, typer.Option(help="state table URL (default: SQLite in the work directory)")
    ] = None,
    time_scale: Annotated[float, typer.Option(help="emulated seconds per real second")] = 3000.0,
    seed: Annotated[int, typer.Option(help="seeds the faults, the event order, the failpoints")] = 1,
    throttle: Annotated[float, typer.Option(help="share of calls answered RequestLimitExceeded")] = 0.10,
    internal_error: Annotated[float, typer.Option(help="share of calls answered InternalError")] = 0.02,
    drop: Annotated[float, typer.Option(help="share of calls whose connection drops (half after acting)")] = 0.01,
    copy_failure: Annotated[float, typer.Option(help="share of copies ending CREATEFAILED")] = 0.05,
    failpoints: Annotated[str, typer.Option(help="IMAGESYNC_FAILPOINTS for the workers")] = (
        "after_sync_images=0.05,after_outbox_publish=0.01,inside_hook=0.01"
    ),
    kill_every: Annotated[float, typer.Option(help="SIGKILL a random worker every N real seconds; 0 = never")] = 5.0,
    sweepers: Annotated[int, typer.Option(help="overlapping status_sweep processes")] = 3,
    max_seconds: Annotated[float, typer.Option(help="give up after this many real seconds")] = 900.0,
    workdir: Annotated[Path | None, typer.Option(help="keep logs, queues and the report here")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """The chaos scenario (docs/chaos.md): faults, duplicated out-of-order events, crashes; exit 1 unless every
    copy ended, none twice, and every replica end had exactly one effect per hook."""
    from .chaos import ChaosConfig, render
    from .chaos import run as run_chaos

    cfg = ChaosConfig(
        images=images,
        regions=[r.strip() for r in regions.split(",") if r.strip()],
        database_url=database_url,
        time_scale=time_scale,
        seed=seed,
        throttle=throttle,
        internal_error=internal_error,
        drop=drop,
        copy_failure=copy_failure,
        failpoints=failpoints,
        kill_every=kill_every,
        sweepers=sweepers,
        max_seconds=max_seconds,
        workdir=workdir,
    )
    report = run_chaos(cfg)
    console.print_json(json.dumps(report)) if as_json else print(render(report))
    if not report["ok"]:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
