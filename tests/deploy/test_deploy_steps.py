"""`imagesync deploy-steps`: every call it makes is a valid request of the official SDK (checked against the request
models), in the right order, reading deploy/*.json; a second run reuses what exists. The cloud is a recording fake
at the TencentCloud.call seam (the emulator's scf and EventBridge rule services are being built in parallel)."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest

from imagesync.deploy_steps import main

MODELS = {"scf": "tencentcloud.scf.v20180416.models", "eb": "tencentcloud.eb.v20210416.models"}


def _check(product: str, action: str, params: dict[str, Any]) -> None:
    """Every key is a field of the SDK's request model (recursively), and the SDK's own parser takes it."""
    models = importlib.import_module(MODELS[product])
    request = getattr(models, f"{action}Request")()
    fields = {k.lstrip("_") for k in vars(request)}
    assert set(params) <= fields, f"{action}: {set(params) - fields} are not request fields"
    request.from_json_string(json.dumps(params))  # warns (not raises) on unknown nested keys: check those too
    for key, value in params.items():
        if isinstance(value, dict):
            nested = getattr(request, key)
            assert set(value) <= {k.lstrip("_") for k in vars(nested)}, f"{action}.{key}: {value}"


class Cloud:
    """Records calls; answers like EventBridge/SCF would, remembering what was created."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.buses = [{"EventBusName": "default", "EventBusId": "eb-cloudsvc"}]
        self.rules: list[dict[str, Any]] = []
        self.targets: list[dict[str, Any]] = []

    def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> dict[str, Any]:
        assert region == "ap-shanghai" and safe
        _check(product, action, params)
        self.calls.append((product, action, params))
        if action == "ListEventBuses":
            return {"EventBuses": self.buses}
        if action == "CreateEventBus":
            self.buses.append({"EventBusName": params["EventBusName"], "EventBusId": "eb-completions"})
            return {"EventBusId": "eb-completions"}
        if action == "ListRules":
            return {"Rules": [r for r in self.rules if r["EventBusId"] == params["EventBusId"]]}
        if action == "CreateRule":
            self.rules.append({**params, "RuleId": f"rule-{len(self.rules)}"})
            return {"RuleId": self.rules[-1]["RuleId"]}
        if action == "ListTargets":
            return {"Targets": [t for t in self.targets if t["RuleId"] == params["RuleId"]]}
        if action == "CreateTarget":
            self.targets.append(params)
            return {"TargetId": f"target-{len(self.targets)}"}
        return {}


ARGS = ["--region", "ap-shanghai", "--uin", "100000000001"]


def test_scf_async_link_steps(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = Cloud()
    assert main([*ARGS, "--dead-letter"], cloud=cloud) == 0
    actions = [(p, a) for p, a, _ in cloud.calls]
    assert actions[:4] == [("scf", "UpdateFunctionEventInvokeConfig")] * 3 + [("scf", "UpdateFunctionConfiguration")]
    invoke_configs = {c[2]["FunctionName"]: c[2]["AsyncTriggerConfig"] for c in cloud.calls[:3]}
    assert set(invoke_configs) == {"imagesync-copy_request", "imagesync-status_sweep", "imagesync-completion_hook"}
    assert all(c == {"RetryConfig": [{"RetryNum": 2}], "MsgTTL": 21600} for c in invoke_configs.values())
    dead = cloud.calls[3][2]
    assert dead["FunctionName"] == "imagesync-completion_hook" and dead["DeadLetterConfig"]["Type"] == "queue"
    [rule] = cloud.rules
    assert rule["EventBusId"] == "eb-cloudsvc" and json.loads(rule["EventPattern"])["data"]["eventName"] == [
        "CreateImage",
        "DeleteImages",
    ]
    [target] = cloud.targets
    assert target["TargetDescription"]["ResourceDescription"] == (
        "qcs::scf:ap-shanghai:uin/100000000001:namespace/default/function/imagesync-copy_request/$DEFAULT"
    )
    assert ("eb", "PutEvents") not in actions and ("eb", "CreateEventBus") not in actions
    assert json.loads(capsys.readouterr().out)["create_image_rule_id"] == "rule-0"


def test_eventbridge_link_steps_and_a_second_run_reuses_everything(capsys: pytest.CaptureFixture[str]) -> None:
    cloud = Cloud()
    assert main([*ARGS, "--link", "eventbridge", "--function-prefix", "prod-"], cloud=cloud) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["IMAGESYNC_EVENT_BUS_ID"] == "eb-completions"
    completions = [t for t in cloud.targets if t["EventBusId"] == "eb-completions"]
    assert [t["TargetDescription"]["ResourceDescription"] for t in completions] == [
        "qcs::scf:ap-shanghai:uin/100000000001:namespace/default/function/prod-completion_hook/$DEFAULT"
    ]
    rule = next(r for r in cloud.rules if r["EventBusId"] == "eb-completions")
    assert json.loads(rule["EventPattern"]) == {"source": ["imagesync.outbox"], "type": ["imagesync:Replica:Ended"]}
    created = len(cloud.rules), len(cloud.targets), len(cloud.buses)
    assert main([*ARGS, "--link", "eventbridge", "--function-prefix", "prod-"], cloud=cloud) == 0
    assert (len(cloud.rules), len(cloud.targets), len(cloud.buses)) == created  # nothing created twice


def test_missing_region_or_uin_is_refused(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    for name in ("REGION", "TENCENTCLOUD_REGION", "TENCENTCLOUD_UIN", "IMAGESYNC_UIN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["--uin", "1"], cloud=Cloud()) == 2
    assert main(["--region", "ap-shanghai"], cloud=Cloud()) == 2
    assert "--uin" in capsys.readouterr().err
    assert main(["--region", "ap-shanghai", "--no-create-image-rule"], cloud=Cloud()) == 0  # retries only


def test_a_refused_call_ends_with_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    from imagesync.domain.errors import CloudError

    class Refusing(Cloud):
        def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> Any:
            raise CloudError("ResourceNotFound.Function", "no such function")

    assert main(ARGS, cloud=Refusing()) == 1
    assert json.loads(capsys.readouterr().err)["error"]["code"] == "ResourceNotFound.Function"


def test_an_endpoint_without_the_list_actions_still_gets_its_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """An emulator that does not serve ListRules/ListTargets (InvalidAction): the steps create without looking."""
    from imagesync.domain.errors import CloudError

    class NoLists(Cloud):
        def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> Any:
            if action in ("ListRules", "ListTargets"):
                raise CloudError("InvalidAction", f"The action `{action}` is not found")
            return super().call(product, region, action, params, safe=safe)

    cloud = NoLists()
    assert main([*ARGS, "--link", "eventbridge"], cloud=cloud) == 0
    assert len(cloud.rules) == 2 and len(cloud.targets) == 2
    skipped = [d for d in json.loads(capsys.readouterr().out)["done"] if d.get("skipped")]
    assert {d["action"] for d in skipped} == {"eb:ListRules", "eb:ListTargets"}

    class Denied(Cloud):
        def call(self, product: str, region: str, action: str, params: dict[str, Any], *, safe: bool) -> Any:
            if action == "ListRules":
                raise CloudError("UnauthorizedOperation", "no")
            return super().call(product, region, action, params, safe=safe)

    assert main(ARGS, cloud=Denied()) == 1  # any other error is the deployer's to see
