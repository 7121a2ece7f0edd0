"""The `imagesync` command line: the same core as the SCF functions, on one machine (SQLite state, local queue).

Given real credentials and no IMAGESYNC_TENCENT_ENDPOINT, the same commands drive the real Tencent Cloud. Keys are
looked for only when a command calls the cloud (status, db upgrade and rules check never do), along the official
SDK's chain: the environment, ~/.tencentcloud/credentials, tccli's ~/.tccli/default.credential, the CVM instance
role (imagesync.adapters.credentials.CredentialChain).

Over 400 lines on purpose, for now: every command is a thin parse-call-print over a use case or a handler (the
logic lives in app/, handlers/ and deploy_steps.py), and the file is the one list of the command's surface that
README's command table mirrors. Several changes add commands to it at once (issues 13 and 14); once they have
landed, it splits into a cli/ package by command group (db, rules, the replication commands).
"""

from __future__ import annotations

import json
import sys
from datetime import timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .domain.accounts import AccountDestination
from .domain.errors import ImageSyncError
from .domain.models import CopyRequest, Origin, Replication
from .handlers.api.models import ReplicationOut, replica_eta


class _App(typer.Typer):
    """Typer, plus: an ImageSyncError a command lets escape (missing keys found by the first cloud call, say) is a
    coded one-line error and exit 2, never a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except ImageSyncError as exc:
            _print_error(exc)
            sys.exit(2)


app = _App(
    help="Copy Tencent Cloud CVM custom images across regions, track every copy to the end, run hooks.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="The state table's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
rules_app = typer.Typer(help="Replication rules (IMAGESYNC_RULES_FILE / IMAGESYNC_RULES_JSON).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
console = Console()
err = Console(stderr=True)

FUNCTIONS = ("copy_request", "status_sweep", "completion_hook")


def _print_error(exc: ImageSyncError) -> None:
    code = getattr(exc, "cloud_code", None) or exc.code  # a CloudError shows Tencent's own code
    err.print(f"[red]error[/red] {escape(code)}: {escape(exc.message)}", highlight=False)


def _fail(exc: ImageSyncError) -> None:
    _print_error(exc)
    raise typer.Exit(2)


def _services() -> Any:
    from .wiring import services

    try:
        svc = services()
        svc.begin_invocation()
    except ImageSyncError as exc:
        _fail(exc)
    return svc


@app.command()
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
        svc = _services()
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
        _fail(exc)
        return
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


def _wait(svc: Any, replication_id: str, interval: float = 2.0) -> Replication:
    """Sweep (and deliver the local queue) until every copy of the replication has ended, shown live on a terminal
    (imagesync.watch; plain lines when stdout is not one)."""
    from .watch import watch

    sweep = svc.sweep()
    # On one machine the local queue has no trigger: deliver its completion messages too, so the hooks run.
    deliver_hooks = _local_delivery(svc)

    def step() -> None:
        sweep()
        deliver_hooks()

    [replication] = watch(console, lambda: [svc.store.get_replication(replication_id)], interval=interval, step=step)
    sweep.publish_outbox()
    deliver_hooks()
    return svc.store.get_replication(replication_id)


def _local_delivery(svc: Any) -> Any:
    """A callable delivering the local queue to completion_hook's handler (a no-op for the cloud links: SCF
    invokes it)."""
    if not hasattr(svc.queue, "receive"):
        return lambda: None
    from .handlers.completion_hook import main_handler
    from .local import deliver

    on_dead = svc.give_up().dead_lettered
    return lambda: deliver(svc.queue, main_handler, on_dead=on_dead)


def _hooks_cell(runs: list[Any]) -> str:
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


def _print_replication(replication: Replication, hook_runs: dict[str, list[Any]] | None = None) -> None:
    from .domain.attempts import attempt_numbers, successors

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


@app.command()
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
    svc = _services()
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


def _watch(svc: Any, replication_id: str | None, interval: float) -> None:
    """status --watch: reads the state table only (the sweep advances the copies: the timer, or `imagesync sweep`)."""
    from .watch import watch

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
    watch(console, lambda: [svc.store.get_replication(i) for i in ids], interval=interval)


@app.command()
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
    from .handlers.api.models import RetryOut

    svc = _services()
    try:
        result = svc.retry_failed()(
            replication_id, regions=region or [], replica_ids=replica or [], requested_by="cli", origin="cli"
        )
    except ImageSyncError as exc:
        _fail(exc)
        return
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


@app.command()
def sweep(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Run status_sweep once: advance every due copy, then publish completion messages."""
    report = _services().sweep()().as_dict()
    print(json.dumps(report, indent=None if as_json else 2))


@app.command()
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
    from .handlers.completion_hook import main_handler
    from .local import deliver as run

    svc = _services()
    counts = run(
        svc.queue,
        main_handler,
        max_messages=max_messages,
        visibility_timeout=timeout,
        on_dead=svc.give_up().dead_lettered,
    )
    print(json.dumps(counts))


@app.command(
    "deploy-steps",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def deploy_steps(ctx: typer.Context) -> None:
    """The deploy steps serverless.yml cannot declare: async retries, dead letter, EventBridge rules (see
    `imagesync deploy-steps --help` and docs/deploy.md)."""
    from .deploy_steps import main

    raise typer.Exit(main(list(ctx.args)))


@app.command()
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

    from .domain.safeparse import Unparseable, loads_json

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


@app.command()
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


@app.command(hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def demo() -> None:
    """Moved: `imagesync-dev demo` (development tooling)."""
    _moved("demo", "demo")


@app.command()
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

    from .serve import FunctionUrlServer

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


@rules_app.command("check")
def rules_check(
    file: Annotated[Path, typer.Argument(help="rule file: YAML, or JSON when it ends in .json")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Validate a rule file (nothing is called, nothing recorded); exit 2 with every problem when it is invalid."""
    from .domain.rules import RulesInvalid, loads_rules

    try:
        text = file.read_text(encoding="utf-8")
        ruleset = loads_rules(text, fmt="json" if file.suffix.lower() == ".json" else "yaml", source=str(file))
    except OSError as exc:
        err.print(f"[red]error[/red] Rules.Invalid: {file}: cannot be read: {exc.strerror or exc}")
        raise typer.Exit(2) from exc
    except UnicodeDecodeError as exc:  # a ValueError, not an OSError: without this, a traceback
        err.print(f"[red]error[/red] Rules.Invalid: {file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        raise typer.Exit(2) from exc
    except RulesInvalid as exc:
        if as_json:
            print(json.dumps({"valid": False, "error": exc.to_dict()}, indent=2))
        err.print(f"[red]error[/red] {exc.code}: {file}")
        for problem in exc.details.get("errors") or [exc.message]:
            err.print(f"  - {escape(str(problem))}", highlight=False)  # a pattern holds [a-z]: not markup
        raise typer.Exit(2) from exc
    summary = [
        {
            "name": r.name,
            "enabled": r.enabled,
            "source_regions": r.selector.source_regions,
            "destinations": r.destinations,
            "hooks": [h.key for h in r.all_hooks],
            "reconcile": r.reconcile,
        }
        for r in ruleset.rules
    ]
    if as_json:
        print(json.dumps({"valid": True, "rules": summary}, indent=2))
        return
    table = Table(title=f"{file}: {len(ruleset.rules)} rule(s), valid")
    for column in ("rule", "enabled", "from", "to", "hooks", "reconcile"):
        table.add_column(column)
    for row in summary:
        table.add_row(
            row["name"],
            "yes" if row["enabled"] else "no",
            " ".join(row["source_regions"]),
            " ".join(row["destinations"]),
            " ".join(row["hooks"]) or "-",
            "yes" if row["reconcile"] else "no",
        )
    console.print(table)


@app.command()
def plan(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Show what the rules would copy now (the reconcile pass without its window), copying nothing."""
    svc = _services()
    try:
        result = svc.rule_engine().plan()
    except ImageSyncError as exc:
        _fail(exc)
        return
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    table = Table(title=f"plan: {result['copies']} copies wanted; {result['limit']} per reconcile run")
    for column in ("rule", "image", "name", "from", "to", "copy name", "why", "next run"):
        table.add_column(column)
    for row in result["plan"]:
        refused = row["refused"]
        table.add_row(
            row["rule"],
            row["image_id"],
            row["image_name"],
            row["source_region"],
            " ".join(row["destinations"]),
            row["copy_name"],
            f"refused {refused['code']}" if refused else row["reason"],
            "yes" if row["within_limit"] else "later" if not refused else "never",
        )
    console.print(table)
    if not result["plan"]:
        console.print("nothing to copy: every copy the rules want exists or is in flight")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the state table's schema at IMAGESYNC_DATABASE_URL to the newest revision."""
    from .adapters.sql import current_revision, make_engine, upgrade
    from .settings import get_settings

    url = get_settings().database_url
    engine = make_engine(url)
    upgrade(engine)
    console.print(f"schema at revision {current_revision(engine)} ({engine.url.render_as_string()})")


@app.command(hidden=True, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench() -> None:
    """Moved: `imagesync-dev chaos` (development tooling)."""
    _moved("bench chaos", "chaos")


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
