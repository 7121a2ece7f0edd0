"""Issue 10's proof on the deployed path: the package built by scripts/package.py, deployed from serverless.yml on
the emulated SCF, driven through the Function URL, CloudAudit -> EventBridge, the timer and SCF's async Invoke.
No handler is called here; what the functions did is read through the Function URL, the admin API (invocations,
dead letters) and the webhook receiver."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from imagesync_dev.demo_cloud import (
    DEAD_LETTER_QUEUE,
    HOOKS,
    RULE_IMAGE_NAME,
    RULES,
    TIME_SCALE,
    Stack,
    deploy_steps,
    scenario,
    sdk,
)

from .conftest import Receiver, step_until, wait_for

pytestmark = pytest.mark.slow

#: completion_hook's timeout for the retry tests (UpdateFunctionConfiguration, as an operator would): long enough
#: for a cold start on a busy machine, short enough to wait out
HOOK_TIMEOUT_S = 10


def _post(stack: Stack, image: str, region: str) -> dict[str, Any]:
    status, body = stack.http(
        "POST",
        "/replications",
        {"source_region": "ap-guangzhou", "image_ids": [image], "destination_regions": [region]},
    )
    assert status == 202, body
    return body


def _replica(stack: Stack, replication_id: str) -> dict[str, Any]:
    status, body = stack.http("GET", f"/replications/{replication_id}")
    assert status == 200, body
    [replica] = body["replicas"]
    return replica  # type: ignore[no-any-return]


def _hooks(replica: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["hook"]: h for h in replica.get("hooks") or []}


def _settled(stack: Stack, replication_id: str, keys: set[str]) -> dict[str, Any] | None:
    """The replica once its hooks `keys` are done; fails at once if SCF dead-lettered its completion instead."""
    dead = stack.emu.admin.scf_dead_letters()
    assert not dead, f"dead-lettered: {[d['error'] for d in dead]}"
    replica = _replica(stack, replication_id)
    done = {h["hook"] for h in replica["hooks"] if h["status"] == "done"}
    return replica if done == keys else None


def _hook_attempts(stack: Stack, before: set[str] = frozenset()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """completion_hook's finished attempts, but those of async events in `before` (request ids)."""
    return [r for r in stack.attempts("completion_hook") if r["request_id"] not in before]


def test_the_whole_flow_through_the_deployed_functions(cloud: Any, receiver: Receiver) -> None:
    """make demo-cloud's scenario on a SQLite file: HTTP requests (accepted and refused), a CreateImage routed by
    deploy-steps' EventBridge rule, timer sweeps, completions by async Invoke, each hook once."""
    stack = cloud(hooks=HOOKS, rules=RULES)
    steps = [s["action"] for s in stack.steps["done"]]
    assert steps.count("scf:UpdateFunctionEventInvokeConfig") == 3 and "eb:CreateTarget" in steps
    assert "scf:UpdateFunctionConfiguration" in steps  # completion_hook's dead letter
    [hook_fn] = [f for f in stack.emu.admin.scf_functions() if f["name"] == stack.name("completion_hook")]
    assert hook_fn["retry_num"] == 2 and hook_fn["dead_letter"]["Name"] == DEAD_LETTER_QUEUE
    stack.emu.admin.set_time_scale(TIME_SCALE)
    outcome = scenario(stack, receiver, console=Console(quiet=True), deadline_seconds=240)  # type: ignore[arg-type]

    assert outcome.problems == []
    assert [(status, code) for _, status, code in outcome.requests][2:] == [
        (422, "Region.CrossBorderNotAllowed"),
        (422, "Image.TooLarge"),
        (422, "Image.NotCustom"),
        (409, "Replication.AlreadyInFlight"),
        (401, "Auth.Required"),
    ]
    assert len(outcome.rows) == 7 and {r["state"] for r in outcome.rows} == {"SUCCEEDED"}
    assert all(r["webhooks"] == 1 and r["tagged"] and r["shared"] for r in outcome.rows)
    assert len({d["delivery"] for d in receiver.received}) == len(receiver.received) == 7
    routed = {r["image"] for r in outcome.rows} - {"img-5ddkx3gh", "img-8c2rq9tw", "img-9fjm4wza"}
    assert len(routed) == 1  # the image CreateImage made, copied by the rule to both regions
    # who ran what: the Function URL and EventBridge -> copy_request, the timer -> status_sweep, status_sweep's
    # async Invoke -> completion_hook; nothing failed, nothing retried
    sources = {key: {(r["source"], r["invocation_type"]) for r in stack.attempts(key)} for key in outcome.functions}
    assert sources == {
        "copy_request": {("http", "RequestResponse"), ("eventbridge", "Event")},
        "status_sweep": {("timer", "Event")},
        "completion_hook": {("api", "Event")},
    }
    assert all(c["errors"] == 0 and c["retries"] == 0 and c["cold"] >= 1 for c in outcome.functions.values())
    assert stack.emu.admin.scf_dead_letters() == []


def test_a_killed_instance_and_a_timed_out_invocation_are_retried_with_nothing_lost_or_doubled(
    cloud: Any, receiver: Receiver
) -> None:
    """completion_hook killed inside its webhook call (admin scf_kill_worker), then another end's invocation past
    its timeout (a receiver that hangs): SCF's async retry runs each end again; every hook ends done once, and
    the webhook's repeated delivery carries the same X-Imagesync-Delivery id (receivers deduplicate on it)."""
    stack = cloud(hooks=[{"type": "tag"}])
    # completion_hook's timeout below the webhook's own: a hanging receiver makes the INVOCATION time out
    stack.configure("completion_hook", timeout=HOOK_TIMEOUT_S, env={"IMAGESYNC_WEBHOOK_TIMEOUT_SECONDS": "120"})
    name = stack.name("completion_hook")

    for case, image, region in (("killed", "img-5ddkx3gh", "ap-shanghai"), ("timeout", "img-8c2rq9tw", "ap-beijing")):
        receiver.hold(1)
        before = {r["request_id"] for r in stack.attempts("completion_hook")}
        replication_id = _post(stack, image, region)["id"]
        replica_id = _replica(stack, replication_id)["id"]
        step_until(stack, receiver.holding.is_set, what=f"{case}: completion_hook inside the webhook call")
        [first] = receiver.of(replica_id)
        if case == "killed":
            assert stack.emu.admin.scf_kill_worker(name) is not None
        wait_for(
            lambda: [r for r in _hook_attempts(stack, before) if r["outcome"] == case],  # noqa: B023
            what=f"the {case} attempt",
        )
        receiver.release.set()
        # The end's claim lasts until the attempt's deadline (real time, at most its timeout after it started,
        # which was before the webhook arrived): wait it out, so the retry finds it free.
        while time.monotonic() < first["at"] + HOOK_TIMEOUT_S + 1:
            time.sleep(0.2)
        replica = step_until(
            stack,
            lambda: _settled(stack, replication_id, {"webhook", "tag"}),  # noqa: B023
            what=f"{case}: the retry finishing the hooks",
        )
        hooks = _hooks(replica)
        assert set(hooks) == {"webhook", "tag"} and hooks["webhook"]["attempts"] == hooks["tag"]["attempts"] == 1
        deliveries = receiver.of(replica_id)
        assert len(deliveries) == 2 and len({d["delivery"] for d in deliveries}) == 1  # one delivery, sent twice
        # the retry's hooks are recorded before its invocation returns and is logged finished: wait for the log
        tries = wait_for(
            lambda: (lambda t: t if len(t) >= 2 else None)(_hook_attempts(stack, before)),  # noqa: B023
            what=f"{case}: the retry's outcome",
        )
        assert [(t["attempt"], t["outcome"]) for t in tries] == [(1, case), (2, "ok")]
        assert len({t["request_id"] for t in tries}) == 1  # SCF's retry of the same async event
        tags = stack.emu.admin.image(replica["destination_image_id"])["Tags"]
        assert {t["Key"]: t["Value"] for t in tags}["imagesync:source-image"] == image
    assert stack.emu.admin.scf_dead_letters() == []


def test_a_hook_failing_every_time_ends_in_the_dead_letter_and_shows_failed(cloud: Any, receiver: Receiver) -> None:
    """A webhook answering 500: completion_hook fails on every delivery; after RetryNum (2) retries the emulated SCF
    dead-letters the event into completion_hook's CMQ queue (deploy-steps --dead-letter), and GET /replications/{id}
    through the Function URL shows the webhook hook failed after 3 attempts (IMAGESYNC_QUEUE_MAX_ATTEMPTS=3 in
    serverless.yml) while the tag hook ran once."""
    stack = cloud(hooks=[{"type": "tag"}])
    receiver.status = 500
    replication_id = _post(stack, "img-5ddkx3gh", "ap-shanghai")["id"]
    [dead] = step_until(stack, stack.emu.admin.scf_dead_letters, what="the dead letter")
    replica = _replica(stack, replication_id)
    assert dead["function"] == stack.name("completion_hook") and dead["attempts"] == 3 and dead["outcome"] == "error"
    assert dead["delivered"] is True and replica["id"] in json.dumps(dead["event"])
    [message] = stack.emu.admin.drain_messages(DEAD_LETTER_QUEUE)
    body = json.loads(message["body"])
    assert body["RequestId"] == dead["request_id"] and body["Body"]["RetryNum"] == 2
    assert replica["id"] in body["Body"]["ClientContext"]

    assert replica["state"] == "SUCCEEDED"
    hooks = _hooks(replica)
    assert hooks["webhook"]["status"] == "failed" and hooks["webhook"]["attempts"] == 3
    assert hooks["webhook"]["error"]["code"]
    assert hooks["tag"]["status"] == "done" and hooks["tag"]["attempts"] == 1
    deliveries = receiver.of(replica["id"])
    assert len(deliveries) == 3 and len({d["delivery"] for d in deliveries}) == 1
    tries = _hook_attempts(stack)
    assert [(t["attempt"], t["outcome"]) for t in tries] == [(1, "error"), (2, "error"), (3, "error")]


def test_an_end_whose_hooks_never_ran_shows_them_failed_through_the_sweeps_backstop(
    cloud: Any, receiver: Receiver, tmp_path: Path
) -> None:
    """completion_hook cannot reach the state table (a wrong IMAGESYNC_DATABASE_URL): every delivery fails before
    any hook runs or is recorded, and SCF dead-letters the event. The sweep, which knows the global hooks from
    serverless.yml (IMAGESYNC_WEBHOOK_URL, IMAGESYNC_HOOKS on status_sweep too), records them failed
    (Hook.Undelivered) once the end is older than IMAGESYNC_COMPLETION_DEADLINE_SECONDS (3 s here)."""
    stack = cloud(hooks=[{"type": "tag"}])
    stack.configure("completion_hook", env={"IMAGESYNC_DATABASE_URL": f"sqlite:///{tmp_path}/missing/state.db"})
    stack.configure("status_sweep", env={"IMAGESYNC_COMPLETION_DEADLINE_SECONDS": "3"})
    replication_id = _post(stack, "img-5ddkx3gh", "ap-shanghai")["id"]
    [dead] = step_until(stack, stack.emu.admin.scf_dead_letters, what="the dead letter")
    assert dead["attempts"] == 3 and dead["function"] == stack.name("completion_hook")
    replica = step_until(
        stack, lambda: (r := _replica(stack, replication_id))["hooks"] and r, what="the backstop's records"
    )
    hooks = _hooks(replica)
    assert {k: (h["status"], h["error"]["code"]) for k, h in hooks.items()} == {
        "webhook": ("failed", "Hook.Undelivered"),
        "tag": ("failed", "Hook.Undelivered"),
    }
    assert replica["state"] == "SUCCEEDED" and receiver.received == []


def test_deploy_steps_run_again_reuse_the_rule_and_a_new_image_is_copied_once(cloud: Any) -> None:
    """`imagesync deploy-steps` is idempotent against the emulator too (ListRules / ListTargets find what the first
    run made): the CreateImage rule and its target exist once, so a new image reaches copy_request once."""
    stack = cloud(rules=RULES)
    first = [d["action"] for d in stack.steps["done"]]
    assert (
        "eb:CreateRule" in first and "eb:CreateTarget" in first and not any("skipped" in d for d in stack.steps["done"])
    )
    again = [d["action"] for d in deploy_steps(stack.emu, "--dead-letter")["done"]]
    assert "eb:ListRules" in again and "eb:ListTargets" in again
    assert "eb:CreateRule" not in again and "eb:CreateTarget" not in again
    image_id = sdk(stack.emu, "cvm").call_json(
        "CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": RULE_IMAGE_NAME}
    )["Response"]["ImageId"]
    wait_for(
        lambda: [r for r in stack.attempts("copy_request") if r["source"] == "eventbridge"],
        what="the routed CreateImage",
    )
    wait_for(stack.emu.scf.idle, what="the async queue to drain")
    [routed] = [r for r in stack.attempts("copy_request") if r["source"] == "eventbridge"]
    assert routed["outcome"] == "ok", routed["error"]
    status, listed = stack.http("GET", f"/replications?image_id={image_id}")
    [replication] = listed["items"]
    assert status == 200 and replication["origin"] == "event"
    assert sorted(r["destination_region"] for r in replication["replicas"]) == ["ap-beijing", "ap-shanghai"]
