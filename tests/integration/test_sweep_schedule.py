"""The sweep's schedule follows the work (issue 15): copy_request and status_sweep arm status_sweep's timers on the
emulated SCF at the earliest due check (scf UpdateTrigger through the official SDK), disarm them when the last copy
ends, and a failed arm still leaves the copy tracked. The imagesync side runs in-process on the emulator's frozen
clock; the triggers belong to a toy function deployed on the emulated SCF, so a firing is seen in its invocation log.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from imagesync.adapters.sweep_timer import SCF_API_VERSION, ScfSweepTimer
from imagesync.adapters.sweep_timer import one_shot_cron as cron_at
from imagesync.app.schedule import ceil_second
from imagesync.handlers import copy_request, status_sweep
from imagesync.wiring import LazyClient
from tests.conftest import load_event
from tests.emulator.scf_toys import attempts, call, deploy_toy, wait_for

TIMER = load_event("timer/every_minute.json")
NEXT, SAFETY = "status-sweep-next", "status-sweep-safety"
TOY = """
    def main_handler(event, context):
        return event.get("TriggerName")
"""


@pytest.fixture
def scheduled(services: Any, emulator: Any, tmp_path: Path) -> Any:
    deploy_toy(
        emulator,
        tmp_path / "toy",
        TOY,
        functions={"sweep": {}},
        triggers=[
            {
                "type": "timer",
                "function": "sweep",
                "parameters": {"name": NEXT, "cronExpression": "0 0 0 1 1 * 2099", "enable": False},
            },
            {
                "type": "timer",
                "function": "sweep",
                "parameters": {"name": SAFETY, "cronExpression": "0 0 * * * * *", "enable": False},
            },
        ],
    )
    services.scheduler = ScfSweepTimer(
        LazyClient(services.cloud, "scf", "ap-guangzhou", version=SCF_API_VERSION),
        function_name="sweep-fn",
        next_trigger=NEXT,
        safety_trigger=SAFETY,
    )
    return services


def _state(emulator: Any) -> dict[str, tuple[str, bool]]:
    """trigger name -> (its cron, enabled), as scf ListTriggers answers."""
    triggers = call(emulator, "ListTriggers", {"FunctionName": "sweep-fn"})["Triggers"]
    return {t["TriggerName"]: (t["TriggerDesc"], t["Enable"] == 1) for t in triggers}


def _request(image: str = "img-5ddkx3gh") -> dict[str, Any]:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps(
        {"source_region": "ap-guangzhou", "image_ids": [image], "destination_regions": ["ap-shanghai"]}
    )
    return copy_request.main_handler(event, {})


def _sweep() -> dict[str, Any]:
    return status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})


def _cron(at: datetime) -> str:
    return cron_at(ceil_second(at))


def _now(emulator: Any) -> datetime:
    return datetime.fromtimestamp(emulator.admin.now(), tz=timezone.utc)


def _to_minute_five(emulator: Any) -> None:
    """Step the frozen emulated clock to the next HH:05:00. The emulator starts at the real time, and a step across
    the top of an hour fires the hourly safety timer too (with the one-shot, when both are armed): which steps did
    depended on the minute the test started at."""
    emulator.admin.advance((5 * 60 - emulator.admin.now() % 3600) % 3600)


def _settled(emulator: Any) -> list[dict[str, Any]]:
    """The toy's invocations once the scheduler has looked at the current emulated time (every timer checked up
    to it) and nothing it queued is still waiting or running: a second firing would be among them."""
    now = emulator.admin.now()
    wait_for(
        lambda: (
            all(t.checked_until >= now for t in emulator.scf.triggers if t.type == "timer" and t.enabled)
            and emulator.scf.idle()
        ),
        timeout=120,
        what="the scheduler to look at the stepped clock and run what it fired",
    )
    return attempts(emulator, "sweep-fn")


def test_one_shot_cron_names_one_second() -> None:
    at = datetime(2027, 1, 15, 8, 3, 7, tzinfo=timezone.utc)
    assert cron_at(at) == "7 3 8 15 1 * 2027"
    assert _cron(at.replace(microsecond=1)) == "8 3 8 15 1 * 2027"  # rounded up: never before the check is due
    with pytest.raises(ValueError):
        cron_at(at.replace(tzinfo=None))


def test_request_arms_the_sweep_at_the_first_check_and_the_last_end_disarms_it(scheduled: Any, emulator: Any) -> None:
    emulator.admin.set_copy_duration(1200, 1200)
    assert not any(on for _, on in _state(emulator).values())  # deployed off: nothing at rest
    _to_minute_five(emulator)  # every step below up to the disarm stays within one hour: the safety timer stays quiet
    response = _request()
    assert response["statusCode"] == 202, response["body"]
    [replica] = scheduled.store.get_replication(json.loads(response["body"])["id"]).replicas
    state = _state(emulator)
    assert state[NEXT] == (_cron(replica.next_check_at), True) and state[SAFETY][1] is True

    # the one-shot fires once, at the armed second, and not again
    emulator.admin.advance((replica.next_check_at - _now(emulator)).total_seconds() + 1)
    wait_for(
        lambda: [a for a in attempts(emulator, "sweep-fn") if a["result"] == NEXT],
        timeout=120,
        what="the one-shot timer's firing",
    )
    emulator.admin.advance(30)
    assert [a["result"] for a in _settled(emulator)] == [NEXT]

    # the sweep (run here in-process) re-arms at the copy's ETA-placed next check
    report = _sweep()
    assert report["claimed"] == 1 and "armed" in report["schedule"], report
    [replica] = scheduled.store.get_replication(replica.replication_id).replicas
    assert _state(emulator)[NEXT] == (_cron(replica.next_check_at), True)
    assert datetime.fromisoformat(report["schedule"]["armed"]) == ceil_second(replica.next_check_at)

    # the copy ends: the sweep publishes its end and switches both timers off
    emulator.admin.advance(1300)
    report = _sweep()
    assert report["outcomes"] == {"SUCCEEDED": 1} and report["schedule"] == {"armed": None}, report
    assert not any(on for _, on in _state(emulator).values())
    fired = len(_settled(emulator))
    emulator.admin.advance(5 * 3600)  # idle hours: no timer fires
    emulator.admin.advance(60)
    assert len(_settled(emulator)) == fired


def test_a_failed_arm_leaves_the_copy_tracked_by_the_safety_timer(
    scheduled: Any, emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.admin.set_copy_duration(600, 600)
    emulator.admin.script_fault("UpdateTrigger", 1, code="InternalError")  # the one-shot's call fails
    response = _request()
    assert response["statusCode"] == 202, response["body"]  # the copy is recorded and started all the same
    [logged] = [r for r in caplog.records if r.getMessage() == "the sweep's timer was not armed"]
    assert logged.error["code"] == "Schedule.ArmFailed" and logged.error["cause"] == "InternalError"
    state = _state(emulator)
    assert state[NEXT][1] is False and state[SAFETY][1] is True  # no one-shot, but the hourly look is on
    # the safety timer fires within the hour
    emulator.admin.advance(3600)
    wait_for(
        lambda: [a for a in attempts(emulator, "sweep-fn") if a["result"] == SAFETY],
        timeout=120,
        what="the safety timer's firing",
    )
    report = _sweep()  # what that firing runs
    assert report["outcomes"] == {"SUCCEEDED": 1} and report["schedule"] == {"armed": None}, report


def test_when_every_arm_fails_the_next_successful_arm_covers_the_copy(scheduled: Any, emulator: Any) -> None:
    emulator.admin.set_copy_duration(1200, 1200)
    emulator.admin.script_fault("UpdateTrigger", 2, code="InternalError")  # both calls of the first arm
    assert _request()["statusCode"] == 202
    assert not any(on for _, on in _state(emulator).values())
    emulator.admin.advance(30)
    second = _request("img-8c2rq9tw")  # the next request's arm covers every copy in flight
    assert second["statusCode"] == 202
    replicas = [r for rep in scheduled.store.list_replications(limit=10)[0] for r in rep.replicas]
    assert len(replicas) == 2
    state = _state(emulator)
    assert state[SAFETY][1] is True
    assert state[NEXT] == (_cron(min(r.next_check_at for r in replicas)), True)  # the FIRST copy's check
