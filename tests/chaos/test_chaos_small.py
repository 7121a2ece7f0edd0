"""The chaos scenario, small (docs/chaos.md has the full runs): 40 images x 3 regions on SQLite, with every fault
and crash of the full run, through the real handlers in worker processes on the emulator in its own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagesync_dev.chaos import ChaosConfig, render, run


# A wall-clock bound only, the run ends as soon as every copy has: it took 105 s of the former 150 on 2 cores under
# `make test` with two busy loops beside it (2026-11-29). The test's own timeout leaves room for the workers'
# shutdown and the report after it.
@pytest.mark.timeout(600)
def test_chaos_small_ends_every_copy_once_with_one_effect_per_hook(tmp_path: Path) -> None:
    cfg = ChaosConfig(
        images=40,
        workdir=tmp_path,
        max_seconds=420,
        seed=3,
        kill_every=3.0,
        event_workers=2,
        hook_workers=1,
        # higher crash rates than the full run, so that each point fires even at this size
        failpoints="after_sync_images=0.15,after_outbox_publish=0.05,inside_hook=0.05",
    )
    report = run(cfg)
    text = render(report)
    r, s, h = report["replicas"], report["sync_images"], report["hooks"]
    assert report["finished"], text
    assert r["image_region_pairs"] == r["expected"] == 120 and r["stuck"] == 0, text
    assert r["succeeded"] + r["failed"] == r["total"] >= 120, text
    # one successful SyncImages per started copy ("calls/copies" per pair); no copy nobody tracks
    assert all(k.split("/")[0] == k.split("/")[1] for k in s["calls_per_started_copies"]), text
    assert not s["pairs_with_more_calls_than_copies"], text
    assert not s["calls_vs_copies_mismatch"] and not s["orphan_copies"], text
    # exactly one distinct effect per hook per replica end (raw webhook POSTs may be more: at least once)
    assert h["webhook_distinct_deliveries_per_end"] == {"1": r["total"]}, text
    assert h["webhook_invalid_signatures"] == 0, text
    assert h["copies_tagged_per_success"] == {"1": r["succeeded"]}, text
    assert h["copies_shared_per_success"] == {"1": r["succeeded"]}, text
    assert set(h["share_calls_ok_per_copy"]) <= {"1"}, text
    # the chaos was real: faults met, workers crashed at the failpoints and were restarted
    crashes = report["crashes"]
    assert sum(crashes["failpoints"].values()) >= 3, text
    assert sum(report["counters"]["DescribeImages"].get(k, 0) for k in ("RequestLimitExceeded", "InternalError")) > 0
    assert report["ok"], text
