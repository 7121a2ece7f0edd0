"""Deploying a serverless.yml onto the emulated SCF: what it refuses (with SCF's codes), and the project's own file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesync_emulator import Emulator
from imagesync_emulator.scf import DeployError

from .scf_toys import call, invoke, write_package

ROOT = Path(__file__).resolve().parents[2]
OK = """
def main_handler(event, context):
    return {"ok": True}
"""


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(time_scale=0.0) as e:
        yield e


def _refused(emu: Emulator, tmp_path: Path, *, source: str = OK, env: dict | None = None, **package: Any) -> str:
    with pytest.raises(DeployError) as err:
        emu.deploy(write_package(tmp_path, source, **package), env=env or {})
    assert emu.admin.scf_functions() == []  # nothing half-deployed
    return f"{err.value.code}: {err.value.message}"


@pytest.mark.parametrize("type_", ["cmq", "apigw", "mps", "kafka-ish"])
def test_retired_or_unknown_trigger_types(emu: Emulator, tmp_path: Path, type_: str) -> None:
    answer = _refused(emu, tmp_path, triggers=[{"type": type_, "function": "toy", "parameters": {"name": "t"}}])
    assert answer.startswith("InvalidParameterValue.Type:") and f"`{type_}`" in answer


@pytest.mark.parametrize(
    ("triggers", "code"),
    [
        (
            [{"type": "timer", "function": "toy", "parameters": {"name": "t", "cronExpression": "0 * * * * * *"}}] * 2,
            "ResourceInUse.Trigger",
        ),
        (
            [{"type": "http", "function": "toy", "parameters": {"name": f"u{i}"}} for i in range(2)],
            "ResourceInUse.Trigger",
        ),
        (
            [{"type": "timer", "function": "toy", "parameters": {"name": "bad name!", "cronExpression": "* * * * *"}}],
            "InvalidParameterValue.TriggerName",
        ),
        (
            [{"type": "timer", "function": "toy", "parameters": {"name": "t", "cronExpression": "* * *"}}],
            "InvalidParameterValue.TriggerDesc",
        ),
        (
            [{"type": "timer", "function": "other", "parameters": {"name": "t", "cronExpression": "* * * * *"}}],
            "ResourceNotFound.Function",
        ),
    ],
)
def test_trigger_refusals_before_anything_is_created(emu: Emulator, tmp_path: Path, triggers: list, code: str) -> None:
    assert _refused(emu, tmp_path, triggers=triggers).startswith(code + ":")


def test_two_functions_with_one_name(emu: Emulator, tmp_path: Path) -> None:
    answer = _refused(emu, tmp_path, functions={"a": {"name": "same"}, "b": {"name": "same"}})
    assert answer.startswith("ResourceInUse.FunctionName:")


def test_supported_but_not_emulated_trigger(emu: Emulator, tmp_path: Path) -> None:
    answer = _refused(emu, tmp_path, triggers=[{"type": "cos", "function": "toy", "parameters": {}}])
    assert answer.startswith("UnsupportedOperation.Trigger:")


@pytest.mark.parametrize(
    ("function", "code"),
    [
        ({"handler": "index.nope"}, "InvalidParameterValue.Handler"),
        ({"handler": "missing.main_handler"}, "InvalidParameterValue.Handler"),
        ({"runtime": "Python3.12"}, "InvalidParameterValue.Runtime"),
        ({"runtime": "Nodejs18.15"}, "InvalidParameterValue.Runtime"),
        ({"timeout": 901}, "LimitExceeded.Timeout"),
        ({"timeout": 0}, "LimitExceeded.Timeout"),
        ({"memorySize": 100}, "InvalidParameterValue.MemorySize"),
        ({"environment": [{"key": "BIG", "value": "x" * 4100}]}, "InvalidParameterValue.EnvironmentExceededLimit"),
        ({"environment": [{"key": "SCF_MINE", "value": "1"}]}, "InvalidParameterValue.EnvironmentSystemProtect"),
        (
            {"environment": [{"key": "TENCENTCLOUD_SECRETID", "value": "x"}]},
            "InvalidParameterValue.EnvironmentSystemProtect",
        ),
        ({"environment": [{"key": "QCLOUD_X", "value": "1"}]}, "InvalidParameterValue.EnvironmentSystemProtect"),
        ({"layers": [{"name": "deps", "version": 1}]}, "ResourceNotFound.Layer"),
        ({"layers": [{"name": f"l{i}", "version": 1} for i in range(6)]}, "LimitExceeded.Layers"),
    ],
)
def test_function_refusals(emu: Emulator, tmp_path: Path, function: dict, code: str) -> None:
    assert _refused(emu, tmp_path, functions={"toy": function}).startswith(code + ":")


def test_unset_env_variables_are_refused_all_at_once(emu: Emulator, tmp_path: Path) -> None:
    answer = _refused(
        emu,
        tmp_path,
        functions={
            "toy": {
                "environment": [
                    {"key": "A", "value": "${env:FIRST_UNSET}"},
                    {"key": "B", "value": "x-${env:SECOND_UNSET}"},
                    {"key": "C", "value": "${env:IS_SET}"},
                ]
            }
        },
        env={"IS_SET": "yes"},
    )
    assert answer.startswith("Component.UnsetVariable:") and "FIRST_UNSET, SECOND_UNSET" in answer


def test_package_over_500_mb_unzipped(emu: Emulator, tmp_path: Path) -> None:
    write_package(tmp_path, OK)
    with open(tmp_path / "code" / "big.bin", "wb") as f:
        f.truncate(501 * 1024 * 1024)  # sparse: takes no disk space, counts as 501 MB
    assert _refused(emu, tmp_path).startswith("InvalidParameterValue.Code:")


def test_env_layers_and_region_resolved(tmp_path: Path) -> None:
    layer = tmp_path / "deps.zip"
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr("toylib.py", "VALUE = 'from the layer'\n")
    source = """
        import os, toylib

        def main_handler(event, context):
            return {"lib": toylib.VALUE, "db": os.environ["DB"], "region": os.environ["TENCENTCLOUD_REGION"]}
    """
    path = write_package(
        tmp_path,
        source,
        functions={
            "toy": {
                "layers": [{"name": "deps", "version": "${env:LAYER_VERSION}"}],
                "environment": [{"key": "DB", "value": "${env:DB_URL}"}],
            }
        },
        inputs={"region": "${env:REGION}"},
    )
    with Emulator(time_scale=0.0) as emu:
        deployment = emu.deploy(
            path, env={"LAYER_VERSION": "3", "DB_URL": "sqlite:///x", "REGION": "ap-shanghai"}, layers=layer
        )
        assert deployment.functions == {"toy": "toy-fn"}
        assert (
            invoke(emu, "toy-fn", {}).RetMsg
            == '{"lib": "from the layer", "db": "sqlite:///x", "region": "ap-shanghai"}'
        )
        got = call(emu, "GetFunction", {"FunctionName": "toy-fn"})
        assert got["Layers"] == [{"LayerName": "deps", "LayerVersion": "3"}] and got["Timeout"] == 10
        assert {"Key": "DB", "Value": "sqlite:///x"} in got["Environment"]["Variables"]
        with pytest.raises(DeployError) as err:  # deployed once: the name is taken
            emu.deploy(path, env={"LAYER_VERSION": "3", "DB_URL": "x", "REGION": "ap-shanghai"}, layers=layer)
        assert err.value.code == "ResourceInUse.FunctionName"


def _project_env() -> dict[str, str]:
    """A value for every ${env:NAME} the project's serverless.yml names."""
    names = set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", (ROOT / "serverless.yml").read_text()))
    given = {"REGION": "ap-guangzhou", "LAYER_VERSION": "1", "IMAGESYNC_RULES_JSON": "", "IMAGESYNC_HOOKS": ""}
    return {n: given.get(n, f"test-{n.lower()}") for n in names}


@pytest.mark.parametrize("type_", ["cmq", "apigw"])
def test_the_projects_serverless_yml_plus_a_retired_trigger_is_refused(
    emu: Emulator, tmp_path: Path, type_: str
) -> None:
    """The project's serverless.yml once wired completion_hook to a `cmq` trigger (and copy_request to API Gateway):
    the file with such a trigger added back is refused with the code CreateTrigger answers, before anything is
    created. The file as it is deploys and runs: test_scf_real_package.py, tests/cloud."""
    doc = yaml.safe_load((ROOT / "serverless.yml").read_text())
    doc["inputs"]["triggers"].append(
        {"type": type_, "function": "completion_hook", "parameters": {"name": "imagesync-completions", "enable": True}}
    )
    path = tmp_path / "serverless.yml"
    path.write_text(yaml.safe_dump(doc))
    code = tmp_path / "code"  # the entries only (the handlers must resolve; nothing is imported)
    code.mkdir()
    for name in ("copy_request", "status_sweep", "completion_hook"):
        (code / f"{name}.py").write_text((ROOT / "functions" / name / "index.py").read_text())
    layer = tmp_path / "layer.zip"
    zipfile.ZipFile(layer, "w").close()
    with pytest.raises(DeployError) as err:
        emu.deploy(path, env=_project_env(), layers=layer, code_dir=code)
    assert err.value.code == "InvalidParameterValue.Type" and f"`{type_}`" in err.value.message
    assert emu.admin.scf_functions() == []
    with Emulator(time_scale=0.0) as fresh:  # the file as it is: deployed (a fresh emulator: names stay free here)
        fresh.deploy(ROOT / "serverless.yml", env=_project_env(), layers=layer, code_dir=code)
        assert sorted(f["name"] for f in fresh.admin.scf_functions()) == [
            "imagesync-completion_hook",
            "imagesync-copy_request",
            "imagesync-status_sweep",
        ]


def test_command_line_deploy_names_function_urls(tmp_path: Path) -> None:
    path = write_package(tmp_path, OK, triggers=[{"type": "http", "function": "toy", "parameters": {"name": "u"}}])
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagesync_emulator", "--deploy", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert ready["functions"] == {"toy": "toy-fn"}
        with urllib.request.urlopen(ready["function_urls"]["toy"] + "/any", timeout=60) as resp:
            assert json.loads(resp.read()) == {"ok": True}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_command_line_refused_deploy_exits_2_with_the_code(tmp_path: Path) -> None:
    path = write_package(tmp_path, OK, triggers=[{"type": "cmq", "function": "toy", "parameters": {"name": "q"}}])
    done = subprocess.run(
        [sys.executable, "-c", "from imagesync.cli import app; app()", "emulator", "--deploy", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("InvalidParameterValue.Type: ")
    assert done.stdout == ""
