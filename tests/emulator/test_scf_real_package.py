"""The project's REAL deploy package (`make package`: dist/code + dist/layer.zip) deployed from its serverless.yml
onto the emulated SCF, and driven only as the cloud would drive it: HTTP to the Function URL, the timer.

The file itself is deployed, as `scf deploy` reads it (with a retired trigger type added, test_scf_deploy.py shows
the refusal). tests/cloud drives the same deployment through whole scenarios (make demo-cloud's among them).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.eb.v20210416.eb_client import EbClient

from imagesync_emulator import Emulator

from .conftest import client
from .scf_toys import attempts, wait_for
from .scf_toys import call as scf_call

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "real-package-token"


def _package_script() -> Any:
    spec = importlib.util.spec_from_file_location("imagesync_package_script_scf", ROOT / "scripts" / "package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _package_script().build(tmp_path_factory.mktemp("dist"), ROOT / "dist" / "wheels")


def _env(state: Path) -> dict[str, str]:
    names = set(re.findall(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}", (ROOT / "serverless.yml").read_text()))
    values = {
        "REGION": "ap-guangzhou",
        "LAYER_VERSION": "1",
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{state}",
        "IMAGESYNC_API_TOKEN": TOKEN,
        "IMAGESYNC_WEBHOOK_URL": "",
        "IMAGESYNC_WEBHOOK_SECRET": "",
        "IMAGESYNC_RULES_JSON": "",
        "IMAGESYNC_HOOKS": "",
    }
    return {n: values.get(n, f"test-{n.lower()}") for n in names}


def _http(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_real_package_runs_on_the_emulated_scf(built: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    env = _env(state)
    subprocess.run(
        [sys.executable, "-c", "from imagesync.cli import app; app()", "db", "upgrade"],
        check=True,
        env={"IMAGESYNC_DATABASE_URL": env["IMAGESYNC_DATABASE_URL"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
    )
    with Emulator(time_scale=0.0) as emu:
        deployment = emu.deploy(ROOT / "serverless.yml", env=env, layers=built.layer_zip, code_dir=built.code_dir)
        assert sorted(deployment.functions.values()) == [
            "imagesync-completion_hook",
            "imagesync-copy_request",
            "imagesync-status_sweep",
        ]
        assert "inputs.functions.copy_request.vpc" in deployment.ignored  # read, not emulated: said so
        assert all(x.endswith(".vpc") for x in deployment.ignored), deployment.ignored
        url = deployment.urls["copy_request"]
        assert _http(url + "/health") == (200, {"status": "ok"})
        status, body = _http(
            url + "/replications",
            "POST",
            {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]},
        )
        assert status == 202, body
        # The copy was started by the function, with the role's temporary key.
        [sync] = emu.admin.calls("SyncImages")
        assert sync["outcome"] == "ok" and sync["params"]["DestinationRegions"] == ["ap-shanghai"]
        status, got = _http(url + f"/replications/{body['id']}")
        assert status == 200 and got["id"] == body["id"]

        # copy_request armed status_sweep's one-shot timer at the copy's first check (docs/deploy.md, "The sweep's
        # schedule"): step the emulated clock to that second
        [armed] = [
            t
            for t in scf_call(emu, "ListTriggers", {"FunctionName": "imagesync-status_sweep"})["Triggers"]
            if t["TriggerName"] == "status-sweep-next"
        ]
        assert armed["Enable"] == 1
        sec, minute, hour, day, month, _, year = (int(x) if x != "*" else 0 for x in armed["TriggerDesc"].split())
        at = datetime(year, month, day, hour, minute, sec, tzinfo=timezone.utc).timestamp()
        emu.admin.advance(max(0.0, at - emu.admin.now()) + 1)
        wait_for(lambda: attempts(emu, "imagesync-status_sweep"), timeout=120, what="the timer's sweep")
        # one sweep, or two when the step crossed the top of an emulated hour (the hourly safety timer, armed with
        # the one-shot, fires too: about one run in sixty, by the hour of the day)
        sweeps = attempts(emu, "imagesync-status_sweep")
        assert 1 <= len(sweeps) <= 2, sweeps
        for sweep in sweeps:
            assert sweep["outcome"] == "ok", sweep["log"] or sweep["error"]
            assert sweep["source"] == "timer"
        assert sweeps[0]["cold"]
        http_runs = attempts(emu, "imagesync-copy_request")
        assert [r["cold"] for r in http_runs] == [True, False, False] and all(r["outcome"] == "ok" for r in http_runs)

        # deploy/'s EventBridge rule: a CreateImage's CloudAudit event reaches copy_request, which takes it.
        eb = client(emu, EbClient)
        bus = next(
            b["EventBusId"]
            for b in eb.call_json("ListEventBuses", {})["Response"]["EventBuses"]
            if b["EventBusName"] == "default"
        )
        rule = eb.call_json(
            "CreateRule",
            {
                "EventBusId": bus,
                "RuleName": "imagesync-create-image",
                "EventPattern": (ROOT / "deploy" / "eventbridge-pattern.json").read_text(),
            },
        )
        target = json.loads((ROOT / "deploy" / "eventbridge-target.json").read_text())["TargetDescription"]
        target["ResourceDescription"] = (
            target["ResourceDescription"]
            .replace("${REGION}", "ap-guangzhou")
            .replace("${TENCENTCLOUD_UIN}", "100000000001")
        )
        eb.call_json(
            "CreateTarget",
            {"EventBusId": bus, "RuleId": rule["Response"]["RuleId"], "Type": "scf", "TargetDescription": target},
        )
        client(emu, CvmClient).call_json("CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": "fresh"})
        wait_for(
            lambda: [r for r in attempts(emu, "imagesync-copy_request") if r["source"] == "eventbridge"],
            timeout=120,
            what="the routed CreateImage event",
        )
        [routed] = [r for r in attempts(emu, "imagesync-copy_request") if r["source"] == "eventbridge"]
        assert routed["outcome"] == "ok", routed["log"] or routed["error"]
        [handled] = routed["result"]["events"]  # read from the audit record; no rule configured, so nothing copied
        assert handled["image_name"] == "fresh" and handled["status"] == "no_rule"
