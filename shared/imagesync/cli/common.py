"""What every command group shares: the two consoles (stdout for results, stderr for errors and progress), the
coded one-line error, and the services a command runs on."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from ..domain.errors import ImageSyncError

console = Console()
err = Console(stderr=True)


def print_error(exc: ImageSyncError) -> None:
    code = getattr(exc, "cloud_code", None) or exc.code  # a CloudError shows Tencent's own code
    err.print(f"[red]error[/red] {escape(code)}: {escape(exc.message)}", highlight=False)


def fail(exc: ImageSyncError) -> None:
    print_error(exc)
    raise typer.Exit(2)


def services() -> Any:
    from ..wiring import services as build

    try:
        svc = build()
        svc.begin_invocation()
    except ImageSyncError as exc:
        fail(exc)
    return svc
