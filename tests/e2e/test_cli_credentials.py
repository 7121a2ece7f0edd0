"""The command line asks for cloud keys only when it calls the cloud, and finds them where Tencent's tools keep them
(issue 11, item 8). Subprocesses with an empty HOME and no key in the environment, as a new user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGESYNC = [sys.executable, "-m", "imagesync.cli"]
pytestmark = pytest.mark.slow


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """A user with no keys anywhere: empty HOME, no TENCENTCLOUD_* variables; state under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENCENTCLOUD_", "IMAGESYNC_", "TCCLI_"))}
    return {
        **env,
        "HOME": str(home),
        "COLUMNS": "200",
        "IMAGESYNC_LOG_LEVEL": "WARNING",
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "IMAGESYNC_QUEUE_PATH": str(tmp_path / "queue.db"),
    }


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(IMAGESYNC + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_commands_that_read_local_state_need_no_keys(user: dict[str, str], tmp_path: Path) -> None:
    for args in (
        ["status"],
        ["status", "--json"],
        ["db", "upgrade"],
        ["rules", "check", str(ROOT / "examples" / "rules.yaml")],
        ["deliver"],
    ):
        result = run(args, user, tmp_path)
        assert result.returncode == 0, f"imagesync {' '.join(args)}: {result.stderr}"
        assert "Credentials" not in result.stderr


def test_missing_keys_stop_the_cloud_call_not_the_copy(user: dict[str, str], tmp_path: Path, emulator: Any) -> None:
    with_keys = {
        **user,
        "IMAGESYNC_TENCENT_ENDPOINT": emulator.endpoint,
        "TENCENTCLOUD_SECRET_ID": emulator.secret_id,
        "TENCENTCLOUD_SECRET_KEY": emulator.secret_key,
        "IMAGESYNC_FIRST_CHECK_SECONDS": "1",
    }
    copied = run(
        ["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-shanghai", "--json"], with_keys, tmp_path
    )
    assert copied.returncode == 0, copied.stderr
    replication = json.loads(copied.stdout)
    time.sleep(1.1)  # the CLI's clock is the real one: the copy is due for its first check 1 s after it started

    no_keys = {k: v for k, v in with_keys.items() if not k.startswith("TENCENTCLOUD_")}
    swept = run(["sweep"], no_keys, tmp_path)
    assert swept.returncode == 2
    assert "Credentials.NotFound" in swept.stderr and ".tencentcloud/credentials" in swept.stderr
    assert "Traceback" not in swept.stderr
    shown = run(["status", replication["id"], "--json"], no_keys, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["replicas"][0]["state"] == "COPYING"  # not failed for the missing keys


def test_keys_from_the_sdk_profile_file(user: dict[str, str], tmp_path: Path, emulator: Any) -> None:
    profile = Path(user["HOME"]) / ".tencentcloud" / "credentials"
    profile.parent.mkdir()
    profile.write_text(f"[default]\nsecret_id = {emulator.secret_id}\nsecret_key = {emulator.secret_key}\n")
    result = run(
        ["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-shanghai", "--dry-run", "--json"],
        {**user, "IMAGESYNC_TENCENT_ENDPOINT": emulator.endpoint},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["replicas"][0]["destination_region"] == "ap-shanghai"
