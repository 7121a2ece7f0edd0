"""`make demo`: the main job on the embedded default (the emulator, SQLite, the local queue), through the three
real handlers, with signed webhooks delivered to a local receiver. Exits non-zero unless the outcome is the
expected one. Development tooling: it imports the emulator, which the functions never do."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from imagesync.domain.attempts import attempt_numbers, successors
from imagesync.domain.hooks import ShareHook, TagHook

from .webhook_receiver import WebhookReceiver

EVENTS = Path(__file__).resolve().parents[2] / "events"
WEBHOOK_SECRET = "demo-webhook-secret-not-real"
API_TOKEN = "demo-api-token-not-real"
SOURCE = "ap-guangzhou"
DEMO_UIN = "100000000001"  # the emulator's default account (the tag service names images by uin)
PARTNER_UIN = "100000000002"  # the emulator's second account: every copy is shared with it; one image delivered into it

#: (label, body, expected HTTP status, expected error code)
REQUESTS: list[tuple[str, dict[str, Any], int, str | None]] = [
    (
        "two images to Shanghai and Beijing",
        {
            "source_region": SOURCE,
            "image_ids": ["img-5ddkx3gh", "img-8c2rq9tw"],
            "destination_regions": ["ap-shanghai", "ap-beijing"],
        },
        202,
        None,
    ),
    (
        "an image still CREATING (waits for its source)",
        {"source_region": SOURCE, "image_ids": ["img-9fjm4wza"], "destination_regions": ["ap-shanghai"]},
        202,
        None,
    ),
    (
        "into the partner account (its role imagesync-delivery), Guangzhou and Chengdu",
        {
            "source_region": SOURCE,
            "image_ids": ["img-8c2rq9tw"],
            "destination_regions": [
                {"account": PARTNER_UIN, "role": "imagesync-delivery", "regions": ["ap-guangzhou", "ap-chengdu"]}
            ],
        },
        202,
        None,
    ),
    (
        "to Singapore (mainland -> elsewhere, not approved)",
        {"source_region": SOURCE, "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-singapore"]},
        422,
        "Region.CrossBorderNotAllowed",
    ),
    (
        "an 80 GB image (over the 50 GB cap)",
        {"source_region": SOURCE, "image_ids": ["img-2hxv7lqe"], "destination_regions": ["ap-shanghai"]},
        422,
        "Image.TooLarge",
    ),
    (
        "a public image",
        {"source_region": SOURCE, "image_ids": ["img-487zeit5"], "destination_regions": ["ap-shanghai"]},
        422,
        "Image.NotCustom",
    ),
    (
        "the same copy again while in flight",
        {"source_region": SOURCE, "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]},
        409,
        "Replication.AlreadyInFlight",
    ),
]


#: the copy the demo makes fail in the emulator, then retries (POST /replications/{id}/retry)
RETRIED = {"source_region": SOURCE, "image_ids": ["img-8c2rq9tw"], "destination_regions": ["ap-chengdu"]}


def _http_event(body: dict[str, Any] | None, path: str = "/replications") -> dict[str, Any]:
    event = json.loads((EVENTS / "http" / "function_url_create_replication.json").read_text())
    event["body"] = json.dumps(body) if body is not None else ""
    event["path"] = path
    event["headers"]["authorization"] = f"Bearer {API_TOKEN}"
    if body is None:
        event["headers"].pop("content-type", None)
    return event


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(keep: Path | None = None, *, console: Console | None = None, deadline_seconds: float = 90.0) -> int:
    from imagesync import wiring
    from imagesync.handlers import completion_hook, copy_request, status_sweep
    from imagesync.local import EmulatorClock, deliver
    from imagesync.settings import Settings
    from imagesync_emulator import Emulator

    console = console or Console(width=max(150, Console().width))
    from imagesync.platform.logs import logger

    logger.setLevel("WARNING")  # the demo's table tells the story; the functions' JSON logs would drown it
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="imagesync-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    receiver = WebhookReceiver(WEBHOOK_SECRET)
    problems: list[str] = []
    with (
        Emulator(time_scale=600.0, seed=7) as emu,
        _env(
            {
                "TENCENTCLOUD_SECRET_ID": emu.secret_id,
                "TENCENTCLOUD_SECRET_KEY": emu.secret_key,
                "IMAGESYNC_UIN": DEMO_UIN,
            }
        ),
    ):
        settings = Settings(
            tencent_endpoint=emu.endpoint,
            database_url=f"sqlite:///{workdir / 'state.db'}",
            queue_path=str(workdir / "queue.db"),
            webhook_url=receiver.url,
            webhook_secret=WEBHOOK_SECRET,
            webhook_allow_private=True,  # the receiver is on 127.0.0.1 over http
            first_check_seconds=60,
            recheck_seconds=60,
            retry_seconds=60,
            # a day, emulated: 144 real s at 600x, beyond the demo's own deadline, so that a busy machine (which
            # sweeps less often per emulated minute) never times a copy out (the default 2 h is 12 real s)
            copy_timeout_seconds=86400,
            api_token=API_TOKEN,
            # global hooks beside the webhook: source + provenance tags on each copy (IMAGESYNC_UIN above names
            # the account to the tag service), each copy shared with the partner account
            hooks=[TagHook(), ShareHook(account_ids=[PARTNER_UIN])],
        )
        clock = EmulatorClock(emu.admin.now)
        svc = wiring.build_services(settings, clock=clock)
        wiring.use(svc)
        try:
            console.print(f"[bold]imagesync demo[/bold]: emulator at {emu.endpoint} (1 real s = 10 emulated min)")
            replication_ids: list[str] = []
            for label, body, want_status, want_code in REQUESTS:
                response = copy_request.main_handler(_http_event(body), {"request_id": f"demo-{len(label)}"})
                answer = json.loads(response["body"])
                code = (answer.get("error") or {}).get("code")
                mark = "[green]ok[/green]" if (response["statusCode"], code) == (want_status, want_code) else "[red]??"
                console.print(f"  POST /replications {label}: {response['statusCode']} {code or answer['id']} {mark}")
                if (response["statusCode"], code) != (want_status, want_code):
                    problems.append(f"{label}: got {response['statusCode']} {code}, expected {want_status} {want_code}")
                if response["statusCode"] == 202:
                    replication_ids.append(answer["id"])

            timer = json.loads((EVENTS / "timer" / "every_minute.json").read_text())
            on_dead = svc.give_up().dead_lettered  # a dead-lettered end shows as failed hooks
            started = time.monotonic()
            ticks = 0

            def settle() -> None:
                """Sweep and deliver until every copy of the demo's replications ended and its end was handled."""
                nonlocal ticks
                while time.monotonic() - started < deadline_seconds:
                    status_sweep.main_handler(timer, {"time_limit_in_ms": 30000})
                    deliver(svc.queue, completion_hook.main_handler, on_dead=on_dead)
                    ticks += 1
                    replicas = [r for rid in replication_ids for r in svc.store.get_replication(rid).replicas]
                    if all(r.terminal for r in replicas) and not svc.store.pending_outbox(1):
                        deliver(svc.queue, completion_hook.main_handler, on_dead=on_dead)
                        return
                    time.sleep(0.2)
                problems.append(f"copies still in flight after {deadline_seconds:.0f} s")

            settle()
            # one more copy, made to fail by the emulator (its copy ends CREATEFAILED), then retried
            response = copy_request.main_handler(_http_event(RETRIED), {"request_id": "demo-retried"})
            retried = json.loads(response["body"])
            if response["statusCode"] != 202:
                problems.append(f"the copy to retry: got {response['statusCode']}, expected 202")
            else:
                replication_ids.append(retried["id"])
                for replica in retried["replicas"]:
                    emu.admin.set_image_state(replica["destination_image_id"], "CREATEFAILED")
            settle()
            if response["statusCode"] == 202:
                rid = retried["id"]
                before = [r.state.value for r in svc.store.get_replication(rid).replicas]
                response = copy_request.main_handler(
                    _http_event(None, f"/replications/{rid}/retry"), {"request_id": "demo-retry"}
                )
                answer = json.loads(response["body"])
                ok = before == ["FAILED"] and response["statusCode"] == 202 and len(answer.get("started", [])) == 1
                mark = "[green]ok[/green]" if ok else "[red]??"
                console.print(
                    f"  POST /replications/{rid}/retry after the copy to ap-chengdu ended {' '.join(before)}: "
                    f"{response['statusCode']} started {' '.join(answer.get('started', []))} {mark}"
                )
                if not ok:
                    problems.append(f"retry: the copy ended {before}, retry answered {response['statusCode']}")
                settle()
            elapsed = time.monotonic() - started
            # what the hooks did where it lands: the copies' tags and sharing, as the cloud shows them
            effects: dict[str, str] = {}
            for rid in replication_ids:
                for r in svc.store.get_replication(rid).replicas:
                    image = emu.admin.image(r.destination_image_id) if r.destination_image_id else None
                    if r.account:  # a delivery into another account: the copy is that account's own image
                        owner = (image or {}).get("OwnerUin")
                        effects[r.id] = f"owned by {owner}" if owner else "missing"
                        if owner != r.account:
                            problems.append(f"{r.id}: the copy is {effects[r.id]}, expected {r.account}")
                        continue
                    tags = {t["Key"]: t["Value"] for t in (image or {}).get("Tags") or []}
                    tagged = tags.get("imagesync:source-image") == r.source_image_id
                    shared = PARTNER_UIN in (image or {}).get("SharedWith", [])
                    effects[r.id] = f"{'tagged' if tagged else 'NOT tagged'}, {'shared' if shared else 'NOT shared'}"
                    if r.state.value == "FAILED":  # the failed attempt of the retried copy: no hook touches it
                        continue
                    if not (tagged and shared):
                        problems.append(f"{r.id}: the copy is {effects[r.id]}")
        finally:
            wiring.use(None)
            receiver.close()

    hooks = Counter(h["payload"]["replica_id"] for h in receiver.received if h["valid"])
    if any(not h["valid"] for h in receiver.received):
        problems.append("a webhook arrived with a bad signature")
    table = Table(title=f"replicas ({ticks} sweeps, {elapsed:.1f} s real)")
    for column in (
        "image",
        "region",
        "try",
        "destination id",
        "state",
        "emulated duration",
        "hook delivered",
        "hooks",
        "on the copy",
    ):
        table.add_column(column, no_wrap=column == "region")  # "<account uin>/<region>" for a delivery
    for rid in replication_ids:
        replication = svc.store.get_replication(rid)
        replicas = replication.replicas
        numbers, after = attempt_numbers(replicas), successors(replicas)
        runs = svc.store.hook_runs([r.id for r in replicas])
        for r in replicas:
            outcome = {run.hook_key: run.status for run in runs[r.id]}
            if r.id in after:  # an earlier attempt, retried: it failed, and only the webhook told of it
                expected_end, expected_hooks = "FAILED", {"webhook": "done"}
            elif r.account:  # a copy in another account: tag and share act on imagesync's own images: skipped
                expected_end, expected_hooks = "SUCCEEDED", {"webhook": "done"}
                if outcome != {"webhook": "done", "tag": "skipped", "share": "skipped"}:
                    problems.append(f"{r.id}: hooks {outcome}, expected tag and share skipped (another account)")
            else:
                expected_end, expected_hooks = "SUCCEEDED", {"webhook": "done", "tag": "done", "share": "done"}
            if {k: v for k, v in outcome.items() if v != "skipped"} != expected_hooks:
                problems.append(f"{r.id}: hooks {outcome}, expected {expected_hooks}")
            duration = (r.ended_at - r.started_at).total_seconds() / 60 if r.ended_at and r.started_at else None
            if r.id in after:
                effects[r.id] = "-"
            table.add_row(
                r.source_image_id,
                f"{r.account}/{r.destination_region}" if r.account else r.destination_region,
                f"{numbers[r.id]}" + (f" (retried by {after[r.id].id})" if r.id in after else ""),
                r.destination_image_id or "-",
                r.state.value,
                f"{duration:.1f} min" if duration is not None else "-",
                {0: "no", 1: "yes"}.get(hooks[r.id], f"{hooks[r.id]} times"),
                " ".join(f"{k}:{v}" for k, v in sorted(outcome.items())),
                effects.get(r.id, "-"),
            )
            if r.state.value != expected_end:
                problems.append(f"{r.source_image_id} -> {r.destination_region} ended {r.state.value}")

            if hooks[r.id] != 1:
                problems.append(f"{r.id}: webhook delivered {hooks[r.id]} times, expected once")
    console.print(table)
    if problems:
        for problem in problems:
            console.print(f"[red]unexpected:[/red] {problem}")
        return 1
    console.print(
        "[green]demo outcome as expected[/green]: every copy SUCCEEDED (the one that failed, on its retry), each hook"
        " delivered once"
    )
    if keep:
        console.print(f"state kept in {workdir}")
    console.print(
        "status page of this run: "
        f"IMAGESYNC_API_TOKEN={API_TOKEN} imagesync serve --database-url sqlite:///{workdir / 'state.db'}\n"
        "  then open http://127.0.0.1:8080/ (any user name; the token above as the password)",
        highlight=False,
        soft_wrap=True,
    )
    return 0
