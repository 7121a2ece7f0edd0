"""The deployment files, parsed and cross-checked against the code: serverless.yml against the functions that exist
and the settings they need; the CAM policy against the Tencent Cloud actions the code calls; the EventBridge and
SCF JSON against the official SDK's request models; docs/deploy.md against all of them.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesync.settings import Settings
from tests.deploy.test_package import package

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVERLESS = yaml.safe_load((ROOT / "serverless.yml").read_text())
INPUTS = SERVERLESS["inputs"]
FUNCTIONS = INPUTS["functions"]
DOC = (ROOT / "docs" / "deploy.md").read_text()

#: what every function must be told (SCF has no writable default: /var/user is read-only, so neither the SQLite
#: state table nor the local queue can be the default there), plus what each one needs for its own work
REQUIRED_ALL = {"IMAGESYNC_DATABASE_URL", "IMAGESYNC_AUTO_MIGRATE", "IMAGESYNC_QUEUE", "IMAGESYNC_COMPLETION_FUNCTION"}
REQUIRED = {
    "copy_request": {"IMAGESYNC_API_TOKEN"},
    "status_sweep": set(),
    "completion_hook": {"IMAGESYNC_WEBHOOK_URL", "IMAGESYNC_WEBHOOK_SECRET"},
}
SECRET = re.compile(r"SECRET|TOKEN|PASSWORD|DATABASE_URL")
ENV_REF = re.compile(r"^\$\{env:[A-Z_][A-Z0-9_]*\}$")
#: the SDK client of each product imagesync calls (service prefix in CAM = the product name)
CLIENTS = {
    "cvm": ("tencentcloud.cvm.v20170312.cvm_client", "CvmClient"),
    "region": ("tencentcloud.region.v20220627.region_client", "RegionClient"),
    "tag": ("tencentcloud.tag.v20180813.tag_client", "TagClient"),
    "scf": ("tencentcloud.scf.v20180416.scf_client", "ScfClient"),
    "eb": ("tencentcloud.eb.v20210416.eb_client", "EbClient"),
    "sts": ("tencentcloud.sts.v20180813.sts_client", "StsClient"),
}
#: CAM names an action by its API name, with one exception here: the scf API `Invoke` (sync or async) is authorised
#: as `scf:InvokeFunction` (SCF's CAM page, cloud.tencent.com/document/product/583/47934: "InvokeFunction: trigger
#: the function synchronously or asynchronously", a resource-level action)
CAM_NAMES = {"scf:Invoke": "scf:InvokeFunction"}
#: the one function the functions' role may invoke
COMPLETION_RESOURCE = "qcs::scf:${REGION}:uin/${TENCENTCLOUD_UIN}:namespace/default/function/imagesync-completion_hook"
#: the one function whose triggers the role may change (the sweep's schedule)
SWEEP_RESOURCE = "qcs::scf:${REGION}:uin/${TENCENTCLOUD_UIN}:namespace/default/function/imagesync-status_sweep"
#: actions granted on one function only, not on "*"
SCOPED = {"scf:InvokeFunction": [COMPLETION_RESOURCE], "scf:UpdateTrigger": [SWEEP_RESOURCE]}


def _env(function: str) -> dict[str, str]:
    return {item["key"]: str(item["value"]) for item in FUNCTIONS[function]["environment"]}


def _client_methods(product: str) -> set[str]:
    module, name = CLIENTS[product]
    client = getattr(importlib.import_module(module), name)
    return {m for m in vars(client) if m[:1].isupper()}


def _module_service(tree: ast.Module) -> str | None:
    """The product a module names at its top level, `SERVICE = "scf"` or `SERVICE, VERSION = "scf", "..."`."""
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, value = node.targets[0], node.value
        pairs = (
            zip(target.elts, value.elts, strict=False)
            if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple)
            else [(target, value)]
        )
        for name, constant in pairs:
            if isinstance(name, ast.Name) and name.id == "SERVICE" and isinstance(constant, ast.Constant):
                return str(constant.value)
    return None


def called_actions() -> set[str]:
    """Every Tencent Cloud action the shipped code calls, as "product:Action", read from the source:
    `cloud.call("<product>", region, "<Action>", ...)` anywhere, `client.call_json("<Action>", ...)` (the SDK's
    CommonClient) in a module that names its product in a module-level `SERVICE`, and in a module that imports
    exactly one product's SDK (e.g. a completion link), every name that is a method of that product's client."""
    found: set[str] = set()
    # Only what the functions ship (the package's import closure): dev tooling (CLI, demo, chaos runner) may call
    # more with a developer's own credentials, never with the functions' role.
    modules, _ = package.code_closure()
    for path in filter(None, (package._module_file(m) for m in modules)):
        tree = ast.parse(path.read_text())
        products = set()
        service = _module_service(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                products |= {m.group(1) for n in names if (m := re.match(r"tencentcloud\.(\w+)\.v\d+", n))}
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call":
                args = node.args
                if len(args) >= 3 and all(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) for a in (args[0], args[2])
                ):
                    found.add(f"{args[0].value}:{args[2].value}")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call_json":
                assert service, f"{path}: call_json without a module-level SERVICE naming its product"
                assert node.args and isinstance(node.args[0], ast.Constant), f"{path}: call_json's action not literal"
                found.add(f"{service}:{node.args[0].value}")
        if len(products) == 1:
            (product,) = products
            methods = _client_methods(product)
            for node in ast.walk(tree):
                name = (
                    node.attr
                    if isinstance(node, ast.Attribute)
                    else (node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None)
                )
                if name in methods:
                    found.add(f"{product}:{name}")
    return found


# -- serverless.yml ------------------------------------------------------------------------------------------------


def test_serverless_declares_exactly_the_functions_that_exist() -> None:
    assert SERVERLESS["component"] == "multi-scf"
    assert INPUTS["runtime"] == "Python3.10"
    existing = {p.parent.name for p in (ROOT / "functions").glob("*/index.py")}
    assert set(FUNCTIONS) == existing
    for key in existing:
        tree = ast.parse((ROOT / "functions" / key / "index.py").read_text())
        assert "main_handler" in {
            a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
        }
        module = importlib.import_module(f"imagesync.handlers.{key}")
        assert callable(module.main_handler)


def test_handlers_resolve_in_the_code_package(tmp_path: Path) -> None:
    """`<file>.main_handler` with <file>.py at the root of what `src` uploads (SCF: the entry file must be at the
    root of the zip) and that file being the function's index.py."""
    assert Path(INPUTS["src"]["src"]).resolve() == (ROOT / "dist" / "code").resolve()
    modules, _ = package.code_closure()
    package.stage_code(tmp_path, modules)
    for key, function in FUNCTIONS.items():
        file, _, attr = function["handler"].rpartition(".")
        assert attr == "main_handler" and "/" not in file
        assert (tmp_path / f"{file}.py").read_bytes() == (ROOT / "functions" / key / "index.py").read_bytes()


def test_each_function_has_its_own_runtime_inputs() -> None:
    """The component merges only namespace/runtime/description/code into a function: the rest must be per function."""
    for function in FUNCTIONS.values():
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]", function["name"]), function["name"]
        assert function["memorySize"] == 64 or function["memorySize"] in range(128, 3073, 128)
        assert 1 <= function["timeout"] <= 900
        assert function["role"] == "imagesync-scf-role"
        assert function["vpc"]["vpcId"] and function["vpc"]["subnetId"]
        assert [layer["name"] for layer in function["layers"]] == ["imagesync-deps"]
    for misplaced in ("memorySize", "timeout", "environment", "environments", "vpc", "layers", "role"):
        assert misplaced not in INPUTS, f"inputs.{misplaced} would not reach the functions"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_environment_names_real_settings_and_what_the_function_needs(function: str, monkeypatch: Any) -> None:
    env = _env(function)
    fields = {f"IMAGESYNC_{name.upper()}" for name in Settings.model_fields}
    for key, value in env.items():
        assert key in fields, f"{key} is not a Settings field"
        assert not key.startswith(("SCF_", "QCLOUD_", "TENCENTCLOUD_")), f"{key}: reserved prefix"
        if SECRET.search(key):
            assert ENV_REF.match(value), f"{key} must come from the deployer's environment, not be written here"
    assert REQUIRED_ALL | REQUIRED[function] <= set(env)
    assert env["IMAGESYNC_QUEUE"] == "scf-async" and env["IMAGESYNC_AUTO_MIGRATE"] == "false"
    assert env["IMAGESYNC_COMPLETION_FUNCTION"] == FUNCTIONS["completion_hook"]["name"]
    # SCF allows 4 KB of environment variables in all: count each ${env:...} as a generous 512 bytes
    size = sum(len(k) + (512 if ENV_REF.match(v) else len(v)) for k, v in env.items())
    assert size < 4096
    # the literal values validate as settings (an ${env:...} value gets a stand-in of its kind)
    for key, value in env.items():
        stand_in = {
            "IMAGESYNC_DATABASE_URL": "mysql+pymysql://u:p@10.0.0.2:3306/imagesync",
            "IMAGESYNC_HOOKS": '[{"type": "tag"}]',
        }.get(key, "x")
        monkeypatch.setenv(key, stand_in if ENV_REF.match(value) else value)
    settings = Settings()
    assert not settings.database_url.startswith("sqlite") and not settings.migrate_on_start


def test_triggers_point_at_declared_functions_with_valid_parameters() -> None:
    triggers = INPUTS["triggers"]
    assert {t["function"] for t in triggers} <= set(FUNCTIONS)
    assert sorted(t["type"] for t in triggers) == ["http", "timer", "timer"]  # no cmq: SCF no longer creates one
    timers = {t["parameters"]["name"]: t for t in triggers if t["type"] == "timer"}
    # the sweep's two timers (docs/deploy.md, "The sweep's schedule"): deployed off, armed by the functions
    for function in ("copy_request", "status_sweep"):
        env = _env(function)
        assert env["IMAGESYNC_SCHEDULER"] == "scf-timer"
        assert env["IMAGESYNC_SWEEP_FUNCTION"] == FUNCTIONS["status_sweep"]["name"]
        assert set(timers) == {env["IMAGESYNC_SWEEP_TIMER"], env["IMAGESYNC_SWEEP_SAFETY_TIMER"]}
    for timer in timers.values():
        assert timer["function"] == "status_sweep" and timer["parameters"]["enable"] is False  # nothing at rest
        cron = timer["parameters"]["cronExpression"].split()
        assert len(cron) == 7, "SCF's cron has 7 fields: second minute hour day month week year"
    safety = timers[_env("status_sweep")["IMAGESYNC_SWEEP_SAFETY_TIMER"]]["parameters"]["cronExpression"].split()
    assert safety[:3] == ["0", "0", "*"]  # once an hour at most
    assert FUNCTIONS["status_sweep"]["timeout"] <= 60
    http = next(t for t in triggers if t["type"] == "http")
    assert http["function"] == "copy_request" and http["parameters"]["netConfig"]["enableExtranet"] is True
    assert http["parameters"]["authType"] in ("NONE", "CAM")
    # completion_hook has no trigger of its own: status_sweep invokes it (IMAGESYNC_QUEUE=scf-async)
    assert "completion_hook" not in {t["function"] for t in triggers}


def test_no_retired_trigger_or_link_anywhere() -> None:
    """SCF's CreateTrigger takes cos, cls, timer, ckafka, http (scf SDK 3.1.100): no cmq trigger, and no TDMQ link
    in what is deployed or documented as a way to deploy."""
    for path in [ROOT / "serverless.yml", *DEPLOY.glob("*.json")]:
        text = path.read_text().lower()
        assert "type: cmq" not in text and "tdmq" not in text, path.name
    assert "--Type cmq" not in DOC and "IMAGESYNC_TDMQ_NAME" not in DOC and "PublishCmqMsg" not in DOC


# -- CAM -----------------------------------------------------------------------------------------------------------


def _granted(name: str) -> dict[str, list[str]]:
    """action -> resources, of deploy/<name>."""
    policy = json.loads((DEPLOY / name).read_text())
    assert policy["version"] == "2.0"
    granted: dict[str, list[str]] = {}
    for statement in policy["statement"]:
        assert statement["effect"] == "allow"
        for action in statement["action"]:
            assert action.startswith("name/") and "*" not in action, action
            assert action.removeprefix("name/") not in granted, f"{action} granted twice"
            granted[action.removeprefix("name/")] = statement["resource"]
    return granted


def test_cam_policy_grants_exactly_the_actions_the_code_calls() -> None:
    """deploy/cam-policy.json for the default link, plus deploy/cam-policy-eventbridge.json only for the EventBridge
    link: together exactly what the shipped code calls, InvokeFunction only on completion_hook."""
    base, eventbridge = _granted("cam-policy.json"), _granted("cam-policy-eventbridge.json")
    called = {CAM_NAMES.get(a, a) for a in called_actions()}
    assert {
        "cvm:DescribeImages",
        "cvm:SyncImages",
        "region:DescribeRegions",
        "scf:InvokeFunction",
        "eb:PutEvents",
    } <= called
    assert set(eventbridge) == {"eb:PutEvents"} and "eb:PutEvents" not in base
    granted = set(base) | set(eventbridge)
    assert granted - called == set(), "granted but never called"
    assert called - granted == set(), "called but not granted"
    assert not any(a.startswith("tdmq:") for a in granted)
    for action, resources in SCOPED.items():
        assert base[action] == resources, action
    hook, sweep = FUNCTIONS["completion_hook"]["name"], FUNCTIONS["status_sweep"]["name"]
    assert COMPLETION_RESOURCE.endswith(f":namespace/{INPUTS['namespace']}/function/{hook}")
    assert SWEEP_RESOURCE.endswith(f":namespace/{INPUTS['namespace']}/function/{sweep}")
    # deliveries into other accounts: AssumeRole only on the role imagesync is told to assume there (any uin)
    assert base["sts:AssumeRole"] == ["qcs::cam::uin/*:roleName/imagesync-delivery"]
    for action, resources in {**base, **eventbridge}.items():
        if action not in (*SCOPED, "sts:AssumeRole"):
            assert resources == ["*"], action
    api = {v: k for k, v in CAM_NAMES.items()}
    for action in granted:  # and each is a real API of that product
        product, name = api.get(action, action).split(":")
        assert name in _client_methods(product), action


def test_cam_trust_policy_lets_scf_assume_the_role() -> None:
    trust = json.loads((DEPLOY / "cam-trust-policy.json").read_text())
    (statement,) = trust["statement"]
    assert statement["action"] == "name/sts:AssumeRole" and statement["principal"]["service"] == ["scf.qcloud.com"]


# -- EventBridge and SCF JSON --------------------------------------------------------------------------------------

PLACEHOLDERS = {
    "EVENT_BUS_ID": "eb-abc",
    "RULE_ID": "rule-abc",
    "REGION": "ap-guangzhou",
    "TENCENTCLOUD_UIN": "100000000001",
    "COMPLETIONS_BUS_ID": "eb-done",
    "COMPLETIONS_RULE_ID": "rule-done",
}


def _substitute(text: str) -> str:
    """What `envsubst` with these names does (docs/deploy.md, and imagesync deploy-steps): only those."""
    for name, value in PLACEHOLDERS.items():
        text = text.replace("${" + name + "}", value)
    assert not re.search(r"\$\{[A-Z_]+\}", text), "a placeholder docs/deploy.md does not substitute"
    return text


def _check_model(model: Any, data: dict[str, Any]) -> None:
    """Every key of `data` is a field of the SDK request model, and the SDK's parser takes it."""
    fields = {k.lstrip("_") for k in vars(model)}
    for key in data:
        assert key in fields, f"{type(model).__name__} has no field {key}"
    model._deserialize(data)  # the SDK's own parser accepts it


def test_eventbridge_rule_routes_successful_create_image_calls() -> None:
    pattern = json.loads((DEPLOY / "eventbridge-pattern.json").read_text())
    assert pattern["source"] == ["cvm.cloud.tencent"]
    assert "cvm:CloudEvent:ApiCall" in pattern["type"]
    # CreateImage: copies of new images; DeleteImages: clean up with the source (app.cleanup)
    assert pattern["data"]["eventName"] == ["CreateImage", "DeleteImages"] and pattern["data"]["errorCode"] == [0]


def test_eventbridge_target_is_copy_request() -> None:
    from tencentcloud.eb.v20210416 import models

    target = json.loads(_substitute((DEPLOY / "eventbridge-target.json").read_text()))
    _check_model(models.CreateTargetRequest(), target)
    _check_model(models.TargetDescription(), target["TargetDescription"])
    resource = target["TargetDescription"]["ResourceDescription"]
    assert resource == (
        f"qcs::scf:ap-guangzhou:uin/100000000001:namespace/{INPUTS['namespace']}/function/"
        f"{FUNCTIONS['copy_request']['name']}/$DEFAULT"
    )


def test_completion_link_target_is_completion_hook() -> None:
    from tencentcloud.eb.v20210416 import models

    from imagesync.adapters.queues.eventbridge import EVENT_TYPE, SOURCE

    pattern = json.loads((DEPLOY / "eventbridge-completions-pattern.json").read_text())
    assert pattern == {"source": [SOURCE], "type": [EVENT_TYPE]}  # what EventBridgeLink puts on the bus
    target = json.loads(_substitute((DEPLOY / "eventbridge-completions-target.json").read_text()))
    _check_model(models.CreateTargetRequest(), target)
    _check_model(models.TargetDescription(), target["TargetDescription"])
    assert target["TargetDescription"]["ResourceDescription"] == (
        f"qcs::scf:ap-guangzhou:uin/100000000001:namespace/{INPUTS['namespace']}/function/"
        f"{FUNCTIONS['completion_hook']['name']}/$DEFAULT"
    )


def test_async_retry_config_and_dead_letter_are_scf_requests() -> None:
    from tencentcloud.scf.v20180416 import models

    config = json.loads((DEPLOY / "function-event-invoke-config.json").read_text())
    _check_model(models.UpdateFunctionEventInvokeConfigRequest(), config)
    _check_model(models.AsyncTriggerConfig(), config["AsyncTriggerConfig"])
    retry = config["AsyncTriggerConfig"]
    assert retry["RetryConfig"] == [{"RetryNum": 2}] and 60 <= retry["MsgTTL"] <= 21600
    # completion_hook records a failing hook as failed on SCF's last delivery, not as pending forever
    assert _env("completion_hook")["IMAGESYNC_QUEUE_MAX_ATTEMPTS"] == str(1 + retry["RetryConfig"][0]["RetryNum"])
    dead = json.loads((DEPLOY / "completion-hook-dead-letter.json").read_text())
    _check_model(models.UpdateFunctionConfigurationRequest(), dead)
    _check_model(models.DeadLetterConfig(), dead["DeadLetterConfig"])
    assert dead["DeadLetterConfig"]["Type"] in ("queue", "topic") and dead["DeadLetterConfig"]["Name"]
    for needed in (
        "UpdateFunctionEventInvokeConfig",
        "function-event-invoke-config.json",
        "DeadLetterConfig",
        "imagesync deploy-steps",
    ):
        assert needed in DOC, needed


# -- docs/deploy.md ------------------------------------------------------------------------------------------------


def test_deploy_doc_uses_the_same_names_handlers_and_files() -> None:
    for path in DEPLOY.glob("*.json"):
        assert f"deploy/{path.name}" in DOC, f"docs/deploy.md never uses deploy/{path.name}"
    names = {f["name"]: f for f in FUNCTIONS.values()}
    for match in re.finditer(r"--FunctionName (\S+)", DOC):
        name = match.group(1).strip('"')
        assert name in names or name.startswith("$"), match.group(0)
    for key, function in FUNCTIONS.items():
        assert f"--Handler {function['handler']}" in DOC, f"the tccli path does not create {key}"
        assert f"--Timeout {function['timeout']}" in DOC and f"--MemorySize {function['memorySize']}" in DOC
    assert "--Runtime Python3.10" in DOC
    for trigger in SERVERLESS["inputs"]["triggers"]:
        if trigger["type"] == "timer":
            params = trigger["parameters"]
            assert f'--TriggerName {params["name"]} --TriggerDesc "{params["cronExpression"]}"' in DOC


def test_deploy_docs_tccli_functions_get_the_variables_serverless_yml_gives_them() -> None:
    """Each `tccli scf CreateFunction` sets the same variable names as the function's entry in serverless.yml (the
    shell variables it uses, like $COMMON_ENV, expanded from their definitions on the page)."""
    shell = {m.group(1): m.group(2) for m in re.finditer(r'^([A-Z_]+_ENV)="(.*?)"$', DOC, re.S | re.M)}

    def keys(text: str) -> set[str]:
        for name, value in shell.items():
            text = text.replace(f"${name}", value)
        return set(re.findall(r'\\"Key\\": \\"([A-Z_]+)\\"', text))

    blocks = re.findall(r"tccli scf CreateFunction .*?--FunctionName (\S+)(.*?)\n\n", DOC, re.S)
    created = {name: keys(body) for name, body in blocks}
    assert set(created) == {f["name"] for f in FUNCTIONS.values()}
    for key, function in FUNCTIONS.items():
        assert created[function["name"]] == set(_env(key)), key
