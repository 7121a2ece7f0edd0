"""The emulator as a process (`python -m imagesync_emulator`), and the official tccli against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
TCCLI_DEFAULT = REPO / ".venv-tccli" / "bin" / "tccli"

pytestmark = pytest.mark.slow  # processes: the emulator's, and tccli's (its own venv, `make tccli`)


def start_emulator(*args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagesync_emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"the emulator printed nothing: {proc.stderr.read() if proc.stderr else ''}")
    return proc, json.loads(line)


@pytest.fixture
def emulator_process() -> Iterator[tuple[subprocess.Popen, dict]]:
    proc, ready = start_emulator("--seed", "1")
    try:
        yield proc, ready
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def tccli_path() -> Path:
    path = Path(os.environ.get("IMAGESYNC_TCCLI") or TCCLI_DEFAULT)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"tccli not found at {path} (CI is set, so this is an error: run `make tccli`)")
        pytest.skip(f"tccli not found at {path}: run `make tccli` or set IMAGESYNC_TCCLI")
    return path


def run_tccli(ready: dict, tmp_path: Path, *args: str, secret_key: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path)}  # no ~/.tccli profile of the developer leaks in
    for var in ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_REGION"):
        env.pop(var, None)
    cmd = [
        str(tccli_path()),
        *args,
        "--endpoint",
        ready["endpoint"],
        "--secretId",
        ready["secret_id"],
        "--secretKey",
        secret_key or ready["secret_key"],
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def test_first_line_and_sigterm(emulator_process: tuple[subprocess.Popen, dict]) -> None:
    proc, ready = emulator_process
    assert ready["endpoint"].startswith("http://127.0.0.1:")
    assert ready["secret_id"] and ready["secret_key"] and ready["admin"].endswith("/_emulator")
    assert {a["name"] for a in ready["accounts"]} == {"default", "partner"}
    assert requests.get(ready["admin"] + "/now", timeout=5).status_code == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_sigint_exits_zero(emulator_process: tuple[subprocess.Popen, dict]) -> None:
    proc, _ = emulator_process
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


def test_options_are_honoured(tmp_path: Path) -> None:
    world = tmp_path / "w.json"
    world.write_text(json.dumps({"accounts": [{"name": "solo", "uin": "200000000001"}]}))
    proc, ready = start_emulator("--world", str(world), "--time-scale", "1", "--no-rate-limits")
    try:
        assert [a["uin"] for a in ready["accounts"]] == ["200000000001"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_tccli_describe_images(emulator_process: tuple[subprocess.Popen, dict], tmp_path: Path) -> None:
    _, ready = emulator_process
    out = run_tccli(
        ready,
        tmp_path,
        "cvm",
        "DescribeImages",
        "--region",
        "ap-guangzhou",
        "--Filters",
        json.dumps([{"Name": "image-name", "Values": ["web-base"]}]),
    )
    assert out.returncode == 0, out.stderr + out.stdout
    resp = json.loads(out.stdout)
    assert [i["ImageId"] for i in resp["ImageSet"]] == ["img-5ddkx3gh"] and resp["TotalCount"] == 1
    calls = requests.get(ready["admin"] + "/calls", params={"action": "DescribeImages"}, timeout=5).json()["result"]
    assert calls[-1]["outcome"] == "ok" and calls[-1]["params"]["Filters"][0]["Name"] == "image-name"


def test_tccli_sync_images_and_errors(emulator_process: tuple[subprocess.Popen, dict], tmp_path: Path) -> None:
    _, ready = emulator_process
    out = run_tccli(
        ready,
        tmp_path,
        "cvm",
        "SyncImages",
        "--region",
        "ap-guangzhou",
        "--ImageIds",
        '["img-8c2rq9tw"]',
        "--DestinationRegions",
        '["ap-shanghai"]',
        "--ImageSetRequired",
        "true",
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert json.loads(out.stdout)["ImageSet"][0]["Region"] == "ap-shanghai"
    bad = run_tccli(ready, tmp_path, "cvm", "DescribeImages", "--region", "ap-guangzhou", secret_key="wrong")
    assert bad.returncode != 0 and "AuthFailure.SignatureFailure" in bad.stdout + bad.stderr
