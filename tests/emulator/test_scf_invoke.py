"""The emulated SCF runs toy functions in warm worker processes, driven through the official scf client."""

from __future__ import annotations

import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312 import models as cvm_models
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.tdmq.v20200217.tdmq_client import TdmqClient

from imagesync_emulator import Emulator

from .conftest import client
from .scf_toys import admin, attempts, call, deploy_toy, invoke, wait_for, write_package

pytestmark = pytest.mark.slow  # each test starts Python worker processes

ECHO = """
    import json, os, sys

    def main_handler(event, context):
        print("hello from", context["function_name"])
        print("to stderr", file=sys.stderr)
        return {"event": event, "context": context, "pid": os.getpid(), "cwd": os.getcwd(), "path": sys.path[:2],
                "env": {k: v for k, v in os.environ.items()}}
"""


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(time_scale=0.0) as e:  # a frozen clock: tests step it
        yield e


def test_sync_invoke_cold_then_warm_with_scf_layout(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(
        emu, tmp_path, ECHO, functions={"toy": {"environment": [{"key": "GREETING", "value": "hi"}], "memorySize": 256}}
    )
    first = invoke(emu, "toy-fn", {"n": 1})
    second = invoke(emu, "toy-fn", {"n": 2})
    assert first.InvokeResult == 0 and first.ErrMsg == ""
    out1, out2 = json.loads(first.RetMsg), json.loads(second.RetMsg)
    assert out1["event"] == {"n": 1} and out2["event"] == {"n": 2}
    assert out1["pid"] == out2["pid"]  # the same warm instance
    assert "hello from toy-fn" in first.Log and "to stderr" in first.Log
    ctx, env = out1["context"], out1["env"]
    assert ctx["function_name"] == "toy-fn" and ctx["namespace"] == "default"
    assert ctx["memory_limit_in_mb"] == 256 and ctx["time_limit_in_ms"] == 10000
    assert ctx["request_id"] == first.FunctionRequestId
    assert json.loads(ctx["environment"])["GREETING"] == "hi" and "GREETING=hi" in ctx["environ"].split(";")
    assert ctx["tencentcloud_uin"] == env["TENCENTCLOUD_UIN"] and ctx["tencentcloud_region"] == "ap-guangzhou"
    code, opt = Path(out1["path"][0]), Path(out1["path"][1])
    assert Path(out1["cwd"]) == code and (code / "index.py").is_file() and opt.is_dir()
    assert env["SCF_FUNCTIONNAME"] == "toy-fn" and env["SCF_RUNTIME"] == "Python3.10"
    assert env["TENCENTCLOUD_RUNENV"] == "SCF" and env["GREETING"] == "hi" and "TRIGGER_SRC" not in env
    assert env["IMAGESYNC_TENCENT_ENDPOINT"] == emu.endpoint
    runs = attempts(emu, "toy-fn")
    assert [r["cold"] for r in runs] == [True, False] and all(r["outcome"] == "ok" for r in runs)
    # The role's keys are TEMPORARY: the emulator takes them with their token, and refuses them without it.
    keys = env["TENCENTCLOUD_SECRETID"], env["TENCENTCLOUD_SECRETKEY"], env["TENCENTCLOUD_SESSIONTOKEN"]
    cvm = client(emu, CvmClient, secret_id=keys[0], secret_key=keys[1], token=keys[2])
    assert cvm.DescribeImages(cvm_models.DescribeImagesRequest()).TotalCount >= 1
    with pytest.raises(TencentCloudSDKException) as err:
        client(emu, CvmClient, secret_id=keys[0], secret_key=keys[1]).DescribeImages(cvm_models.DescribeImagesRequest())
    assert err.value.code == "AuthFailure.TokenFailure"


def test_function_error_is_the_invocation_result(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(
        emu,
        tmp_path,
        """
        def main_handler(event, context):
            raise ValueError("bad input " + str(event["n"]))
    """,
    )
    result = invoke(emu, "toy-fn", {"n": 7})
    assert result.InvokeResult == -1 and result.RetMsg == ""
    err = json.loads(result.ErrMsg)
    assert err["errorMessage"] == "bad input 7" and "ValueError" in err["stackTrace"]
    assert "ValueError: bad input 7" in result.Log
    assert attempts(emu, "toy-fn")[0]["outcome"] == "error"


def test_unknown_function_and_bad_invocation_type(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(emu, tmp_path, ECHO)
    with pytest.raises(TencentCloudSDKException) as err:
        invoke(emu, "nope", {})
    assert err.value.code == "ResourceNotFound.Function"
    with pytest.raises(TencentCloudSDKException) as err:
        invoke(emu, "toy-fn", {}, invocation_type="Later")
    assert err.value.code == "InvalidParameterValue.InvokeType"
    with pytest.raises(TencentCloudSDKException) as err:  # an async event holds at most 128 KB
        invoke(emu, "toy-fn", {"blob": "x" * 140_000}, invocation_type="Event")
    assert err.value.code == "InvalidParameter.RequestTooLarge"


def test_overlapping_invocations_get_two_workers(emu: Emulator, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    deploy_toy(
        emu,
        tmp_path,
        f"""
        import os, time
        GATE = {str(gate)!r}

        def main_handler(event, context):
            open(os.path.join(GATE, str(os.getpid())), "w").close()
            deadline = time.monotonic() + 60
            while len(os.listdir(GATE)) < 2 and time.monotonic() < deadline:  # both must be running at once
                time.sleep(0.02)
            return {{"pid": os.getpid(), "together": len(os.listdir(GATE)) >= 2}}
    """,
        functions={"toy": {"timeout": 300}},
    )
    results: list[dict] = []
    threads = [
        threading.Thread(target=lambda: results.append(json.loads(invoke(emu, "toy-fn", {}).RetMsg))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 and all(r["together"] for r in results)
    assert results[0]["pid"] != results[1]["pid"]
    assert [r["cold"] for r in attempts(emu, "toy-fn")] == [True, True]


def test_async_invoke_returns_at_once_and_runs(emu: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    deploy_toy(
        emu,
        tmp_path,
        f"""
        def main_handler(event, context):
            with open({str(out)!r}, "a") as f:
                f.write(event["msg"] + "\\n")
            return "done"
    """,
    )
    result = invoke(emu, "toy-fn", {"msg": "queued"}, invocation_type="Event")
    assert result.FunctionRequestId and result.RetMsg == ""
    wait_for(lambda: attempts(emu, "toy-fn"), what="the async invocation")
    [run] = attempts(emu, "toy-fn")
    assert (
        run["invocation_type"] == "Event" and run["outcome"] == "ok" and run["request_id"] == result.FunctionRequestId
    )
    assert out.read_text() == "queued\n"
    assert emu.scf.idle()


def test_timeout_kills_the_worker_and_the_async_event_is_retried(emu: Emulator, tmp_path: Path) -> None:
    marker, out = tmp_path / "first-attempt", tmp_path / "done.txt"
    deploy_toy(
        emu,
        tmp_path,
        f"""
        import os, time

        def main_handler(event, context):
            if not os.path.exists({str(marker)!r}):
                open({str(marker)!r}, "w").close()
                time.sleep(120)  # past the 3 s timeout: killed
            with open({str(out)!r}, "a") as f:
                f.write(event["id"] + "\\n")
            return "ok"
    """,
        functions={"toy": {"timeout": 3}},
    )  # 3 s: ample for the retry's cold start on a loaded machine
    sync = invoke(emu, "toy-fn", {"id": "sync"})  # the first call times out
    assert sync.InvokeResult == -1 and "timed out" in json.loads(sync.ErrMsg)["errorMessage"]
    [first] = attempts(emu, "toy-fn")
    assert first["outcome"] == "timeout"
    assert first["worker_pid"] not in emu.admin.scf_workers("toy-fn")["idle"]  # the instance was killed
    marker.unlink()
    invoke(emu, "toy-fn", {"id": "async"}, invocation_type="Event")
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 2, what="the first async attempt")
    assert attempts(emu, "toy-fn")[1]["outcome"] == "timeout"
    assert emu.admin.scf_pending()[0]["attempts"] == 1  # queued again, a minute later on the emulated clock
    emu.admin.advance(60)
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 3, what="the retry")
    retry = attempts(emu, "toy-fn")[2]
    assert retry["outcome"] == "ok" and retry["attempt"] == 2 and retry["cold"]
    assert out.read_text() == "async\n"  # once, not doubled
    assert emu.scf.idle() and not emu.admin.scf_dead_letters()


def test_worker_killed_mid_invocation_is_retried(emu: Emulator, tmp_path: Path) -> None:
    started, out = tmp_path / "started", tmp_path / "done.txt"
    deploy_toy(
        emu,
        tmp_path,
        f"""
        import os, time

        def main_handler(event, context):
            if not os.path.exists({str(started)!r}):
                open({str(started)!r}, "w").close()
                time.sleep(120)  # killed by the test meanwhile
            with open({str(out)!r}, "a") as f:
                f.write(context["request_id"] + "\\n")
    """,
        functions={"toy": {"timeout": 300}},
    )  # never the timeout, however slow the machine
    request_id = invoke(emu, "toy-fn", {}, invocation_type="Event").FunctionRequestId
    wait_for(started.exists, what="the first attempt to start")
    pid = admin(emu, "scf_kill_worker", function="toy-fn")
    assert pid
    wait_for(lambda: attempts(emu, "toy-fn"), what="the killed attempt to end")
    assert attempts(emu, "toy-fn")[0]["outcome"] == "killed"
    emu.admin.advance(60)
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 2, what="the retry")
    runs = admin(emu, "scf_invocations", function="toy-fn")
    assert [(r["attempt"], r["outcome"], r["request_id"]) for r in runs] == [
        (1, "killed", request_id),
        (2, "ok", request_id),
    ]
    assert out.read_text() == request_id + "\n"


def test_failing_async_event_is_dead_lettered_after_retry_num(emu: Emulator, tmp_path: Path) -> None:
    client(emu, TdmqClient).call_json("CreateCmqQueue", {"QueueName": "toy-dlq"})
    deploy_toy(
        emu,
        tmp_path,
        """
        def main_handler(event, context):
            raise RuntimeError("always fails")
    """,
        functions={"toy": {"deadLetterConfig": {"type": "QUEUE", "name": "toy-dlq"}}},
    )
    call(
        emu,
        "UpdateFunctionEventInvokeConfig",
        {"FunctionName": "toy-fn", "AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": 1}], "MsgTTL": 3600}},
    )
    assert call(emu, "GetFunctionEventInvokeConfig", {"FunctionName": "toy-fn"})["AsyncTriggerConfig"] == {
        "RetryConfig": [{"RetryNum": 1}],
        "MsgTTL": 3600,
    }
    request_id = invoke(emu, "toy-fn", {"job": 42}, invocation_type="Event").FunctionRequestId
    wait_for(lambda: attempts(emu, "toy-fn"), what="attempt 1")
    assert not emu.admin.scf_dead_letters()
    emu.admin.advance(60)
    wait_for(emu.admin.scf_dead_letters, what="the dead letter")
    assert [r["outcome"] for r in attempts(emu, "toy-fn")] == ["error", "error"]  # 1 + RetryNum attempts
    [dead] = admin(emu, "scf_dead_letters")
    assert dead["request_id"] == request_id and dead["attempts"] == 2 and dead["delivered"]
    [msg] = emu.admin.drain_messages("toy-dlq")
    body = json.loads(msg["body"])
    assert body["RequestId"] == request_id and "always fails" in body["ErrorMessage"]
    assert json.loads(body["Body"]["ClientContext"]) == {"job": 42} and body["Body"]["FunctionName"] == "toy-fn"
    emu.admin.advance(600)
    assert len(attempts(emu, "toy-fn")) == 2 and emu.scf.idle()  # nothing more


def test_event_invoke_config_limits(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(emu, tmp_path, ECHO)
    for config, code in (
        ({"RetryConfig": [{"RetryNum": 3}]}, "LimitExceeded.RetryNum"),
        ({"MsgTTL": 10}, "LimitExceeded.MsgTTL"),
        ({"RetryConfig": {"RetryNum": 1}}, "InvalidParameterValue.AsyncTriggerConfig"),
    ):
        with pytest.raises(TencentCloudSDKException) as err:
            call(emu, "UpdateFunctionEventInvokeConfig", {"FunctionName": "toy-fn", "AsyncTriggerConfig": config})
        assert err.value.code == code
    assert call(emu, "GetFunctionEventInvokeConfig", {"FunctionName": "toy-fn"})["AsyncTriggerConfig"] == {
        "RetryConfig": [{"RetryNum": 2}],
        "MsgTTL": 21600,
    }


def test_update_function_configuration_restarts_instances_cold(emu: Emulator, tmp_path: Path) -> None:
    deploy_toy(emu, tmp_path, ECHO)
    before = json.loads(invoke(emu, "toy-fn", {}).RetMsg)
    with pytest.raises(TencentCloudSDKException) as err:  # refused as a whole: the valid Timeout is not applied
        call(emu, "UpdateFunctionConfiguration", {"FunctionName": "toy-fn", "Timeout": 20, "MemorySize": 100})
    assert err.value.code == "InvalidParameterValue.MemorySize"
    with pytest.raises(TencentCloudSDKException) as err:
        call(
            emu,
            "UpdateFunctionConfiguration",
            {"FunctionName": "toy-fn", "DeadLetterConfig": {"Type": "KAFKA", "Name": "x"}},
        )
    assert err.value.code == "InvalidParameterValue.DeadLetterConfig"
    call(
        emu,
        "UpdateFunctionConfiguration",
        {
            "FunctionName": "toy-fn",
            "Timeout": 20,
            "Environment": {"Variables": [{"Key": "MODE", "Value": "new"}]},
            "DeadLetterConfig": {"Type": "topic", "Name": "dead"},
        },
    )
    got = call(emu, "GetFunction", {"FunctionName": "toy-fn"})
    assert got["Timeout"] == 20 and got["DeadLetterConfig"] == {"Type": "TOPIC", "Name": "dead", "FilterType": ""}
    after = json.loads(invoke(emu, "toy-fn", {}).RetMsg)
    assert after["env"]["MODE"] == "new" and after["context"]["time_limit_in_ms"] == 20000
    assert after["pid"] != before["pid"] and attempts(emu, "toy-fn")[-1]["cold"]
    with pytest.raises(TencentCloudSDKException) as err:
        call(
            emu,
            "UpdateFunctionConfiguration",
            {"FunctionName": "toy-fn", "Environment": {"Variables": [{"Key": "SCF_X", "Value": "1"}]}},
        )
    assert err.value.code == "InvalidParameterValue.EnvironmentSystemProtect"


def _sdk_layer(path: Path) -> Path:
    """A layer zip with the official SDK (common + scf) and its HTTP stack, taken from this venv."""
    import requests
    import tencentcloud

    site = Path(requests.__file__).parents[1]
    with zipfile.ZipFile(path, "w") as z:
        for package in ("requests", "urllib3", "idna", "certifi", "charset_normalizer"):
            for file in (site / package).rglob("*"):
                if file.is_file() and "__pycache__" not in file.parts:
                    z.write(file, file.relative_to(site))
        root = Path(tencentcloud.__file__).parent
        for sub in ("__init__.py", "common", "scf"):
            for file in [root / sub] if sub.endswith(".py") else (root / sub).rglob("*"):
                if file.is_file() and "__pycache__" not in file.parts:
                    z.write(file, file.relative_to(site))
    return path


CALLER = """
    import json, os
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.scf.v20180416.scf_client import ScfClient

    def main_handler(event, context):
        if context["function_name"] == "callee-fn":
            return {"got": event}
        endpoint = os.environ["IMAGESYNC_TENCENT_ENDPOINT"].split("://", 1)[1]
        cred = credential.Credential(os.environ["TENCENTCLOUD_SECRETID"], os.environ["TENCENTCLOUD_SECRETKEY"],
                                     os.environ["TENCENTCLOUD_SESSIONTOKEN"])
        scf = ScfClient(cred, os.environ["TENCENTCLOUD_REGION"],
                        ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint)))
        sync = scf.call_json("Invoke", {"FunctionName": "callee-fn", "ClientContext": json.dumps({"n": 1})})
        queued = scf.call_json("Invoke", {"FunctionName": "callee-fn", "InvocationType": "Event",
                                          "ClientContext": json.dumps({"n": 2})})
        return {"sync": json.loads(sync["Response"]["Result"]["RetMsg"]),
                "queued": queued["Response"]["Result"]["FunctionRequestId"]}
"""


def test_a_function_invokes_another_with_its_role_keys(emu: Emulator, tmp_path: Path) -> None:
    """The completion link's mechanics: a function calls scf Invoke (sync and Event) with the temporary keys SCF
    gave it, through the official SDK in its layer; nothing deadlocks while the caller waits."""
    layer = _sdk_layer(tmp_path / "sdk.zip")
    path = write_package(
        tmp_path,
        CALLER,
        functions={
            "caller": {"layers": [{"name": "sdk", "version": 1}], "timeout": 120},
            "callee": {"layers": [{"name": "sdk", "version": 1}]},
        },
    )
    emu.deploy(path, env={}, layers=layer)
    out = json.loads(invoke(emu, "caller-fn", {}).RetMsg)
    assert out["sync"] == {"got": {"n": 1}}
    wait_for(lambda: len(attempts(emu, "callee-fn")) == 2, what="the queued invocation")
    runs = attempts(emu, "callee-fn")
    assert [(r["invocation_type"], r["outcome"]) for r in runs] == [("RequestResponse", "ok"), ("Event", "ok")]
    assert runs[1]["request_id"] == out["queued"] and runs[1]["result"] == {"got": {"n": 2}}
    invokes = emu.admin.calls("Invoke")
    assert len(invokes) == 3 and all(c["outcome"] == "ok" for c in invokes)  # the test's own, and the two


def test_a_scaled_timeout_is_the_deadline_the_function_sees(tmp_path: Path) -> None:
    """scf_timeout_scale shortens the real time an instance may run; the context's time_limit_in_ms says the same,
    so a function that stops itself before its deadline (imagesync's sweep, its claims) stops before the kill."""
    with Emulator(time_scale=0.0, scf_timeout_scale=0.5) as emu:
        deploy_toy(emu, tmp_path, ECHO)  # timeout 10 s declared
        ctx = json.loads(invoke(emu, "toy-fn", {}).RetMsg)["context"]
        assert ctx["time_limit_in_ms"] == 5000
        assert call(emu, "GetFunction", {"FunctionName": "toy-fn"})["Timeout"] == 10  # the declared value


def test_an_attempt_shows_its_outcome_only_once_its_next_step_is_settled(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed attempt's outcome shows only with its retry scheduled (and the last one's only with its dead letter
    sent): a reader acting on the outcome, e.g. stepping the clock to the retry, never races the bookkeeping. The
    pause below is a thread descheduled between the end of the run and the bookkeeping, as on a busy machine: when
    the outcome showed first, a step made then put the retry a minute after the STEPPED time, never due."""
    from imagesync_emulator.scf.runtime import ScfRuntime

    run = ScfRuntime._run

    def descheduled(self: ScfRuntime, *args: Any, **kwargs: Any) -> Any:
        ended = run(self, *args, **kwargs)
        time.sleep(0.5)
        return ended

    monkeypatch.setattr(ScfRuntime, "_run", descheduled)
    deploy_toy(
        emu,
        tmp_path,
        """
        def main_handler(event, context):
            raise RuntimeError("always fails")
    """,
    )
    call(
        emu,
        "UpdateFunctionEventInvokeConfig",
        {"FunctionName": "toy-fn", "AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": 1}], "MsgTTL": 3600}},
    )
    invoke(emu, "toy-fn", {}, invocation_type="Event")
    wait_for(lambda: attempts(emu, "toy-fn"), what="attempt 1")
    [event] = emu.admin.scf_pending()
    assert not event["running"] and event["due_at"] == emu.admin.now() + 60  # the retry, a minute on
    emu.admin.advance(60)
    wait_for(lambda: len(attempts(emu, "toy-fn")) == 2, what="the retry")
    assert len(emu.admin.scf_dead_letters()) == 1 and emu.scf.idle()  # shown with the last outcome
