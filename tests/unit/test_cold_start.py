"""A cold start builds only what its first answer needs (docs/benchmarks.md, "Cold import and the deploy package").

Each case is a fresh interpreter that imports a function's entry (functions/<name>/index.py), answers the first
event scripts/bench_cold_import.py times, and lists the modules it loaded: what the answer does not need (any part of
the SDK, the webhook poster, the hook runners, the SQL store for answers that never read the state table) must
not be among them, so a module-level import or an eager construction in the composition root cannot come back
silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: the first events of scripts/bench_cold_import.py (answers that need no network)
HEALTH = {"httpMethod": "GET", "path": "/health", "headers": {}, "queryString": {}, "body": ""}
TIMER = {"Type": "Timer", "TriggerName": "every_minute", "Time": "2026-01-01T00:00:00Z", "Message": ""}
BAD_RECORD = {"source": "imagesync.outbox", "messages": [{}]}

#: what no first answer below needs
NEVER = (
    # no part of the SDK (nor requests, its HTTP client): the cloud client is built by the first cloud call
    # (wiring.Services.cloud), its SDK clients by their first call
    "tencentcloud",
    "requests",
    "imagesync.adapters.tencent",
    "imagesync.adapters.webhook",  # the webhook poster: completion_hook's runners, for a valid record only
    "imagesync.app.hooks.webhook",
    "imagesync.app.hooks.tag",
    "imagesync.app.rules",  # no rules configured
)
#: the state table: only status_sweep's answer reads it (with nothing in flight it still looks)
STORE = ("sqlalchemy", "imagesync.adapters.sql")
#: what an idle sweep does not need either: it calls no cloud API (IMAGESYNC_SCHEDULER=none: nothing to disarm)
#: and reads a timer, no other trigger's envelope
IDLE_SWEEP_NEVER = (
    "imagesync.adapters.cvm",  # the image service and the copy starter: built when a copy is looked at or started
    "imagesync.adapters.accounts",
    "imagesync.app.first_look",
    "imagesync.platform.envelopes",  # the other triggers' models (platform.timer is the timer's)
)


def first_answer(
    function: str,
    event: dict[str, Any],
    tmp_path: Path,
    *,
    collector: dict[str, Any] | None = None,
    settings: dict[str, str] | None = None,
) -> tuple[Any, set[str]]:
    """The answer and the modules loaded; `collector` (if given) is filled with the garbage collector's state
    after `import index` (`paused`: off) and after the answer (`enabled`, `frozen`: gc.get_freeze_count());
    `settings`: more environment variables."""
    code = (
        "import gc, json, sys\n"
        f"sys.path[:0] = [{str(ROOT / 'functions' / function)!r}, {str(ROOT / 'shared')!r}]\n"
        "import index\n"
        "paused = not gc.isenabled()\n"
        f"answer = index.main_handler(json.loads({json.dumps(event)!r}), {{'request_id': 'cold'}})\n"
        "gc_after = {'paused': paused, 'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count()}\n"
        "print(json.dumps({'answer': answer, 'modules': sorted(sys.modules), 'gc': gc_after}, default=str))\n"
    )
    env = {
        **os.environ,
        "IMAGESYNC_TENCENT_ENDPOINT": "http://127.0.0.1:9",  # never reached: nothing calls the cloud
        "IMAGESYNC_LOG_LEVEL": "CRITICAL",
        "IMAGESYNC_API_AUTH": "none",
        "IMAGESYNC_DATABASE_URL": f"sqlite:///{tmp_path}/state.db",
        "IMAGESYNC_QUEUE_PATH": f"{tmp_path}/queue.db",
        **(settings or {}),
    }
    out = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path, env=env
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if collector is not None:
        collector.update(result["gc"])
    return result["answer"], set(result["modules"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """The names among `modules`, a package standing for its submodules too."""
    return [name for name in names if any(m == name or m.startswith(f"{name}.") for m in modules)]


def test_health_builds_no_store_no_sdk_client_no_hook(tmp_path: Path) -> None:
    answer, modules = first_answer("copy_request", HEALTH, tmp_path)
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"status": "ok"}
    assert loaded(modules, NEVER + STORE) == []
    assert not (tmp_path / "state.db").exists()  # the engine was never made


def test_a_rejected_completion_record_builds_no_hook_runner_and_no_store(tmp_path: Path) -> None:
    answer, modules = first_answer("completion_hook", BAD_RECORD, tmp_path)
    assert answer["processed"] == 0 and [r["code"] for r in answer["rejected"]] == ["Event.Invalid"]
    assert loaded(modules, NEVER + STORE + ("imagesync.app.complete",)) == []


@pytest.mark.parametrize("first", [True, False], ids=["schema-made", "schema-exists"])
def test_an_idle_sweep_reads_the_state_table_and_builds_nothing_else(tmp_path: Path, first: bool) -> None:
    if not first:
        first_answer("status_sweep", TIMER, tmp_path)  # SQLite: the schema is made on first start
    answer, modules = first_answer("status_sweep", TIMER, tmp_path)
    assert answer["claimed"] == 0 and answer["outcomes"] == {}
    assert loaded(modules, STORE) == list(STORE)  # its answer is the state table's: it must look
    assert loaded(modules, NEVER) == []
    # nothing to publish: the completion link (here the local queue, with its own SQLite file) is never built
    assert "imagesync.adapters.queues.local" not in modules and not (tmp_path / "queue.db").exists()


def test_an_idle_sweep_builds_no_image_service_no_starter_and_no_other_envelope(tmp_path: Path) -> None:
    first_answer("status_sweep", TIMER, tmp_path)  # the schema
    answer, modules = first_answer("status_sweep", TIMER, tmp_path)
    assert answer["claimed"] == 0 and answer["schedule"] is None
    assert loaded(modules, IDLE_SWEEP_NEVER) == []
    assert "imagesync.platform.timer" in modules


#: status_sweep as serverless.yml deploys it: an idle sweep disarms its two timers (scripts/bench_cold_import.py)
SCF_TIMER = {
    "IMAGESYNC_SCHEDULER": "scf-timer",
    "IMAGESYNC_SWEEP_FUNCTION": "status_sweep",
    "IMAGESYNC_SWEEP_TIMER": "status_sweep_next",
    "IMAGESYNC_SWEEP_SAFETY_TIMER": "status_sweep_safety",
    "TENCENTCLOUD_SECRET_ID": "AKIDcold",
    "TENCENTCLOUD_SECRET_KEY": "cold",
}


def test_an_idle_sweep_disarms_through_the_sdks_common_client_without_the_scf_product_modules(
    tmp_path: Path,
) -> None:
    first_answer("status_sweep", TIMER, tmp_path)  # the schema
    answer, modules = first_answer("status_sweep", TIMER, tmp_path, settings=SCF_TIMER)
    assert answer["claimed"] == 0
    # the disarm was really sent (through the official SDK: refused here, nothing listens on the endpoint)
    assert answer["schedule"]["error"]["cause"] == "ClientNetworkError", answer["schedule"]
    assert "tencentcloud.common.common_client" in modules and "imagesync.adapters.sweep_timer" in modules
    # the scf product's client and models modules (about 0.02 of the floor) are not what makes the call
    assert loaded(modules, ("tencentcloud.scf", "tencentcloud.cvm")) == []
    assert loaded(modules, IDLE_SWEEP_NEVER) == []


def test_the_sweeps_cold_start_runs_without_the_collector_and_resumes_it_before_answering(tmp_path: Path) -> None:
    gc_state: dict[str, Any] = {}
    answer, _ = first_answer("status_sweep", TIMER, tmp_path, collector=gc_state)
    assert answer["claimed"] == 0
    # off from the entry's import (platform.coldstart.pause) to the end of the first answer, then frozen and on
    assert gc_state["paused"] and gc_state["enabled"] and gc_state["frozen"] > 10_000
