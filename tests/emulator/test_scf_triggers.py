"""Triggers of the emulated SCF: timers on the emulated clock, Function URLs on real ports, CreateTrigger's refusals,
and EventBridge rules routing recorded events to functions."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.eb.v20210416.eb_client import EbClient

from imagesync_emulator import Emulator

from .conftest import client
from .scf_toys import attempts, call, deploy_toy, wait_for

pytestmark = pytest.mark.slow  # each test starts Python worker processes

ROOT = Path(__file__).resolve().parents[2]
START = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a whole minute

RECORD = """
    import json, os

    def main_handler(event, context):
        with open(os.path.join(os.path.dirname(__file__), "..", "events.jsonl"), "a") as f:
            f.write(json.dumps({"event": event, "trigger_src": os.environ.get("TRIGGER_SRC")}) + "\\n")
        return "ok"
"""


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(time_scale=0.0) as e:
        e.clock.advance(START - e.clock.now())
        yield e


def _events(emu: Emulator) -> list[dict]:
    path = emu.scf.work_dir / "deploy-1" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_timer_fires_on_the_emulated_clock_with_seconds(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(
        emu,
        tmp_path,
        RECORD,
        triggers=[
            {
                "type": "timer",
                "function": "toy",
                "parameters": {
                    "name": "every-10s",
                    "cronExpression": "*/10 * * * * * *",
                    "argument": "hello",
                    "enable": True,
                },
            }
        ],
    )
    emu.admin.advance(5)  # :05, no slot crossed
    emu.admin.advance(5)  # :10
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 1, what="the first firing")
    emu.admin.advance(10)  # :20
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 2, what="the second firing")
    emu.admin.advance(3600)  # an hour at once: one catch-up firing, for the latest slot
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 3, what="the catch-up firing")
    fired = _events(emu)
    assert [e["event"]["Time"] for e in fired] == [
        "2027-01-15T08:00:10Z",
        "2027-01-15T08:00:20Z",
        "2027-01-15T09:00:20Z",
    ]
    assert all(e["event"]["Type"] == "Timer" and e["event"]["TriggerName"] == "every-10s" for e in fired)
    assert all(e["event"]["Message"] == "hello" and e["trigger_src"] == "timer" for e in fired)
    assert all(r["source"] == "timer" and r["invocation_type"] == "Event" for r in attempts(emu, "toy-fn"))

    call(
        emu,
        "UpdateTriggerStatus",
        {"FunctionName": "toy-fn", "TriggerName": "every-10s", "Type": "timer", "Enable": "CLOSE"},
    )
    with pytest.raises(TencentCloudSDKException) as err:
        call(
            emu,
            "UpdateTriggerStatus",
            {"FunctionName": "toy-fn", "TriggerName": "every-10s", "Type": "timer", "Enable": "CLOSE"},
        )
    assert err.value.code == "FailedOperation.UpdateTriggerStatus"
    emu.admin.advance(60)
    call(
        emu,
        "UpdateTriggerStatus",
        {"FunctionName": "toy-fn", "TriggerName": "every-10s", "Type": "timer", "Enable": "OPEN"},
    )
    emu.admin.advance(10)
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 4, what="the firing after re-arming")
    assert len(_events(emu)) == 4  # nothing fired while closed, no catch-up on re-arming


def test_timer_skips_a_slot_while_its_previous_firing_waits(tmp_path: Path) -> None:
    release = tmp_path / "release"
    with Emulator(time_scale=0.0, scf_concurrency=1) as emu:
        emu.clock.advance(START - emu.clock.now())
        deploy_toy(
            emu,
            tmp_path,
            f"""
            import os, time

            def main_handler(event, context):
                deadline = time.monotonic() + 60
                while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:
                    time.sleep(0.02)
        """,
            # held until released: the 10 s default timeout would kill slot 1 if the steps below were slow
            functions={"toy": {"timeout": 300}},
            triggers=[
                {"type": "timer", "function": "toy", "parameters": {"name": "t", "cronExpression": "*/10 * * * * * *"}}
            ],
        )
        emu.admin.advance(10)  # slot 1 runs (and blocks: one instance at most)
        wait_for(lambda: emu.admin.scf_workers("toy-fn")["busy"], what="slot 1 to run")
        emu.admin.advance(10)  # slot 2 waits in the queue
        wait_for(lambda: len(emu.admin.scf_pending()) == 2, what="slot 2 to be queued")
        emu.admin.advance(10)  # slot 3: slot 2 has not started, so it is skipped
        wait_for(lambda: emu.admin.scf_functions()[0]["triggers"][0]["skipped"] == 1, what="the skip")
        release.touch()
        wait_for(lambda: len(attempts(emu, "toy-fn")) == 2 and emu.scf.idle(), what="both firings")
        assert [r["outcome"] for r in attempts(emu, "toy-fn")] == ["ok", "ok"]


def test_create_trigger_refuses_retired_types_with_tencents_code(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(emu, tmp_path, RECORD)
    for type_ in ("cmq", "apigw", "mps"):
        with pytest.raises(TencentCloudSDKException) as err:
            call(
                emu, "CreateTrigger", {"FunctionName": "toy-fn", "TriggerName": "t", "Type": type_, "TriggerDesc": "{}"}
            )
        assert err.value.code == "InvalidParameterValue.Type"
    with pytest.raises(TencentCloudSDKException) as err:
        call(
            emu,
            "CreateTrigger",
            {"FunctionName": "toy-fn", "TriggerName": "bad", "Type": "timer", "TriggerDesc": "61 * * * * * *"},
        )
    assert err.value.code == "InvalidParameterValue.TriggerDesc"
    info = call(
        emu,
        "CreateTrigger",
        {
            "FunctionName": "toy-fn",
            "TriggerName": "minutely",
            "Type": "timer",
            "TriggerDesc": "0 */1 * * * * *",
            "Enable": "OPEN",
        },
    )["TriggerInfo"]
    assert info["Type"] == "timer" and info["Enable"] == 1
    with pytest.raises(TencentCloudSDKException) as err:
        call(
            emu,
            "CreateTrigger",
            {"FunctionName": "toy-fn", "TriggerName": "minutely", "Type": "timer", "TriggerDesc": "0 */1 * * * * *"},
        )
    assert err.value.code == "ResourceInUse.Trigger"
    listed = call(emu, "ListTriggers", {"FunctionName": "toy-fn"})
    assert [t["TriggerName"] for t in listed["Triggers"]] == ["minutely"]
    assert call(emu, "GetFunction", {"FunctionName": "toy-fn"})["Triggers"][0]["TriggerName"] == "minutely"
    call(emu, "DeleteTrigger", {"FunctionName": "toy-fn", "TriggerName": "minutely", "Type": "timer"})
    assert call(emu, "ListTriggers", {"FunctionName": "toy-fn"})["TotalCount"] == 0
    names = [f["FunctionName"] for f in call(emu, "ListFunctions", {})["Functions"]]
    assert names == ["toy-fn"]


URL_FN = """
    import base64, json

    def main_handler(event, context):
        route = event["path"]
        if route == "/echo":
            return {"statusCode": 201, "headers": {"X-Echo": "yes", "Set-Cookie": ["a=1", "b=2"]},
                    "body": json.dumps(event), "isBase64Encoded": False}
        if route == "/binary":
            return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                    "body": base64.b64encode(bytes(range(5))).decode(), "isBase64Encoded": True}
        if route == "/plain-dict":
            return {"answer": 42}
        raise RuntimeError("no route " + route)
"""


def _request(
    url: str, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.body = resp.read()  # type: ignore[attr-defined]
    conn.close()
    return resp


def test_function_url_maps_requests_and_answers(emu: Emulator, tmp_path: Path) -> None:
    deployment = deploy_toy(
        emu,
        tmp_path,
        URL_FN,
        triggers=[{"type": "http", "function": "toy", "parameters": {"name": "url", "authType": "NONE"}}],
    )
    url = deployment.urls["toy"]
    assert url.startswith("http://127.0.0.1:")
    resp = _request(
        url, "POST", "/echo?a=1&a=2&b=x", b'{"k": "v"}', {"Content-Type": "application/json", "X-Custom": "c1"}
    )
    assert resp.status == 201 and resp.getheader("X-Echo") == "yes"
    assert resp.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    event = json.loads(resp.body)  # type: ignore[attr-defined]
    assert event["httpMethod"] == "POST" and event["path"] == "/echo" and event["body"] == '{"k": "v"}'
    assert event["queryString"] == {"a": ["1", "2"], "b": "x"} and event["isBase64Encoded"] is False
    assert event["headers"]["x-custom"] == "c1" and event["headers"]["x-scf-remote-addr"] == "127.0.0.1"
    assert event["requestContext"]["sourceIp"] == "127.0.0.1"

    raw = bytes([0, 159, 255, 1])
    resp = _request(url, "POST", "/echo", raw, {"Content-Type": "application/octet-stream"})
    event = json.loads(resp.body)  # type: ignore[attr-defined]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw

    resp = _request(url, "GET", "/binary")
    assert resp.status == 200 and resp.body == bytes(range(5))  # type: ignore[attr-defined]
    resp = _request(url, "GET", "/plain-dict")
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    assert json.loads(resp.body) == {"answer": 42}  # type: ignore[attr-defined]
    resp = _request(url, "GET", "/missing")
    assert resp.status == 502 and json.loads(resp.body)["errorMessage"] == "no route /missing"  # type: ignore
    assert [r["source"] for r in attempts(emu, "toy-fn")] == ["http"] * 5
    trigger = call(emu, "ListTriggers", {"FunctionName": "toy-fn"})["Triggers"][0]
    assert trigger["Type"] == "http" and trigger["TriggerUrl"] == url


def test_eventbridge_rule_routes_cloudaudit_create_image_to_the_function(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(emu, tmp_path, RECORD)
    eb = client(emu, EbClient)
    buses = eb.call_json("ListEventBuses", {})["Response"]["EventBuses"]
    default = next(b["EventBusId"] for b in buses if b["EventBusName"] == "default")
    pattern = (ROOT / "deploy" / "eventbridge-pattern.json").read_text()
    rule_id = eb.call_json(
        "CreateRule", {"EventBusId": default, "RuleName": "create-image", "EventPattern": pattern, "Enable": True}
    )["Response"]["RuleId"]
    target = {
        "ResourceDescription": "qcs::scf:ap-guangzhou:uin/100000000001:namespace/default/function/toy-fn/$DEFAULT",
        "SCFParams": {"EnableBatchDelivery": False},
    }
    eb.call_json("CreateTarget", {"EventBusId": default, "RuleId": rule_id, "Type": "scf", "TargetDescription": target})
    cvm = client(emu, CvmClient)
    cvm.call_json("CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": "routed-image"})
    with pytest.raises(TencentCloudSDKException):  # a failed CreateImage: errorCode != 0, not routed
        cvm.call_json("CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": "routed-image"})
    cvm.call_json("ModifyImageAttribute", {"ImageId": "img-5ddkx3gh", "ImageName": "renamed"})  # not audited
    wait_for(lambda: attempts(emu, "toy-fn"), what="the routed event")
    emu.admin.advance(600)
    wait_for(emu.scf.idle, what="the queue to drain")
    [delivered] = _events(emu)
    event = delivered["event"]
    assert event["type"] == "cvm:CloudEvent:ApiCall" and event["source"] == "cvm.cloud.tencent"
    assert event["data"]["eventName"] == "CreateImage" and event["data"]["errorCode"] == 0
    assert json.loads(event["data"]["requestParameters"])["ImageName"] == "routed-image"
    [run] = attempts(emu, "toy-fn")
    assert run["source"] == "eventbridge" and run["invocation_type"] == "Event"
    # The same event is still recorded for the admin handle.
    assert [e["data"]["errorCode"] for e in emu.admin.drain_audit_events()] == [0, 1]


def test_eventbridge_put_events_to_a_custom_bus(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(emu, tmp_path, RECORD)
    eb = client(emu, EbClient)
    bus = eb.call_json("CreateEventBus", {"EventBusName": "completions"})["Response"]["EventBusId"]
    pattern = json.dumps({"source": ["imagesync.toy"], "data": {"state": [{"prefix": "SUCC"}]}})
    rule = eb.call_json("CreateRule", {"EventBusId": bus, "RuleName": "done", "EventPattern": pattern})
    eb.call_json(
        "CreateTarget",
        {
            "EventBusId": bus,
            "RuleId": rule["Response"]["RuleId"],
            "Type": "scf",
            "TargetDescription": {
                "ResourceDescription": "qcs::scf:ap-guangzhou:uin/1:namespace/default/function/toy-fn/$DEFAULT"
            },
        },
    )
    events = [
        {"Source": "imagesync.toy", "Type": "done", "Subject": "r-1", "Data": json.dumps({"state": s})}
        for s in ("SUCCEEDED", "FAILED")
    ]
    eb.call_json("PutEvents", {"EventBusId": bus, "EventList": events})
    wait_for(lambda: attempts(emu, "toy-fn"), what="the routed event")
    [delivered] = _events(emu)
    assert delivered["event"]["data"] == {"state": "SUCCEEDED"} and delivered["event"]["subject"] == "r-1"
    with pytest.raises(TencentCloudSDKException) as err:
        eb.call_json("CreateRule", {"EventBusId": bus, "RuleName": "bad", "EventPattern": '{"source": "x"}'})
    assert err.value.code == "InvalidParameterValue.EventPattern"


def test_eventbridge_list_rules_and_targets_read_back_what_was_created(emu: Emulator, tmp_path: Path) -> None:
    """ListRules / ListTargets (what `imagesync deploy-steps` reads before creating), parsed by the SDK's models."""
    from tencentcloud.eb.v20210416 import models

    deploy_toy(emu, tmp_path, RECORD)
    eb = client(emu, EbClient)
    bus = eb.call_json("CreateEventBus", {"EventBusName": "listed"})["Response"]["EventBusId"]
    rule_id = eb.call_json(
        "CreateRule", {"EventBusId": bus, "RuleName": "one", "Description": "d", "EventPattern": '{"source": ["x"]}'}
    )["Response"]["RuleId"]
    resource = "qcs::scf:ap-guangzhou:uin/1:namespace/default/function/toy-fn/$DEFAULT"
    target_id = eb.call_json(
        "CreateTarget",
        {"EventBusId": bus, "RuleId": rule_id, "Type": "scf", "TargetDescription": {"ResourceDescription": resource}},
    )["Response"]["TargetId"]
    rules = models.ListRulesResponse()
    rules._deserialize(eb.call_json("ListRules", {"EventBusId": bus, "Limit": 100})["Response"])
    [rule] = rules.Rules
    assert (rules.TotalCount, rule.RuleId, rule.RuleName, rule.Enable, rule.Description) == (
        1,
        rule_id,
        "one",
        True,
        "d",
    )
    assert [(t.TargetId, t.Type) for t in rule.Targets] == [(target_id, "scf")]
    targets = models.ListTargetsResponse()
    targets._deserialize(eb.call_json("ListTargets", {"EventBusId": bus, "RuleId": rule_id})["Response"])
    [target] = targets.Targets
    assert (target.TargetId, target.RuleId, target.TargetDescription.ResourceDescription) == (
        target_id,
        rule_id,
        resource,
    )
    default = eb.call_json("ListRules", {"EventBusId": "eb-default"})["Response"]
    assert default == {"Rules": [], "TotalCount": 0, "RequestId": default["RequestId"]}
    for params, code in (
        ({"EventBusId": bus, "Limit": 101}, "InvalidParameterValue"),
        ({"EventBusId": "eb-nope"}, "ResourceNotFound.EventBus"),
    ):
        with pytest.raises(TencentCloudSDKException) as err:
            eb.call_json("ListRules", params)
        assert err.value.code.startswith(code)
    with pytest.raises(TencentCloudSDKException) as err:
        eb.call_json("ListTargets", {"EventBusId": bus, "RuleId": "rule-nope"})
    assert err.value.code == "ResourceNotFound.Rule"
