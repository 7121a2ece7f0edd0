"""What every command group shares: the two consoles (stdout for results, stderr for errors and progress), the
coded one-line error, and the services a command runs on."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn, TypeGuard

import typer
from rich.console import Console
from rich.markup import escape

from ..domain.errors import ImageSyncError

if TYPE_CHECKING:
    from ..ports import ConsumableQueue, Queue
    from ..wiring import Services

console = Console()
err = Console(stderr=True)


def print_error(exc: ImageSyncError) -> None:
    code = getattr(exc, "cloud_code", None) or exc.code  # a CloudError shows Tencent's own code
    err.print(f"[red]error[/red] {escape(code)}: {escape(exc.message)}", highlight=False)


def fail(exc: ImageSyncError) -> NoReturn:
    print_error(exc)
    raise typer.Exit(2)


def services() -> Services:
    from ..wiring import services as build

    try:
        svc = build()
        svc.begin_invocation()
    except ImageSyncError as exc:
        fail(exc)
    return svc


def consumable(queue: Queue) -> TypeGuard[ConsumableQueue]:
    """Whether the completion link is the local queue, which this machine delivers; the cloud links (scf-async,
    eventbridge) have no consumer side: SCF invokes completion_hook itself."""
    return hasattr(queue, "receive")
