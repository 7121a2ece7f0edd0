"""Toy SCF packages for the emulated-SCF tests: a serverless.yml and an index.py written into a tmp folder."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from tencentcloud.scf.v20180416 import models as scf_models
from tencentcloud.scf.v20180416.scf_client import ScfClient

from imagesync_emulator import Emulator
from imagesync_emulator.scf import Deployment

from .conftest import client


def write_package(
    root: Path,
    source: str,
    *,
    functions: dict[str, dict] | None = None,
    triggers: list[dict] | None = None,
    inputs: dict | None = None,
) -> Path:
    """root/code/index.py + root/serverless.yml; ``functions`` default: one function "toy" -> "toy-fn"."""
    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / "index.py").write_text(textwrap.dedent(source))
    functions = functions if functions is not None else {"toy": {}}
    doc = {
        "component": "multi-scf",
        "name": "toys",
        "inputs": {
            "src": {"src": "./code"},
            "region": "ap-guangzhou",
            "runtime": "Python3.10",
            "functions": {
                k: {"name": f"{k}-fn", "handler": "index.main_handler", "timeout": 10, **v}
                for k, v in functions.items()
            },
            "triggers": triggers or [],
            **(inputs or {}),
        },
    }
    path = root / "serverless.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def deploy_toy(emu: Emulator, root: Path, source: str, **kwargs: Any) -> Deployment:
    return emu.deploy(write_package(root, source, **kwargs), env={})


def scf(emu: Emulator) -> ScfClient:
    return client(emu, ScfClient)


def invoke(emu: Emulator, name: str, event: Any, invocation_type: str = "RequestResponse") -> Any:
    req = scf_models.InvokeRequest()
    req.from_json_string(
        json.dumps({"FunctionName": name, "InvocationType": invocation_type, "ClientContext": json.dumps(event)})
    )
    return scf(emu).Invoke(req).Result


def call(emu: Emulator, action: str, params: dict) -> dict:
    """Any scf action through the official client (its generic call_json)."""
    return scf(emu).call_json(action, params)["Response"]


def admin(emu: Emulator, method: str, **kwargs: Any) -> Any:
    """The admin API over real HTTP, as a test process outside the emulator would use it."""
    req = urllib.request.Request(
        f"{emu.admin_url}/{method}",
        data=json.dumps(kwargs).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["result"]


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (a generous bound, not a speed assumption)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def attempts(emu: Emulator, function: str) -> list[dict]:
    return [r for r in emu.admin.scf_invocations(function) if r["outcome"] != "running"]
