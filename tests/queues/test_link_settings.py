"""Choosing the completion link: every cloud resource named explicitly, the removed TDMQ links refused on start with
a reason, nothing built needs credentials until a message is sent; the EventBridge link's request shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tencentcloud.eb.v20210416.eb_client import EbClient

from imagesync.adapters.queues.eventbridge import EVENT_TYPE, MAX_EVENTS_PER_CALL, EventBridgeLink
from imagesync.adapters.queues.scf_async import ScfAsyncLink
from imagesync.adapters.tencent import TencentCloud
from imagesync.settings import Settings
from imagesync.wiring import build_queue
from tests.conftest import load_event

MESSAGES = load_event("queue/scf_async_two_messages.json")["messages"]


@pytest.mark.parametrize("value", ["tdmq-queue", "tdmq-topic"])
def test_the_removed_tdmq_links_refuse_to_start_with_the_reason(value: str) -> None:
    with pytest.raises(ValidationError, match="no longer has a CMQ trigger"):
        Settings(queue=value)


def test_an_unknown_link_is_refused() -> None:
    with pytest.raises(ValidationError, match="local, scf-async, eventbridge"):
        Settings(queue="sqs")


def _cloud() -> TencentCloud:
    def no_keys() -> Any:
        raise AssertionError("credentials were read before anything was sent")

    return TencentCloud(endpoint="http://127.0.0.1:9", credential_provider=no_keys)


@pytest.mark.parametrize(
    ("settings", "needs"),
    [
        ({"queue": "scf-async"}, "IMAGESYNC_COMPLETION_FUNCTION"),
        ({"queue": "eventbridge"}, "IMAGESYNC_EVENT_BUS_ID"),
    ],
)
def test_a_cloud_link_names_its_resource(settings: dict[str, str], needs: str) -> None:
    with pytest.raises(ValueError, match=needs):
        build_queue(Settings(**settings), _cloud())


def test_cloud_links_are_built_without_credentials(tmp_path: Path) -> None:
    scf = build_queue(
        Settings(
            queue="scf-async",
            completion_function="prod-completion_hook",
            completion_namespace="prod",
            region="ap-shanghai",
        ),
        _cloud(),
    )
    assert isinstance(scf, ScfAsyncLink) and (scf.function_name, scf.namespace) == ("prod-completion_hook", "prod")
    assert scf.max_messages == 10  # IMAGESYNC_COMPLETION_BATCH_MAX
    bus = build_queue(Settings(queue="eventbridge", event_bus_id="eb-123"), _cloud())
    assert isinstance(bus, EventBridgeLink) and bus.event_bus_id == "eb-123"


def test_eventbridge_link_puts_one_event_per_message_ten_per_call(mocker: Any) -> None:
    client = mocker.create_autospec(EbClient, instance=True)
    client.PutEvents.return_value = mocker.Mock(RequestId="req-1")
    link = EventBridgeLink(client, event_bus_id="eb-123")
    bodies = [json.dumps(m) for m in MESSAGES]
    assert link.send_batch(bodies) == "req-1"
    sent = client.PutEvents.call_args.args[0]._serialize()
    assert sent["EventBusId"] == "eb-123"
    assert [(e["Source"], e["Type"], e["Subject"]) for e in sent["EventList"]] == [
        ("imagesync.outbox", EVENT_TYPE, "replica/rpl-demo00000001"),
        ("imagesync.outbox", EVENT_TYPE, "replica/rpl-demo00000002"),
    ]
    assert [json.loads(e["Data"]) for e in sent["EventList"]] == MESSAGES
    assert EventBridgeLink.batches(["{}"] * 23) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    client.PutEvents.reset_mock()
    for bad in (["[1]"], ["{}"] * (MAX_EVENTS_PER_CALL + 1), []):
        with pytest.raises(ValueError):
            link.send_batch(bad)
    with pytest.raises(ValueError, match="cannot be delayed"):
        link.send(bodies[0], delay_seconds=1)
    client.PutEvents.assert_not_called()
