"""sweep, deliver, invoke and serve: the three functions' work run on one machine (the sweep once, the local
queue's completion messages, a handler on an event file, copy_request's HTTP API and status page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import consumable, err, services

FUNCTIONS = ("copy_request", "status_sweep", "completion_hook")


def sweep(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Run status_sweep once: advance every due copy, then publish completion messages."""
    report = services().sweep()().as_dict()
    print(json.dumps(report, indent=None if as_json else 2))


def deliver(
    max_messages: Annotated[int, typer.Option(help="deliver at most this many")] = 100,
    timeout: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="seconds each delivery may run (its deadline, as completion_hook's SCF timeout) before the "
            "message is delivered again",
        ),
    ] = 60.0,
) -> None:
    """Deliver the local queue's completion messages to completion_hook (what SCF's async invocation does).

    A message the queue gives up on (dead-lettered) shows as failed hooks (Hook.DeadLettered) on its replica end.
    """
    from ..handlers.completion_hook import main_handler
    from ..local import deliver as run

    svc = services()
    queue = svc.queue
    if not consumable(queue):  # an AttributeError traceback before
        err.print(
            f"[red]error[/red] Queue.NotLocal: IMAGESYNC_QUEUE={svc.settings.queue} has no messages to deliver here: "
            "SCF invokes completion_hook itself (deliver serves the local queue)",
            highlight=False,
        )
        raise typer.Exit(2)
    counts = run(
        queue,
        main_handler,
        max_messages=max_messages,
        visibility_timeout=timeout,
        on_dead=svc.give_up().dead_lettered,
    )
    print(json.dumps(counts))


def invoke(
    function: Annotated[str, typer.Argument(help="copy_request | status_sweep | completion_hook")],
    event: Annotated[Path, typer.Option("--event", exists=True, dir_okay=False, help="event JSON file")],
    context: Annotated[Path | None, typer.Option(help="SCF context JSON file (optional)")] = None,
) -> None:
    """Run FUNCTION's real handler on an event file; print its return value as JSON on stdout."""
    if function not in FUNCTIONS:
        err.print(f"[red]error[/red] unknown function {function!r}: one of {', '.join(FUNCTIONS)}")
        raise typer.Exit(2)
    import importlib

    from ..domain.safeparse import Unparseable, loads_json

    handler = importlib.import_module(f"imagesync.handlers.{function}").main_handler
    loaded: dict[str, object] = {}
    for name, file in (("event", event), ("context", context)):
        if file is None:
            continue
        try:  # bounded like every trigger's text; 6 MB is SCF's limit for a synchronous event
            loaded[name] = loads_json(file.read_bytes(), max_bytes=6 * 1024 * 1024)
        except (Unparseable, OSError) as exc:
            err.print(f"[red]error[/red] Event.Invalid: {file}: {getattr(exc, 'reason', None) or exc}")
            raise typer.Exit(2) from exc
    ctx = loaded.get("context", {"function_name": function, "time_limit_in_ms": 60000})
    result = handler(loaded["event"], ctx)
    print(json.dumps(result, indent=2, default=str))


def serve(
    database_url: Annotated[
        str | None, typer.Option(help="the state table to show (default: IMAGESYNC_DATABASE_URL)")
    ] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 = any free port)")] = 8080,
) -> None:
    """Serve copy_request's real handler locally: the status page at / (log in with any user name and
    IMAGESYNC_API_TOKEN as the password) and the HTTP API. Ctrl-C stops it."""
    import os

    from ..serve import FunctionUrlServer

    if database_url:
        os.environ["IMAGESYNC_DATABASE_URL"] = database_url
    server = FunctionUrlServer(host=host, port=port)
    err.print(f"status page: {server.url}  (Ctrl-C stops)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
