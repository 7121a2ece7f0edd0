"""A completion_hook worker killed in the middle of a hook, ON THE REAL CLOCK: `imagesync deliver` as a real
process, SIGKILLed (exit 137) by the `inside_hook` failpoint after the webhook was sent and before its record was
written. The redelivery -- once the message's visibility timeout, which is also the killed invocation's deadline,
has passed -- finishes the end: every hook done, the webhook received under one delivery id, nothing
dead-lettered. (With a claim outliving the invocation, as the fixed 900 s one did, every redelivery was refused
Idempotency.InProgress until the queue dead-lettered the message.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from imagesync.adapters.queues.local import TIMEOUT_ERROR
from imagesync.adapters.sql.schema import idempotency
from imagesync.app.give_up import DEAD_LETTERED
from imagesync.app.hooks.tag import REPLICATION_ID, SOURCE_IMAGE
from imagesync.domain.models import CopyRequest
from imagesync.handlers import status_sweep
from imagesync.runtime.failpoints import EXIT_CODE
from imagesync_dev.webhook_receiver import WebhookReceiver
from tests.conftest import load_event

IMAGESYNC = [sys.executable, "-m", "imagesync.cli"]
UIN = "100000000001"
TIMEOUT = 3  # seconds: each delivery's deadline and the queue's visibility timeout


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        IMAGESYNC + args, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def _ended(services: Any, emulator: Any, receiver: WebhookReceiver) -> tuple[Any, dict[str, str]]:
    """A copy that SUCCEEDED (its completion in the local queue), and the environment of an `imagesync` process on
    the same state table and queue, with two hooks: a signed webhook and a tag."""
    emulator.admin.set_time_scale(0)
    request = CopyRequest(source_region="ap-guangzhou", image_ids=["img-5ddkx3gh"], destination_regions=["ap-shanghai"])
    replication = services.request_copies()(request).replication
    emulator.admin.advance(45 * 60)
    timer = load_event("timer/every_minute.json")
    assert status_sweep.main_handler(timer, {"time_limit_in_ms": 30000})["published"] == 1
    env = {
        "IMAGESYNC_TENCENT_ENDPOINT": emulator.endpoint,
        "TENCENTCLOUD_SECRET_ID": emulator.secret_id,
        "TENCENTCLOUD_SECRET_KEY": emulator.secret_key,
        "IMAGESYNC_UIN": UIN,
        "IMAGESYNC_DATABASE_URL": services.settings.database_url,
        "IMAGESYNC_QUEUE_PATH": services.settings.queue_path,
        "IMAGESYNC_LOG_LEVEL": "WARNING",
        "IMAGESYNC_WEBHOOK_URL": receiver.url,
        "IMAGESYNC_WEBHOOK_SECRET": "s3cret",
        "IMAGESYNC_WEBHOOK_ALLOW_PRIVATE": "true",
        "IMAGESYNC_HOOKS": '[{"type": "tag"}]',
    }
    return replication, env


@pytest.mark.slow
def test_hook_worker_killed_mid_hook_is_redelivered_and_finishes_the_end(
    services: Any, emulator: Any, tmp_path: Path
) -> None:
    receiver = WebhookReceiver("s3cret")
    try:
        replication, env = _ended(services, emulator, receiver)
        replica_id = replication.replicas[0].id
        deliver = ["deliver", "--timeout", str(TIMEOUT)]

        killed = run(deliver, {**env, "IMAGESYNC_FAILPOINTS": "inside_hook=1"}, tmp_path)
        assert killed.returncode == EXIT_CODE, killed.stdout + killed.stderr
        assert "failpoint inside_hook fired" in killed.stderr
        assert len(receiver.received) == 1  # the webhook acted; its record was never written
        assert services.store.hook_runs([replica_id])[replica_id] == []
        with services.store.engine.connect() as conn:
            claim = (
                conn.execute(select(idempotency).where(idempotency.c.key == f"completion:{replica_id}"))
                .mappings()
                .one()
            )
        assert claim["status"] == "INPROGRESS"
        # held until the killed invocation's deadline, not a fixed window far beyond it
        assert (claim["in_progress_until"] - datetime.now(timezone.utc)).total_seconds() <= TIMEOUT

        # the queue redelivers once the visibility timeout passed: deliver until the end is done (bounded)
        outputs = []
        end = time.monotonic() + 120
        while time.monotonic() < end:
            again = run(deliver, env, tmp_path)
            assert again.returncode == 0, again.stdout + again.stderr
            outputs.append(json.loads(again.stdout.strip().splitlines()[-1]))
            if outputs[-1]["delivered"]:
                break
            time.sleep(0.5)  # the poll interval only: how long the redelivery takes does not matter
        assert outputs and outputs[-1] == {"delivered": 1, "failed": 0}, outputs
        assert all(o["failed"] == 0 for o in outputs)  # never refused as still in progress

        runs = {r.hook_key: r for r in services.store.hook_runs([replica_id])[replica_id]}
        assert {k: r.status for k, r in runs.items()} == {"webhook": "done", "tag": "done"}
        assert len({p["delivery"] for p in receiver.received}) == 1 and all(p["valid"] for p in receiver.received)
        copy = emulator.admin.image(services.store.get_replica(replica_id).destination_image_id)
        assert {t["Key"] for t in copy["Tags"]} >= {SOURCE_IMAGE, REPLICATION_ID}
        assert services.queue.depth() == {"visible": 0, "in_flight": 0, "delayed": 0, "dead": 0}

        shown = run(["status", replication.id, "--json"], env, tmp_path)
        assert shown.returncode == 0, shown.stderr
        hooks = json.loads(shown.stdout)["replicas"][0]["hooks"]
        assert {h["hook"]: h["status"] for h in hooks} == {"webhook": "done", "tag": "done"}
    finally:
        receiver.close()


@pytest.mark.slow
def test_a_message_dead_lettered_after_a_killed_delivery_shows_failed_hooks(
    services: Any, emulator: Any, tmp_path: Path
) -> None:
    """The issue's one-machine symptom: the queue gives up on the message (here after its only allowed delivery,
    killed mid-hook); `imagesync status` then shows the replica SUCCEEDED with every hook failed and why -- not
    SUCCEEDED with no hook record at all."""
    receiver = WebhookReceiver("s3cret")
    try:
        replication, env = _ended(services, emulator, receiver)
        env["IMAGESYNC_QUEUE_MAX_ATTEMPTS"] = "1"
        replica_id = replication.replicas[0].id
        deliver = ["deliver", "--timeout", str(TIMEOUT)]
        killed = run(deliver, {**env, "IMAGESYNC_FAILPOINTS": "inside_hook=1"}, tmp_path)
        assert killed.returncode == EXIT_CODE, killed.stdout + killed.stderr

        # the next delivery run finds the message's last delivery timed out: dead-lettered, recorded on the end
        end = time.monotonic() + 120
        while not services.queue.dead_letters() and time.monotonic() < end:
            again = run(deliver, env, tmp_path)
            assert again.returncode == 0, again.stdout + again.stderr
            time.sleep(0.5)  # the poll interval only
        [dead] = services.queue.dead_letters()
        assert dead.attributes["last_error"] == TIMEOUT_ERROR

        shown = run(["status", replication.id, "--json"], env, tmp_path)
        assert shown.returncode == 0, shown.stderr
        [replica] = json.loads(shown.stdout)["replicas"]
        assert replica["id"] == replica_id and replica["state"] == "SUCCEEDED"
        hooks = {h["hook"]: h for h in replica["hooks"]}
        assert {k: (h["status"], h["error"]["code"]) for k, h in hooks.items()} == {
            "webhook": ("failed", DEAD_LETTERED),
            "tag": ("failed", DEAD_LETTERED),
        }
        assert TIMEOUT_ERROR in hooks["tag"]["error"]["message"]
        table = run(["status", replication.id], {**env, "COLUMNS": "300"}, tmp_path)  # a table on one line each
        assert "Hook.DeadLettered" in table.stdout and "webhook failed" in table.stdout
    finally:
        receiver.close()
