"""`imagesync rules check FILE` and `imagesync plan`, run as a user runs them (subprocesses), on the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGESYNC = [sys.executable, "-m", "imagesync.cli"]


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        IMAGESYNC + args,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rules_check_accepts_the_example_and_lists_its_rules(tmp_path: Path) -> None:
    result = run(["rules", "check", str(ROOT / "examples" / "rules.yaml"), "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["valid"] is True
    assert [(r["name"], r["enabled"]) for r in body["rules"]] == [
        ("web-images-east", True),
        ("golden-family-everywhere", True),
        ("release-builds-hk", False),
    ]
    assert body["rules"][0]["hooks"] == ["tag", "webhook", "encrypt"]
    table = run(["rules", "check", str(ROOT / "examples" / "rules.yaml")], tmp_path)
    assert table.returncode == 0 and "3 rule(s), valid" in table.stdout


def test_rules_check_refuses_a_bad_file_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "name": "a",
                        "selector": {"source_regions": ["ap-guangzhou"], "name_regex": "("},
                        "destinations": ["ap-shanghai"],
                        "copy": {"name_template": "{name}-{zone}"},
                    },
                ]
            }
        )
    )
    result = run(["rules", "check", str(bad)], tmp_path)
    assert result.returncode == 2
    assert "Rules.Invalid" in result.stderr
    assert "rules[0] (a).selector.name_regex" in result.stderr and "unknown placeholder(s) ['zone']" in result.stderr
    missing = run(["rules", "check", str(tmp_path / "nope.yaml")], tmp_path)
    assert missing.returncode == 2 and "cannot be read" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    syntax = run(["rules", "check", str(broken)], tmp_path)
    assert syntax.returncode == 2 and "not valid YAML" in syntax.stderr


@pytest.fixture
def env(emulator: Any, tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: web\n"
        "    selector: {source_regions: [ap-guangzhou], tags: {team: web}}\n"
        "    destinations: [ap-shanghai, ap-beijing]\n"
        "  - name: everything-else\n"
        "    selector: {source_regions: [ap-guangzhou]}\n"
        "    destinations: [ap-shanghai]\n"
    )
    return {
        "IMAGESYNC_TENCENT_ENDPOINT": emulator.endpoint,
        "TENCENTCLOUD_SECRET_ID": emulator.secret_id,
        "TENCENTCLOUD_SECRET_KEY": emulator.secret_key,
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "IMAGESYNC_QUEUE_PATH": str(tmp_path / "queue.db"),
        "IMAGESYNC_LOG_LEVEL": "WARNING",
        "IMAGESYNC_RULES_FILE": str(rules),
        "IMAGESYNC_RECONCILE_LIMIT": "3",
    }


def test_plan_shows_what_the_rules_would_copy_and_copies_nothing(
    env: dict[str, str], tmp_path: Path, emulator: Any
) -> None:
    emulator.admin.clear_calls()
    result = run(["plan", "--json"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    rows = {(r["rule"], r["image_id"]): r for r in plan["plan"]}
    assert rows[("web", "img-5ddkx3gh")]["destinations"] == ["ap-shanghai", "ap-beijing"]
    assert rows[("everything-else", "img-8c2rq9tw")]["destinations"] == ["ap-shanghai"]
    assert rows[("everything-else", "img-2hxv7lqe")]["refused"]["code"] == "Image.TooLarge"
    assert ("everything-else", "img-5ddkx3gh") not in rows  # the first rule took its only destination
    assert plan["limit"] == 3 and [r["within_limit"] for r in plan["plan"] if not r["refused"]][:2] == [True, True]
    assert emulator.admin.calls(action="SyncImages") == []
    status = run(["status", "--json"], tmp_path, env)
    assert json.loads(status.stdout) == []  # nothing recorded

    table = run(["plan"], tmp_path, env)
    assert table.returncode == 0 and "refused Image.TooLarge" in table.stdout and "web-base-2026" in table.stdout


def test_plan_with_invalid_rules_exits_2(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["plan"], tmp_path, {**env, "IMAGESYNC_RULES_JSON": "[]"})
    assert result.returncode == 2 and "Rules.Invalid" in result.stderr and "not both" in result.stderr
