"""Progress curves: SyncPercent as DescribeImages shows it while a copy runs, per world and per copy."""

from __future__ import annotations

import pytest
import yaml
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from imagesync_emulator import Emulator
from imagesync_emulator.progress import CURVES, NAMES
from imagesync_emulator.worldfile import DEFAULT_WORLD, WorldFileError

from .conftest import call, client

WEB = "img-5ddkx3gh"
API = "img-8c2rq9tw"
SPAN = 1000.0  # every copy in these tests lasts exactly this many emulated seconds
MAINLAND = ["ap-shanghai", "ap-beijing", "ap-nanjing", "ap-chengdu", "ap-chongqing"]


def start_copy(emu: Emulator, region: str = "ap-shanghai", source: str = WEB) -> str:
    resp = call(
        client(emu), "SyncImages", {"ImageIds": [source], "DestinationRegions": [region], "ImageSetRequired": True}
    )
    return resp["ImageSet"][0]["ImageId"]


def observe(emu: Emulator, copy_id: str, region: str = "ap-shanghai") -> tuple[str, int | None]:
    img = call(client(emu, region=region), "DescribeImages", {"ImageIds": [copy_id]})["ImageSet"][0]
    return img["ImageState"], img["SyncPercent"]


def run_curve(emu: Emulator, copy_id: str, at: list[float]) -> list[tuple[str, int | None]]:
    """The copy as DescribeImages shows it at each emulated offset (seconds since it started, increasing)."""
    seen, done = [], 0.0
    for t in at:
        emu.admin.advance(t - done)
        done = t
        seen.append(observe(emu, copy_id))
    return seen


@pytest.mark.parametrize(
    ("curve", "expected"),
    [
        # offsets:     0    100  300  500  650  850  999
        ("linear", [0, 10, 30, 50, 65, 85, 99]),
        ("slow_start", [0, 1, 9, 25, 42, 72, 99]),
        ("stall_99", [0, 19, 59, 99, 99, 99, 99]),  # 0 -> 99 over the first half (stall: min(900 s, half))
        ("jumps", [0, 0, 40, 40, 80, 80, 99]),
        ("zero_start", [0, 0, 0, 28, 50, 78, 99]),
        ("null_start", [None, None, 0, 28, 50, 78, 99]),  # null until 30%, then 0 and up
    ],
)
def test_each_curve_shapes_sync_percent_and_never_moves_the_end(
    emulator: Emulator, curve: str, expected: list[int | None]
) -> None:
    emulator.admin.set_copy_duration(SPAN, SPAN)
    emulator.admin.set_progress_curve(curve)
    copy_id = start_copy(emulator)
    seen = run_curve(emulator, copy_id, [0, 100, 300, 500, 650, 850, 999])
    assert [s for s, _ in seen] == ["SYNCING"] * 7
    assert [p for _, p in seen] == expected
    assert emulator.admin.image(copy_id)["ProgressCurve"] == curve
    emulator.admin.advance(1)  # the copy ends when its duration says, whatever the curve
    assert observe(emulator, copy_id) == ("NORMAL", 100)


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_curves_never_go_back(curve: str) -> None:
    from imagesync_emulator.progress import percent

    values = [percent(curve, t, SPAN) for t in range(0, int(SPAN))]
    numbers = [v if v is not None else -1 for v in values]
    assert numbers == sorted(numbers) and max(numbers) == 99 and all(v is None or 0 <= v <= 99 for v in values)


def test_a_copy_in_flight_can_change_curve(emulator: Emulator) -> None:
    emulator.admin.set_copy_duration(SPAN, SPAN)
    copy_id = start_copy(emulator)
    emulator.admin.advance(300)
    assert observe(emulator, copy_id) == ("SYNCING", 30)
    emulator.admin.set_progress_curve("stall_99", image_id=copy_id)
    assert observe(emulator, copy_id) == ("SYNCING", 59)
    emulator.admin.advance(300)
    assert observe(emulator, copy_id) == ("SYNCING", 99)
    other = start_copy(emulator, "ap-beijing", API)  # the world's setting is untouched: linear
    assert emulator.admin.image(other)["ProgressCurve"] == "linear"
    emulator.admin.advance(400)
    assert observe(emulator, copy_id) == ("NORMAL", 100)


def test_the_source_shows_its_least_advanced_copy(emulator: Emulator) -> None:
    emulator.admin.set_copy_duration(SPAN, SPAN)
    emulator.admin.set_progress_curve("null_start")
    start_copy(emulator)
    emulator.admin.advance(100)
    src = call(client(emulator), "DescribeImages", {"ImageIds": [WEB]})["ImageSet"][0]
    assert (src["ImageState"], src["SyncPercent"]) == ("SYNCING", 0)


def mixed_curves(seed: int) -> list[str]:
    with Emulator(world=None, time_scale=0.0, seed=seed, rate_limits=False) as emu:
        emu.admin.set_progress_curve("mixed")
        emu.admin.set_copy_duration(60, 60)
        curves = []
        for _ in range(4):  # one SyncImages per NORMAL source: wait for the copies to end between calls
            resp = call(
                client(emu), "SyncImages", {"ImageIds": [WEB], "DestinationRegions": MAINLAND, "ImageSetRequired": True}
            )
            curves += [emu.admin.image(s["ImageId"])["ProgressCurve"] for s in resp["ImageSet"]]
            emu.admin.advance(61)
        return curves


def test_mixed_draws_per_copy_deterministically_under_the_seed() -> None:
    first = mixed_curves(0)
    assert first == mixed_curves(0)
    assert len(set(first)) >= 4 and set(first) <= set(CURVES)
    assert first != mixed_curves(1)


def test_mixed_leaves_ids_and_durations_as_linear_draws_them() -> None:
    def copies(curve: str) -> list[tuple[str, float]]:
        with Emulator(world=None, time_scale=0.0, seed=7) as emu:
            emu.admin.set_progress_curve(curve)
            resp = call(
                client(emu), "SyncImages", {"ImageIds": [WEB], "DestinationRegions": MAINLAND, "ImageSetRequired": True}
            )
            ends = {
                h["image_id"]: h["ready_at"] - h["at"]
                for h in emu.admin.dump()["history"]
                if h["event"] == "copy_started"
            }
            return [(s["ImageId"], ends[s["ImageId"]]) for s in resp["ImageSet"]]

    assert copies("mixed") == copies("linear")


def test_world_file_chooses_the_curve_and_refuses_unknown_ones() -> None:
    data = yaml.safe_load(DEFAULT_WORLD.read_text())
    data["settings"] = {"progress_curve": "jumps", "copy_duration": [SPAN, SPAN]}
    with Emulator(world=data, time_scale=0.0) as emu:
        copy_id = start_copy(emu)
        emu.admin.advance(350)
        assert observe(emu, copy_id) == ("SYNCING", 40)
        assert emu.admin.dump()["settings"]["progress_curve"] == "jumps"
    data["settings"] = {"progress_curve": "sigmoid"}
    with pytest.raises(WorldFileError, match="progress_curve"):
        Emulator(world=data)


def test_admin_refuses_unknown_curves_and_non_copies(emulator: Emulator, cvm: CvmClient) -> None:
    with pytest.raises(ValueError, match="unknown progress curve"):
        emulator.admin.set_progress_curve("sigmoid")
    with pytest.raises(KeyError):
        emulator.admin.set_progress_curve("linear", image_id=WEB)  # a source, not a copy
    status, body = emulator.admin.http("POST", "set_progress_curve", {"curve": "nope"})
    assert status == 400 and "mixed" in str(body)
    assert set(NAMES) == set(CURVES) | {"mixed"}
