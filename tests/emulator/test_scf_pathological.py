"""Pathological input as the cloud delivers it (issue 11, items 1 and 2): the project's real deploy package on the
emulated SCF, a deeply nested body over real HTTP to the Function URL, and the timer firing with a 4 KB Message of
nested arrays. The body is refused with 400 (never a 500); the sweep runs with its defaults and still tracks the
copy in flight, reporting `options_error`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesync_emulator import Emulator
from tests.pathological import TEXTS, TIMER_DEEP, nested_arrays

from .scf_toys import attempts, wait_for
from .test_scf_real_package import ROOT, TOKEN, _env, built  # noqa: F401 (built is the package fixture)

pytestmark = pytest.mark.slow  # builds the package and starts worker processes


def _post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, method="POST", data=body, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _with_timer_message(tmp_path: Path, message: str) -> Path:
    """serverless.yml with the timer's Message (at most 4 KB) set, and a copy's first check due one second after
    its request (the functions run on the real clock; the default, a real minute, would make the test wait)."""
    doc = yaml.safe_load((ROOT / "serverless.yml").read_text())
    for trigger in doc["inputs"]["triggers"]:
        if trigger["type"] == "timer":
            trigger["parameters"]["argument"] = message
    for function in doc["inputs"]["functions"].values():
        function["environment"].append({"key": "IMAGESYNC_FIRST_CHECK_SECONDS", "value": "1"})
    path = tmp_path / "serverless.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _start_before_an_hour() -> float:
    """An emulated start within 45 minutes before the real now (so the one-shot timer, armed on the functions' real
    clock, is due after the test's 45-minute advance) whose advance crosses the top of an emulated hour: the hourly
    safety timer then fires with the one-shot, both carrying the Message, on every run (not only at some hours)."""
    start = time.time() - 60
    minute = start % 3600 / 60
    if minute < 16:
        start -= (minute + 14) * 60  # minute 46 of the hour before
    return start


def test_pathological_input_over_real_http_and_the_real_timer(built: Any, tmp_path: Path) -> None:  # noqa: F811
    state = tmp_path / "state.db"
    env = _env(state)
    subprocess.run(
        [sys.executable, "-c", "from imagesync.cli import app; app()", "db", "upgrade"],
        check=True,
        env={"IMAGESYNC_DATABASE_URL": env["IMAGESYNC_DATABASE_URL"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
    )
    message = nested_arrays(TIMER_DEEP)
    assert len(message.encode()) == 4096
    with Emulator(time_scale=0.0, start=_start_before_an_hour()) as emu:
        deployment = emu.deploy(
            _with_timer_message(tmp_path, message), env=env, layers=built.layer_zip, code_dir=built.code_dir
        )
        url = deployment.urls["copy_request"] + "/replications"
        for name in (
            "deep arrays",
            "deep objects",
            "deep inside a valid field",
            "lone surrogate escaped",
            "integer over the digit limit",
            "duplicate keys",
        ):
            status, body = _post(url, TEXTS[name].encode())
            assert (status, body["error"]["code"]) == (400, "InvalidRequest"), (name, body)
        status, body = _post(url, nested_arrays(10_000).encode("utf-16"))  # another encoding (40 KB)
        assert (status, body["error"]["code"]) == (400, "InvalidRequest"), body
        assert emu.admin.calls("SyncImages") == []  # nothing refused reached the cloud
        assert all(r["outcome"] == "ok" for r in attempts(emu, "imagesync-copy_request"))  # answered, never raised

        status, body = _post(
            url,
            json.dumps(
                {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]}
            ).encode(),
        )
        assert status == 202, body
        time.sleep(1.5)  # the copy's first check is due (on the functions' real clock): waiting longer only helps
        emu.admin.advance(45 * 60)  # the copy (10-30 emulated minutes) has ended; the timer fires (catching up)

        def sweeps_done() -> list[dict[str, Any]]:
            """Every finished sweep, once one of them has seen the copy end and none is still running. Both timers
            carry the Message and both are armed while a copy is in flight: the one-shot `status-sweep-next`
            fires, and the hourly `status-sweep-safety` too when the advance crosses the top of an emulated hour
            (it depends on the hour the test starts at), so one or two sweeps run, and only one of them may see
            the copy end."""
            runs = emu.admin.scf_invocations("imagesync-status_sweep")
            done = [r for r in runs if r["outcome"] != "running"]
            seen = any((r.get("result") or {}).get("outcomes") for r in done)
            return done if seen and len(done) == len(runs) else []

        sweeps = wait_for(sweeps_done, timeout=120, what="the timers' sweeps")
        outcomes: dict[str, int] = {}
        for sweep in sweeps:
            assert sweep["outcome"] == "ok", sweep["log"] or sweep["error"]  # no RecursionError out of main_handler
            report = sweep["result"]
            assert report["options_error"]["code"] == "Event.Invalid"
            assert "nested deeper than 64 levels" in report["options_error"]["message"]
            for state, n in report["outcomes"].items():
                outcomes[state] = outcomes.get(state, 0) + n
        assert outcomes == {"SUCCEEDED": 1}  # the copy in flight was tracked all the same, and ended once
