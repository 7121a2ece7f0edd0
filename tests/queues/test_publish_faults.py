"""status_sweep's publishing under faults, for each completion link: a transient failure (throttling, a dropped
connection, a 5xx) is retried within the deadline and never fails the sweep; what could not be sent stays in the
outbox and is reported; any exception from a link is contained.

scf async Invoke: the real ScfClient against canned HTTP answers (the emulator's scf service is H1's, in parallel).
EventBridge: end to end against the emulator's eb PutEvents, with its faults on demand; the events it records are
then delivered to completion_hook's real handler in the CloudEvent shape EventBridge gives an SCF target.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from tencentcloud.scf.v20180416.scf_client import ScfClient

from imagesync.adapters.queues.eventbridge import EventBridgeLink
from imagesync.adapters.queues.scf_async import ScfAsyncLink
from imagesync.app.sweep import SweepReport
from imagesync.domain.errors import CloudError
from imagesync.domain.states import ReplicaState
from imagesync.handlers import completion_hook, status_sweep
from imagesync.runtime.deadline import deadline_in
from tests.conftest import load_event
from tests.queues.canned import error, sdk_client
from tests.store.store_helpers import make_replication

TIMER = load_event("timer/every_minute.json")
OK = (200, "application/json", {"Response": {"Result": {"FunctionRequestId": "fn-1"}, "RequestId": "req-1"}})
THROTTLED = (200, "application/json", error("RequestLimitExceeded"))
BAD_GATEWAY = (502, "text/html", "<html>bad gateway</html>")


def _ended(services: Any, n: int) -> list[str]:
    """`n` replica ends in the outbox (replicas stored SUCCEEDED put their completion messages there)."""
    replication = make_replication([f"img-{i:08d}" for i in range(n)], ["ap-shanghai"], state=ReplicaState.SUCCEEDED)
    services.store.create_replication(replication)
    return sorted(r.id for r in replication.replicas)


def _sweep(services: Any, sleeps: list[float]) -> Any:
    sweep = services.sweep(reconcile="skip")
    sweep.sleep = sleeps.append  # the backoff is recorded, not slept
    return sweep


def _scf_link(server: Any) -> ScfAsyncLink:
    client = sdk_client(ScfClient, f"127.0.0.1:{server.server_address[1]}")
    return ScfAsyncLink(client, function_name="imagesync-completion_hook")


def _sent_replicas(server: Any) -> list[str]:
    return sorted(
        m["replica_id"]
        for r in server.requests
        if r["action"] == "Invoke"
        for m in json.loads(r["body"]["ClientContext"])["messages"]
    )


# -- scf async Invoke --------------------------------------------------------------------------------------------------


def test_scf_link_a_throttled_then_dropped_publish_is_retried(services: Any, canned: Any) -> None:
    replicas = _ended(services, 3)
    services.queue = _scf_link(canned)
    canned.answers = [THROTTLED, BAD_GATEWAY, OK]
    sleeps: list[float] = []

    report = _sweep(services, sleeps)()

    assert report.published == 3 and report.publish_retries == 2 and report.publish_error is None
    assert len(canned.requests) == 3 and _sent_replicas(canned) == sorted(replicas * 3)  # one Invoke, sent 3 times
    assert len(sleeps) == 2 and 0.1 <= sleeps[0] <= 0.2 and 0.2 <= sleeps[1] <= 0.4  # backoff with jitter
    assert services.store.pending_outbox(10) == []


def test_scf_link_down_leaves_the_outbox_and_the_sweep_reports_it(services: Any, canned: Any) -> None:
    _ended(services, 2)
    services.queue = _scf_link(canned)
    canned.answers = [THROTTLED]
    sleeps: list[float] = []

    report = _sweep(services, sleeps)()

    assert report.published == 0
    assert report.publish_error == {
        "code": "RequestLimitExceeded",
        "message": report.publish_error["message"],
        "retryable": True,
        "attempts": 5,
        "unsent": 2,
    }
    assert len(canned.requests) == 5 and len(sleeps) == 4 and max(sleeps) <= 3.0  # bounded
    assert len(services.store.pending_outbox(10)) == 2  # nothing lost: the next sweep sends them
    canned.answers = [OK]
    assert _sweep(services, sleeps)().published == 2 and services.store.pending_outbox(10) == []


def test_scf_link_no_retry_sleeps_past_the_deadline(services: Any, canned: Any, monkeypatch: Any) -> None:
    from imagesync.runtime import deadline
    from imagesync.runtime.deadline import time_left

    # the deadline's clock stands still but for the backoffs: what each left does not depend on the machine's speed
    clock = [1000.0]
    monkeypatch.setattr(deadline, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    _ended(services, 1)
    services.queue = _scf_link(canned)
    canned.answers = [THROTTLED]
    sweep = services.sweep(reconcile="skip")
    room: list[float] = []  # what each backoff left before the sweep's safety margin

    def sleep(delay: float) -> None:
        room.append(time_left() - sweep.safety - delay)
        clock[0] += delay

    sweep.sleep = sleep
    with deadline_in(sweep.safety + 0.3):  # 0.3 s beyond the margin: the third backoff (>= 0.4 s) never fits
        report = sweep()
    assert report.publish_error and 1 <= report.publish_error["attempts"] == len(canned.requests) <= 3
    assert all(r > 0 for r in room) and len(services.store.pending_outbox(10)) == 1


def test_status_sweep_handler_finishes_its_report_through_a_throttled_publish(services: Any, canned: Any) -> None:
    _ended(services, 2)
    services.queue = _scf_link(canned)
    canned.answers = [THROTTLED, OK]
    report = status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})
    assert report["published"] == 2 and report["publish_retries"] == 1 and report["publish_error"] is None


def test_status_sweep_handler_returns_its_report_when_the_link_is_refused(services: Any, canned: Any) -> None:
    _ended(services, 1)
    services.queue = _scf_link(canned)
    canned.answers = [(200, "application/json", error("ResourceNotFound.Function"))]
    report = status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})
    assert report["published"] == 0 and report["publish_retries"] == 0  # a permanent error is not retried
    assert report["publish_error"]["code"] == "ResourceNotFound.Function"
    assert report["publish_error"]["retryable"] is False and len(services.store.pending_outbox(10)) == 1


# -- any link: the class of failure ------------------------------------------------------------------------------------


class _Link:
    """A recording link that fails its n-th call as told (the port's seam, not a link under test)."""

    def __init__(self, failures: dict[int, BaseException], per_call: int = 1) -> None:
        self.failures, self.per_call, self.calls = failures, per_call, []  # type: ignore[var-annotated]
        self.sent: list[str] = []

    def batches(self, bodies: Sequence[str]) -> list[list[int]]:
        return [list(range(i, min(i + self.per_call, len(bodies)))) for i in range(0, len(bodies), self.per_call)]

    def send_batch(self, bodies: Sequence[str]) -> str:
        self.calls.append(list(bodies))
        failure = self.failures.get(len(self.calls))
        if failure is not None:
            raise failure
        self.sent += [json.loads(b)["replica_id"] for b in bodies]
        return f"call-{len(self.calls)}"

    def send(self, body: str, *, delay_seconds: int = 0) -> str:
        return self.send_batch([body])


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (CloudError("RequestLimitExceeded", "throttled", retryable=True), True),
        (CloudError("ClientNetworkError", "connection dropped", retryable=True), True),
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (CloudError("UnauthorizedOperation", "no", retryable=False), False),
        (RuntimeError("a bug in a link"), False),
        (ValueError("too large"), False),
    ],
    ids=["throttled", "network", "reset", "timeout", "refused", "bug", "too-large"],
)
def test_every_publish_failure_is_contained(services: Any, failure: BaseException, retried: bool) -> None:
    replicas = _ended(services, 3)
    link = _Link({1: failure}, per_call=2)  # calls: [r0, r1], [r2] (+ the retry of the first)
    services.queue = link
    sleeps: list[float] = []

    report = _sweep(services, sleeps)()

    if retried:  # sent on the second try: nothing left over
        assert report.published == 3 and report.publish_retries == 1 and report.publish_error is None
        assert sorted(link.sent) == replicas and len(sleeps) == 1
    else:  # a permanent failure skips that call's messages and goes on with the rest
        assert report.published == 1 and report.publish_retries == 0 and sleeps == []
        assert report.publish_error["code"] == getattr(failure, "cloud_code", type(failure).__name__)
        assert report.publish_error["unsent"] == 2 and len(link.sent) == 1
        left = {m.replica_id for m in services.store.pending_outbox(10)}
        assert left == set(replicas) - set(link.sent) and len(left) == 2


def test_a_transient_failure_that_outlasts_the_retries_stops_publishing_for_this_sweep(services: Any) -> None:
    _ended(services, 4)
    throttled = CloudError("RequestLimitExceeded", "throttled", retryable=True)
    link = _Link(dict.fromkeys(range(1, 100), throttled), per_call=2)
    services.queue = link
    report = _sweep(services, [])()
    assert len(link.calls) == 5 and report.published == 0  # the second call is not even tried: the link is down
    assert report.publish_error["unsent"] == 2 and len(services.store.pending_outbox(10)) == 4


def test_publish_outbox_alone_still_returns_a_count(services: Any) -> None:
    """`imagesync copy --wait` calls publish_outbox() without a report."""
    _ended(services, 2)
    services.queue = _Link({1: CloudError("RequestLimitExceeded", "x", retryable=True)})
    sweep = _sweep(services, [])
    assert sweep.publish_outbox() == 2 and isinstance(SweepReport(owner="x").as_dict()["publish_error"], type(None))


# -- EventBridge, end to end on the emulator ---------------------------------------------------------------------------


@pytest.fixture
def bus(services: Any) -> str:
    eb = services.cloud.client("eb", "ap-guangzhou")
    from tencentcloud.eb.v20210416 import models

    request = models.CreateEventBusRequest()
    request.EventBusName = "imagesync-completions"
    return str(eb.CreateEventBus(request).EventBusId)


def _eb_link(services: Any, bus: str) -> EventBridgeLink:
    return EventBridgeLink(services.cloud.client("eb", "ap-guangzhou"), event_bus_id=bus)


def _as_delivered(recorded: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvent EventBridge hands an SCF target for one event the emulator recorded (docs/facts.md#F-EVT-4)."""
    return {
        "specversion": "1.0",
        "id": recorded["id"],
        "type": recorded["type"],
        "source": recorded["source"],
        "subject": recorded["subject"],
        "time": int(recorded["received_at"] * 1000),
        "region": recorded["region"],
        "datacontenttype": "application/json;charset=utf-8",
        "status": "1",
        "tags": None,
        "data": recorded["data"],
    }


@pytest.mark.parametrize("kind", ["error", "drop", "http5xx"])
def test_eventbridge_link_through_injected_faults(services: Any, emulator: Any, bus: str, kind: str) -> None:
    replicas = _ended(services, 12)  # two PutEvents calls: 10 + 2
    services.queue = _eb_link(services, bus)
    emulator.admin.script_fault("PutEvents", 2, code="RequestLimitExceeded", kind=kind)
    sleeps: list[float] = []

    report = _sweep(services, sleeps)()

    assert report.published == 12 and report.publish_retries == 2 and report.publish_error is None
    calls = emulator.admin.calls(action="PutEvents")
    assert [len(c["params"]["EventList"]) for c in calls][-2:] == [10, 2]
    events = emulator.admin.drain_events()
    assert sorted(e["data"]["replica_id"] for e in events) == replicas  # each once: faults before the action
    assert {(e["event_bus_id"], e["source"], e["type"]) for e in events} == {
        (bus, "imagesync.outbox", "imagesync:Replica:Ended")
    }
    # what EventBridge delivers to completion_hook is what it reads: one event, or a batch
    one = completion_hook.main_handler(_as_delivered(events[0]), {})
    assert one["processed"] == 1 and one["rejected"] == []
    batch = completion_hook.main_handler({"EventList": [_as_delivered(e) for e in events]}, {})
    assert batch["processed"] == 12 and batch["rejected"] == []
    assert sum(r.get("replayed") is True for r in batch["results"]) == 1  # the first was done already


def test_eventbridge_link_down_leaves_the_outbox(services: Any, emulator: Any, bus: str) -> None:
    _ended(services, 3)
    services.queue = _eb_link(services, bus)
    emulator.admin.set_fault("PutEvents", code="RequestLimitExceeded", rate=1.0)
    report = _sweep(services, [])()
    assert report.published == 0 and report.publish_error["code"] == "RequestLimitExceeded"
    assert report.publish_error["attempts"] == 5 and emulator.admin.drain_events() == []
    emulator.admin.clear_faults()
    assert _sweep(services, [])().published == 3 and len(emulator.admin.drain_events()) == 3


def test_eventbridge_link_unknown_bus_is_a_permanent_error(services: Any, emulator: Any) -> None:
    _ended(services, 1)
    services.queue = _eb_link(services, "eb-doesnotexist")
    report = _sweep(services, [])()
    assert report.publish_error["code"] == "ResourceNotFound.EventBus" and report.publish_retries == 0
    assert len(services.store.pending_outbox(10)) == 1


# -- the whole path: copy -> sweep -> Invoke's ClientContext -> completion_hook --------------------------------


def test_what_the_sweep_invokes_is_what_completion_hook_runs(services: Any, emulator: Any, canned: Any) -> None:
    from imagesync.handlers import copy_request

    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps(
        {
            "source_region": "ap-guangzhou",
            "image_ids": ["img-5ddkx3gh", "img-8c2rq9tw"],
            "destination_regions": ["ap-shanghai", "ap-beijing"],
        }
    )
    assert copy_request.main_handler(event, {})["statusCode"] == 202
    emulator.admin.advance(45 * 60)  # every copy has ended
    services.queue = ScfAsyncLink(
        sdk_client(ScfClient, f"127.0.0.1:{canned.server_address[1]}"),
        function_name="imagesync-completion_hook",
        max_messages=3,
    )
    canned.answers = [OK]

    report = status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})

    assert report["outcomes"] == {"SUCCEEDED": 4} and report["published"] == 4
    invocations = [json.loads(r["body"]["ClientContext"]) for r in canned.requests]
    assert [len(i["messages"]) for i in invocations] == [3, 1]  # IMAGESYNC_COMPLETION_BATCH_MAX, then the rest
    results = [completion_hook.main_handler(i, {"request_id": f"inv-{n}"}) for n, i in enumerate(invocations)]
    assert sum(r["processed"] for r in results) == 4 and all(r["rejected"] == [] for r in results)
    done = [r for result in results for r in result["results"]]
    assert all(r["hooks"] == {"log": "done"} and not r.get("replayed") for r in done)
    assert len({r["replica_id"] for r in done}) == 4
    again = completion_hook.main_handler(invocations[0], {})  # SCF's retry of an invocation: acted on once
    assert all(r["replayed"] is True for r in again["results"])
