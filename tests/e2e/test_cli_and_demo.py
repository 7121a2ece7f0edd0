"""The command line and the demo, run as a user runs them (subprocesses), against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGESYNC = [sys.executable, "-m", "imagesync.cli"]


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        IMAGESYNC + args, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def cli_env(emulator: Any, tmp_path: Path) -> dict[str, str]:
    return {
        "IMAGESYNC_TENCENT_ENDPOINT": emulator.endpoint,
        "TENCENTCLOUD_SECRET_ID": emulator.secret_id,
        "TENCENTCLOUD_SECRET_KEY": emulator.secret_key,
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "IMAGESYNC_QUEUE_PATH": str(tmp_path / "queue.db"),
        "IMAGESYNC_LOG_LEVEL": "WARNING",
        "IMAGESYNC_RECHECK_SECONDS": "5",
        "IMAGESYNC_FIRST_CHECK_SECONDS": "1",
        # the look budget's slots, which a world's first copies look only at: every 5 real s (copies take 1-3)
        "IMAGESYNC_MAX_CHECK_SECONDS": "5",
        "IMAGESYNC_API_AUTH": "none",  # the event files carry no credentials
    }


def test_demo_outcome() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imagesync_dev", "demo"], capture_output=True, text=True, timeout=180, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "demo outcome as expected" in out
    # five copies, the partner account's two, and the one that failed on its retry
    assert out.count("│ SUCCEEDED │") == 8
    assert out.count("│ FAILED    │") == 1 and "retried by" in out
    assert "/retry after the copy to ap-chengdu ended FAILED: 202 started" in out
    # a cross-account delivery: the partner's own copy in the source region, then its other region
    assert "100000000002/ap-guangzhou" in out and "100000000002/ap-chengdu" in out
    assert out.count("owned by") == 2
    assert "Region.CrossBorderNotAllowed" in out and "Image.TooLarge" in out and "Image.NotCustom" in out


def test_copy_status_sweep_deliver(cli_env: dict[str, str], tmp_path: Path, emulator: Any) -> None:
    copied = run(["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-shanghai", "--json"], cli_env, tmp_path)
    assert copied.returncode == 0, copied.stderr
    replication = json.loads(copied.stdout)
    assert replication["replicas"][0]["state"] == "COPYING"

    refused = run(["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-tokyo"], cli_env, tmp_path)
    assert refused.returncode == 2
    assert "Region.CrossBorderNotAllowed" in refused.stderr

    emulator.admin.advance(45 * 60)
    # the CLI schedules its first look on the real clock (IMAGESYNC_FIRST_CHECK_SECONDS=1 after the start): wait
    # for that instant rather than count on the subprocesses above having taken longer
    due = datetime.fromisoformat(replication["replicas"][0]["started_at"]) + timedelta(seconds=1)
    while datetime.now(timezone.utc) < due:
        time.sleep(0.05)
    swept = run(["sweep", "--json"], cli_env, tmp_path)
    assert json.loads(swept.stdout)["outcomes"] == {"SUCCEEDED": 1}

    shown = run(["status", replication["id"], "--json"], cli_env, tmp_path)
    assert json.loads(shown.stdout)["state"] == "SUCCEEDED"
    listed = run(["status", "--json"], cli_env, tmp_path)
    assert [r["id"] for r in json.loads(listed.stdout)] == [replication["id"]]

    delivered = run(["deliver"], cli_env, tmp_path)
    assert json.loads(delivered.stdout) == {"delivered": 1, "failed": 0}


def test_retry_a_failed_copy(cli_env: dict[str, str], tmp_path: Path, emulator: Any) -> None:
    copied = run(
        ["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to", "ap-shanghai", "--to", "ap-beijing", "--json"],
        cli_env,
        tmp_path,
    )
    replication = json.loads(copied.stdout)
    rid = replication["id"]
    failed = next(r for r in replication["replicas"] if r["destination_region"] == "ap-beijing")
    emulator.admin.set_image_state(failed["destination_image_id"], "CREATEFAILED")
    emulator.admin.advance(45 * 60)
    due = datetime.fromisoformat(failed["started_at"]) + timedelta(seconds=1)  # the CLI's first look: real clock
    while datetime.now(timezone.utc) < due:
        time.sleep(0.05)
    assert json.loads(run(["sweep", "--json"], cli_env, tmp_path).stdout)["outcomes"] == {"SUCCEEDED": 1, "FAILED": 1}

    refused = run(["retry", rid, "--region", "ap-shanghai"], cli_env, tmp_path)
    assert refused.returncode == 2 and "Retry.AlreadySucceeded" in refused.stderr
    retried = run(["retry", rid, "--json"], cli_env, tmp_path)
    assert retried.returncode == 0, retried.stderr
    answer = json.loads(retried.stdout)
    [new_id] = answer["started"]
    again = json.loads(run(["retry", rid, "--region", "ap-beijing", "--json"], cli_env, tmp_path).stdout)
    assert again["started"] == [] and again["running"] == [new_id]

    shown = run(["status", rid], {**cli_env, "COLUMNS": "250"}, tmp_path)  # every attempt, the earlier marked
    assert "retried by" in shown.stdout and "FAILED" in shown.stdout and "Copy.Failed" in shown.stdout
    replicas = json.loads(run(["status", rid, "--json"], cli_env, tmp_path).stdout)["replicas"]
    assert sorted((r["destination_region"], r["attempt"], r["state"]) for r in replicas) == [
        ("ap-beijing", 1, "FAILED"),
        ("ap-beijing", 2, "COPYING"),
        ("ap-shanghai", 1, "SUCCEEDED"),
    ]


def test_copy_wait_shows_progress_until_the_end_and_runs_the_hooks(
    cli_env: dict[str, str], tmp_path: Path, emulator: Any
) -> None:
    # at 600x a 10-30 minute copy takes 1-3 s; --wait sweeps until it ends and delivers the local queue's messages
    env = {**cli_env, "IMAGESYNC_HOOKS": '[{"type": "tag"}]', "IMAGESYNC_UIN": "100000000001"}
    result = run(["copy", "img-8c2rq9tw", "--from", "ap-guangzhou", "--to", "ap-beijing", "--wait"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCEEDED" in result.stdout
    [replication] = json.loads(run(["status", "--json"], env, tmp_path).stdout)
    shown = json.loads(run(["status", replication["id"], "--json"], env, tmp_path).stdout)
    [replica] = shown["replicas"]
    assert [(h["hook"], h["status"]) for h in replica["hooks"]] == [("tag", "done")]
    tags = {t["Key"]: t["Value"] for t in emulator.admin.image(replica["destination_image_id"])["Tags"]}
    assert tags["imagesync:source-image"] == "img-8c2rq9tw"


def test_invoke_runs_a_real_handler_on_an_event_file(cli_env: dict[str, str], tmp_path: Path) -> None:
    cli_env = {**cli_env, "IMAGESYNC_FIRST_CHECK_SECONDS": "600"}  # the CLI runs on the real clock
    result = run(
        ["invoke", "copy_request", "--event", str(ROOT / "events/http/function_url_create_replication.json")],
        cli_env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["statusCode"] == 202
    assert len(json.loads(answer["body"])["replicas"]) == 4
    timer = run(["invoke", "status_sweep", "--event", str(ROOT / "events/timer/every_minute.json")], cli_env, tmp_path)
    assert json.loads(timer.stdout)["claimed"] == 0  # nothing due yet: first check after IMAGESYNC_FIRST_CHECK_SECONDS
    unknown = run(["invoke", "nope", "--event", str(ROOT / "events/timer/every_minute.json")], cli_env, tmp_path)
    assert unknown.returncode == 2


def test_help_lists_every_command() -> None:
    result = subprocess.run(IMAGESYNC + ["--help"], capture_output=True, text=True, timeout=60)
    for command in ("copy", "retry", "status", "sweep", "deliver", "invoke", "emulator", "db"):
        assert command in result.stdout
    assert "demo" not in result.stdout and "bench" not in result.stdout  # development tooling: imagesync-dev


@pytest.mark.parametrize(
    ("args", "moved_to"),
    [(["demo", "--keep", "x"], "imagesync-dev demo"), (["bench", "chaos", "--images", "3"], "imagesync-dev chaos")],
)
def test_dev_commands_say_where_they_went(args: list[str], moved_to: str) -> None:
    result = subprocess.run(IMAGESYNC + args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Command.Moved" in result.stderr and moved_to in result.stderr


def test_emulator_command_contract(tmp_path: Path) -> None:
    """`imagesync emulator`: the first stdout line is JSON with endpoint and keys; SIGTERM ends it with 0."""
    import signal

    from tencentcloud.common.credential import Credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.cvm.v20170312 import cvm_client, models

    proc = subprocess.Popen(
        IMAGESYNC + ["emulator", "--port", "0", "--time-scale", "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        first = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        assert first["endpoint"].startswith("http://127.0.0.1:")
        http = HttpProfile(protocol="http", endpoint=first["endpoint"].removeprefix("http://"))
        client = cvm_client.CvmClient(
            Credential(first["secret_id"], first["secret_key"]), "ap-guangzhou", ClientProfile(httpProfile=http)
        )
        request = models.DescribeImagesRequest()
        request.ImageIds = ["img-5ddkx3gh"]
        assert client.DescribeImages(request).ImageSet[0].ImageName == "web-base-2026"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_db_upgrade_and_the_schema_check_on_start(tmp_path: Path) -> None:
    env = {
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "IMAGESYNC_AUTO_MIGRATE": "false",
        "IMAGESYNC_QUEUE_PATH": str(tmp_path / "q.db"),
        "TENCENTCLOUD_SECRET_ID": "AKIDx",
        "TENCENTCLOUD_SECRET_KEY": "x",
    }
    behind = run(["status"], env, tmp_path)
    assert behind.returncode == 2
    assert "State.SchemaOutOfDate" in behind.stderr and "imagesync db upgrade" in behind.stderr
    upgraded = run(["db", "upgrade"], env, tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema at revision" in upgraded.stdout
    assert run(["status", "--json"], env, tmp_path).stdout.strip() == "[]"


def test_copy_into_another_account(cli_env: dict[str, str], tmp_path: Path, emulator: Any) -> None:
    copied = run(
        [
            "copy",
            "img-5ddkx3gh",
            "--from",
            "ap-guangzhou",
            "--to-account",
            "100000000002:imagesync-delivery:ap-guangzhou,ap-beijing",
            "--json",
        ],
        cli_env,
        tmp_path,
    )
    assert copied.returncode == 0, copied.stderr
    replication = json.loads(copied.stdout)
    assert {(r["account"], r["destination_region"], r["state"]) for r in replication["replicas"]} == {
        ("100000000002", "ap-guangzhou", "COPYING"),
        ("100000000002", "ap-beijing", "WAITING_SOURCE"),
    }
    assert replication["accounts"][0]["account"] == "100000000002"
    shown = run(["status", replication["id"]], {**cli_env, "COLUMNS": "250"}, tmp_path)
    assert "100000000002/ap-beijing" in shown.stdout and "100000000002/ap-guangzhou" in shown.stdout
    bad = run(
        ["copy", "img-5ddkx3gh", "--from", "ap-guangzhou", "--to-account", "100000000002:ap-beijing"], cli_env, tmp_path
    )
    assert bad.returncode == 2 and "InvalidRequest" in bad.stderr
