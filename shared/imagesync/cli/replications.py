"""copy, status (--watch) and retry: start copies, show them, follow them live, start new attempts of the failed
ones; and the table they are shown in."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timezone
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ..domain.accounts import AccountDestination
from ..domain.errors import ImageSyncError, ReplicationNotFound
from ..domain.models import CopyRequest, Origin, Replication
from ..handlers.api.models import ReplicationOut, replica_eta
from .common import console, consumable, err, fail, services

if TYPE_CHECKING:
    from ..ports import HookRun
    from ..wiring import Services


def copy(
    images: Annotated[list[str], typer.Argument(help="source image ids (img-xxxxxxxx)")],
    source: Annotated[str, typer.Option("--from", help="source region, e.g. ap-guangzhou")],
    to: Annotated[list[str], typer.Option("--to", help="destination region (repeat for several)")] = [],  # noqa: B006
    to_account: Annotated[
        list[str],
        typer.Option(
            "--to-account",
            help="another account: UIN:ROLE:REGION[,REGION...] (the role imagesync assumes there; repeatable)",
        ),
    ] = [],  # noqa: B006
    name: Annotated[str | None, typer.Option(help="name of the copies (default: the source's name)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and ask SyncImages with DryRun")] = False,
    wait: Annotated[
        bool, typer.Option(help="sweep (and, with the local queue, run the hooks) until every copy ends")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the replication as JSON")] = False,
) -> None:
    """Validate and start copies of IMAGES from --from into every --to region and --to-account."""
    try:
        svc = services()
        request = CopyRequest(
            source_region=source,
            image_ids=images,
            destination_regions=to,
            name=name,
            dry_run=dry_run,
            origin=Origin.CLI,
            requested_by="cli",
            accounts=[_account_destination(a) for a in to_account],
        )
        result = svc.request_copies()(request)
    except ImageSyncError as exc:
        fail(exc)
    except ValueError as exc:  # pydantic's shape errors (a malformed id or region)
        err.print(f"[red]error[/red] InvalidRequest: {exc}")
        raise typer.Exit(2) from exc
    replication = result.replication
    if dry_run:  # on stderr: with --json, stdout is the JSON document alone
        err.print(f"dry run passed: {len(replication.replicas)} copies would start (nothing recorded)")
    elif wait:
        replication = _wait(svc, replication.id)
    if as_json:
        print(json.dumps(ReplicationOut.of(replication).document(), indent=2))
    else:
        _print_replication(replication)
    if wait and replication.state != "SUCCEEDED":
        raise typer.Exit(1)


def _wait(svc: Services, replication_id: str, interval: float = 2.0) -> Replication:
    """Sweep (and deliver the local queue) until every copy of the replication has ended, shown live on a terminal
    (imagesync.watch; plain lines when stdout is not one)."""
    from ..watch import watch

    sweep = svc.sweep()
    # On one machine the local queue has no trigger: deliver its completion messages too, so the hooks run.
    deliver_hooks = _local_delivery(svc)

    def step() -> None:
        sweep()
        deliver_hooks()

    [replication] = watch(console, lambda: [_known(svc, replication_id)], interval=interval, step=step)
    sweep.publish_outbox()
    deliver_hooks()
    return _known(svc, replication_id)


def _known(svc: Services, replication_id: str) -> Replication:
    """A replication the command has seen (it started it, or listed it); one gone since is Replication.NotFound."""
    replication = svc.store.get_replication(replication_id)
    if replication is None:
        raise ReplicationNotFound(f"no replication {replication_id}")
    return replication


def _local_delivery(svc: Services) -> Callable[[], object]:
    """A callable delivering the local queue to completion_hook's handler (a no-op for the cloud links: SCF
    invokes it)."""
    queue = svc.queue
    if not consumable(queue):
        return lambda: None
    from ..handlers.completion_hook import main_handler
    from ..local import deliver

    on_dead = svc.give_up().dead_lettered
    return lambda: deliver(queue, main_handler, on_dead=on_dead)


def _hooks_cell(runs: list[HookRun]) -> str:
    """One line per hook: "tag done", "webhook pending Webhook.BadStatus (2 tries)"."""
    lines = []
    for run in runs:
        line = f"{run.hook_key} {run.status}"
        if run.error_code and run.status != "done":
            line += f" {run.error_code} ({run.attempts} tries)"
        lines.append(line)
    return "\n".join(lines) or "-"


def _account_destination(value: str) -> AccountDestination:
    """--to-account UIN:ROLE:REGION[,REGION...]"""
    parts = value.split(":")
    if len(parts) != 3:
        raise ValueError(f"--to-account {value!r}: expected UIN:ROLE:REGION[,REGION...]")
    uin, role, regions = parts
    return AccountDestination(account=uin, role=role, regions=[r for r in regions.split(",") if r])


def _print_replication(replication: Replication, hook_runs: dict[str, list[HookRun]] | None = None) -> None:
    from ..domain.attempts import attempt_numbers, successors

    title = f"{replication.id}  {replication.state}  ({replication.source_region})"
    if replication.requested_destinations is not None:
        title += f"  to {' '.join(replication.requested_destinations)}: {' '.join(replication.destination_regions)}"
    table = Table(title=title)
    for column in ("replica", "image", "region", "try", "state", "copy", "progress", "eta", "hooks", "error"):
        table.add_column(column)
    numbers, after = attempt_numbers(replication.replicas), successors(replication.replicas)
    for r in replication.replicas:
        eta = replica_eta(r)
        attempt = str(numbers[r.id]) + (f" (retried by {after[r.id].id})" if r.id in after else "")
        table.add_row(
            r.id,
            r.source_image_id,
            r.where,
            attempt,
            r.state.value,
            r.destination_image_id or "-",
            f"{r.sync_percent}%" if r.sync_percent is not None else "-",
            eta.astimezone(timezone.utc).strftime("%H:%M:%SZ") if eta else "-",
            _hooks_cell((hook_runs or {}).get(r.id, [])),
            f"{r.error_code}: {r.error_message}" if r.error_code else "",
        )
    console.print(table)


def status(
    replication_id: Annotated[str | None, typer.Argument(help="a replication id (default: the newest 20)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="follow the replication (default: every one in flight) live until everything shown has ended; "
            "plain lines per change when stdout is not a terminal",
        ),
    ] = False,
    interval: Annotated[float, typer.Option(min=0.05, help="--watch: seconds between looks")] = 2.0,
) -> None:
    """Show one replication with its replicas, or the newest replications."""
    svc = services()
    if watch:
        _watch(svc, replication_id, interval)
        return
    if replication_id:
        replication = svc.store.get_replication(replication_id)
        if replication is None:
            err.print(f"[red]error[/red] Replication.NotFound: no replication {replication_id}")
            raise typer.Exit(2)
        runs = svc.store.hook_runs([r.id for r in replication.replicas])
        cleanup = [a["detail"] for a in svc.store.audit_trail(replication.id) if a["event"] == "cleanup"]
        if as_json:
            print(json.dumps(ReplicationOut.of(replication, runs, cleanup=cleanup).document(), indent=2))
        else:
            _print_replication(replication, runs)
            for c in cleanup:  # clean up with the source: each decision on a copy
                console.print(
                    f"cleanup ({c.get('trigger')}{', dry run' if c.get('dry_run') else ''}): "
                    f"{c.get('region')} {c.get('image_id')} {c.get('decision')} {c.get('code')}"
                )
        return
    page, _ = svc.store.list_replications(limit=20)
    if as_json:
        print(json.dumps([ReplicationOut.of(r).document() for r in page], indent=2))
        return
    table = Table(title="replications (newest first)")
    for column in ("id", "state", "from", "images", "to", "created"):
        table.add_column(column)
    for r in page:
        table.add_row(
            r.id,
            r.state,
            r.source_region,
            " ".join(r.image_ids),
            " ".join([*r.destination_regions, *(f"{a.account}/{','.join(a.regions)}" for a in r.accounts)]),
            r.created_at.isoformat(timespec="seconds"),
        )
    console.print(table)


def _watch(svc: Services, replication_id: str | None, interval: float) -> None:
    """status --watch: reads the state table only (the sweep advances the copies: the timer, or `imagesync sweep`)."""
    from ..watch import watch

    if replication_id:
        if svc.store.get_replication(replication_id) is None:
            err.print(f"[red]error[/red] Replication.NotFound: no replication {replication_id}")
            raise typer.Exit(2)
        ids = [replication_id]
    else:
        ids = [r.id for r in svc.store.list_replications(limit=100)[0] if not all(x.terminal for x in r.replicas)]
        if not ids:
            err.print("nothing in flight")
            return
    watch(console, lambda: [_known(svc, i) for i in ids], interval=interval)


def retry(
    replication_id: Annotated[str, typer.Argument(help="the replication whose failed copies to retry")],
    region: Annotated[
        list[str] | None, typer.Option("--region", help="retry only the copies into this region (repeat)")
    ] = None,
    replica: Annotated[list[str] | None, typer.Option("--replica", help="retry only this copy (repeat)")] = None,
    wait: Annotated[
        bool, typer.Option(help="sweep (and, with the local queue, run the hooks) until every copy ends")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the answer of POST /replications/{id}/retry")] = False,
) -> None:
    """Start new attempts for the copies of REPLICATION_ID that ended FAILED or TIMED_OUT (or only those named).

    A SUCCEEDED copy is never touched (naming one is refused: Retry.AlreadySucceeded); the earlier attempts stay
    in `imagesync status`. Repeating it while the retries run starts nothing new and shows them."""
    from ..handlers.api.models import RetryOut

    svc = services()
    try:
        result = svc.retry_failed()(
            replication_id, regions=region or [], replica_ids=replica or [], requested_by="cli", origin="cli"
        )
    except ImageSyncError as exc:
        fail(exc)
    replication = result.replication
    if result.started:
        err.print(f"started {len(result.started)} new attempt(s): {' '.join(r.id for r in result.started)}")
    if result.running:
        err.print(f"already running: {' '.join(r.id for r in result.running)}")
    if wait:
        replication = _wait(svc, replication.id)
    if as_json:
        print(json.dumps(RetryOut.of(replication, result.started, result.running).document(), indent=2))
    else:
        _print_replication(replication)
    if wait and replication.state != "SUCCEEDED":
        raise typer.Exit(1)
