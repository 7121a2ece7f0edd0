"""Issue 15 on the emulated SCF, with the project's REAL deploy package and serverless.yml: nothing runs at rest.

The emulator's clock starts three hours in the past and runs at real pace (the deployed functions read the real
clock, so the timers they arm must be read on the same one): three idle hours are stepped over, a copy is requested
through the Function URL and tracked by the one-shot timers the functions arm, its hook runs, the last end disarms
both timers, and three more idle hours are stepped over. The emulator's invocation log shows status_sweep only in
the busy stretch, every one of them fired by a timer.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagesync_emulator import Emulator

from .scf_toys import attempts, call, wait_for
from .test_scf_real_package import ROOT, _env, _http, built  # noqa: F401 (built: the package fixture)

pytestmark = pytest.mark.slow

IDLE_S = 3 * 3600
SWEEP, HOOK = "imagesync-status_sweep", "imagesync-completion_hook"
#: quick checks, so the copy (20-30 s at real pace) is tracked in real seconds
FAST = {
    "IMAGESYNC_FIRST_CHECK_SECONDS": "5",
    "IMAGESYNC_RECHECK_SECONDS": "5",
    "IMAGESYNC_MAX_CHECK_SECONDS": "15",
    "IMAGESYNC_SCHEDULE_LEAD_SECONDS": "2",
}


def _serverless(tmp_path: Path) -> Path:
    doc = yaml.safe_load((ROOT / "serverless.yml").read_text())
    for fn in doc["inputs"]["functions"].values():
        fn["environment"] += [{"key": k, "value": v} for k, v in FAST.items()]
    path = tmp_path / "serverless.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _timers(emu: Emulator) -> dict[str, bool]:
    triggers = call(emu, "ListTriggers", {"FunctionName": SWEEP})["Triggers"]
    return {t["TriggerName"]: t["Enable"] == 1 for t in triggers if t["Type"] == "timer"}


def _hour(run: dict[str, Any]) -> int:
    return int(run["started_at"] // 3600)


def test_idle_hours_have_no_sweep_and_a_copy_arms_then_disarms_it(built: Any, tmp_path: Path) -> None:  # noqa: F811
    state = tmp_path / "state.db"
    env = _env(state)
    subprocess.run(
        [sys.executable, "-c", "from imagesync.cli import app; app()", "db", "upgrade"],
        check=True,
        env={"IMAGESYNC_DATABASE_URL": env["IMAGESYNC_DATABASE_URL"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
    )
    with Emulator(time_scale=1.0, start=time.time() - IDLE_S) as emu:
        deployment = emu.deploy(_serverless(tmp_path), env=env, layers=built.layer_zip, code_dir=built.code_dir)
        assert _timers(emu) == {"status-sweep-next": False, "status-sweep-safety": False}  # deployed off
        url = deployment.urls["copy_request"]

        # idle: three emulated hours pass with nothing in flight
        start = emu.admin.now()
        emu.admin.advance(IDLE_S)
        time.sleep(0.5)  # the scheduler looks every 20 ms: give it many looks at the stepped clock
        assert emu.admin.scf_invocations(SWEEP) == [] and emu.admin.scf_pending() == []

        # a copy: the request arms the one-shot; each sweep re-arms at the next check; the end disarms both
        emu.admin.set_copy_duration(20, 30)
        status, body = _http(
            url + "/replications",
            "POST",
            {"source_region": "ap-guangzhou", "image_ids": ["img-5ddkx3gh"], "destination_regions": ["ap-shanghai"]},
        )
        assert status == 202, body
        assert _timers(emu) == {"status-sweep-next": True, "status-sweep-safety": True}
        wait_for(lambda: attempts(emu, HOOK), timeout=240, what="the copy's hook")
        # The sweep that disarms is still running when the trigger shows off (the disarm is its last step): wait for
        # it to finish too, or the count below misses it and the idle stretch's count includes it.
        wait_for(
            lambda: (
                _timers(emu) == {"status-sweep-next": False, "status-sweep-safety": False}
                and all(r["outcome"] != "running" for r in emu.admin.scf_invocations(SWEEP))
            ),
            timeout=120,
            what="the last end to disarm the sweep's timers, and that sweep to finish",
        )
        status, got = _http(url + f"/replications/{body['id']}")
        assert status == 200 and [r["state"] for r in got["replicas"]] == ["SUCCEEDED"], got
        sweeps = attempts(emu, SWEEP)
        assert sweeps and all(r["source"] == "timer" and r["outcome"] == "ok" for r in sweeps), sweeps
        assert len(sweeps) <= 12  # one-shots placed by the ETA, not a tick every 5 s for the whole copy
        busy_until = emu.admin.now()

        # idle again: three more hours, nothing fires
        emu.admin.advance(IDLE_S)
        time.sleep(0.5)
        runs = emu.admin.scf_invocations(SWEEP)
        assert len(runs) == len(sweeps) and emu.admin.scf_pending() == []
        per_hour = Counter(_hour(r) for r in runs)
        idle_hours = [
            h
            for h in range(int(start // 3600), int(emu.admin.now() // 3600) + 1)
            if not (start + IDLE_S) // 3600 <= h <= busy_until // 3600
        ]
        assert len(idle_hours) >= 4 and all(per_hour[h] == 0 for h in idle_hours), per_hour
