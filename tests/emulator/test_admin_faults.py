"""The admin handle: faults, rate limits, clock, counters, dump, world files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from imagesync_emulator import Emulator
from imagesync_emulator.worldfile import DEFAULT_WORLD, WorldFileError

from .conftest import DEFAULT_UIN, GZ, call, client, error_code


def outcomes(c: CvmClient, action: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        try:
            call(c, action)
            out.append("ok")
        except TencentCloudSDKException as exc:
            out.append(exc.code)
    return out


def test_scripted_errors_then_recovery(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.script_fault("DescribeImageQuota", 2, code="InternalError")
    assert outcomes(cvm, "DescribeImageQuota", 3) == ["InternalError", "InternalError", "ok"]
    assert emulator.admin.counters()["DescribeImageQuota"] == {"InternalError": 2, "ok": 1}


def test_scripted_drop_and_http5xx(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.script_fault("DescribeImages", 1, kind="drop")
    emulator.admin.script_fault("DescribeImages", 1, kind="http5xx")
    assert outcomes(cvm, "DescribeImages", 3) == ["ClientNetworkError", "ServerNetworkError", "ok"]
    assert [c["outcome"] for c in emulator.admin.calls("DescribeImages")] == ["ConnectionDropped", "HTTP502", "ok"]


def test_dropped_sync_does_not_copy(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.script_fault("SyncImages", 1, kind="drop")
    params = {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": ["ap-shanghai"]}
    assert error_code_or_network(cvm, "SyncImages", params) == "ClientNetworkError"
    assert emulator.admin.image("img-5ddkx3gh")["ImageState"] == "NORMAL"
    call(cvm, "SyncImages", params)


def error_code_or_network(c: CvmClient, action: str, params: dict) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call(c, action, params)
    return info.value.code


def test_random_faults_are_deterministic_under_the_seed() -> None:
    def run(seed: int) -> list[str]:
        with Emulator(seed=seed, rate_limits=False) as emu:
            emu.admin.set_fault("DescribeImageQuota", code="RequestLimitExceeded", rate=0.5)
            return outcomes(client(emu), "DescribeImageQuota", 30)

    first = run(3)
    assert first == run(3)
    assert 5 < first.count("RequestLimitExceeded") < 25
    assert run(4) != first


def test_fault_rates_for_drops_http_status_and_service(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_rate_limits(False)
    emulator.admin.set_fault("DescribeImageQuota", http_status_rate=1.0, http_status=503)
    assert outcomes(cvm, "DescribeImageQuota", 2) == ["ServerNetworkError"] * 2
    assert emulator.admin.calls()[-1]["outcome"] == "HTTP503"
    emulator.admin.set_fault("DescribeImageQuota", drop_rate=1.0)
    assert outcomes(cvm, "DescribeImageQuota", 1) == ["ClientNetworkError"]
    emulator.admin.set_fault("DescribeImageQuota", rate=1.0, code="InternalError", service="tag")
    assert outcomes(cvm, "DescribeImageQuota", 1) == ["ok"]  # the rule is for another service
    emulator.admin.clear_faults()
    assert outcomes(cvm, "DescribeImageQuota", 1) == ["ok"]


def test_latency(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_fault("DescribeImageQuota", latency=0.3)
    start = time.monotonic()
    call(cvm, "DescribeImageQuota")
    assert time.monotonic() - start >= 0.3


class SteppedMonotonic:
    """The rate limiter's clock, stepped by the test: its buckets refill only when the test says so, so a burst's
    outcome does not depend on how fast the machine sends it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def limiter_clock(monkeypatch: pytest.MonkeyPatch) -> SteppedMonotonic:
    from imagesync_emulator import ratelimit

    clock = SteppedMonotonic()
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock


def burst(c: CvmClient, action: str, n: int, threads: int = 8) -> list[str]:
    """``n`` calls from ``threads`` threads at once: their outcomes."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        return [r for chunk in pool.map(lambda k: outcomes(c, action, k), [n // threads] * threads) for r in chunk]


def test_rate_limits_per_account_and_action(
    emulator: Emulator, cvm: CvmClient, limiter_clock: SteppedMonotonic
) -> None:
    results = burst(cvm, "DescribeImageQuota", 32)  # 10/s: one second of burst, no refill meanwhile
    assert results.count("ok") == 10 and results.count("RequestLimitExceeded") == 22
    assert emulator.admin.counters()["DescribeImageQuota"]["RequestLimitExceeded"] == 22
    assert outcomes(cvm, "DescribeImageQuota", 1) == ["RequestLimitExceeded"]
    assert outcomes(cvm, "DescribeRegions", 1) == ["ok"]  # another action has its own budget
    from .conftest import partner_client

    assert outcomes(partner_client(emulator), "DescribeImageQuota", 1) == ["ok"]  # another account too
    limiter_clock.now += 0.25  # a quarter of a second: 2.5 tokens
    assert outcomes(cvm, "DescribeImageQuota", 3) == ["ok", "ok", "RequestLimitExceeded"]  # refilled
    limiter_clock.now += 60  # never more than one second of burst
    assert outcomes(cvm, "DescribeImageQuota", 11).count("ok") == 10
    emulator.admin.set_rate_limits(False)
    assert set(outcomes(cvm, "DescribeImageQuota", 30)) == {"ok"}


def test_describe_images_allows_forty_per_second(cvm: CvmClient, limiter_clock: SteppedMonotonic) -> None:
    results = burst(cvm, "DescribeImages", 96)
    assert results.count("ok") == 40 and results.count("RequestLimitExceeded") == 56


def test_clock(emulator: Emulator) -> None:
    t0 = emulator.admin.now()
    # it started at the real time of the emulator's start (and stands still: the fixture's clock is frozen)
    assert time.time() - 120 < t0 <= time.time()
    emulator.admin.set_time_scale(0)
    frozen = emulator.admin.now()
    time.sleep(0.05)
    assert emulator.admin.now() == frozen
    assert emulator.admin.advance(90) == pytest.approx(frozen + 90)
    with pytest.raises(ValueError):
        emulator.admin.advance(-1)
    emulator.admin.set_time_scale(600)
    time.sleep(0.05)
    assert emulator.admin.now() > frozen + 90 + 10


def test_call_log_and_counters(emulator: Emulator, cvm: CvmClient) -> None:
    call(cvm, "DescribeImages", {"ImageIds": ["img-5ddkx3gh"]})
    error_code(cvm, "DescribeImages", {"ImageIds": ["bad"]})
    log = emulator.admin.calls(service="cvm")
    assert [c["seq"] for c in log] == sorted(c["seq"] for c in log)
    first = log[0]
    assert first.keys() >= {
        "seq",
        "service",
        "action",
        "region",
        "account",
        "params",
        "outcome",
        "request_id",
        "emulated_time",
        "real_time",
    }
    assert (first["action"], first["region"], first["account"], first["params"], first["outcome"]) == (
        "DescribeImages",
        GZ,
        DEFAULT_UIN,
        {"ImageIds": ["img-5ddkx3gh"]},
        "ok",
    )
    assert emulator.admin.counters()["DescribeImages"] == {"ok": 1, "InvalidImageId.Malformed": 1}
    emulator.admin.clear_calls()
    assert emulator.admin.calls() == []
    assert emulator.admin.calls(action="DescribeImages", service="tag") == []


def test_dump_set_image_state_and_add_image(emulator: Emulator, cvm: CvmClient) -> None:
    d = emulator.admin.dump()
    assert {a["name"] for a in d["accounts"]} == {"default", "partner"}
    assert {i["ImageId"] for i in d["images"][GZ]} >= {"img-5ddkx3gh", "img-sh4red01", "img-9fjm4wza"}
    assert {i["instance_id"] for i in d["instances"]} == {"ins-1a2b3c4d", "ins-5e6f7a8b"}
    assert json.dumps(d)  # JSON-able
    emulator.admin.set_image_state("img-5ddkx3gh", "IMPORTFAILED")
    assert call(cvm, "DescribeImages", {"ImageIds": ["img-5ddkx3gh"]})["ImageSet"][0]["ImageState"] == "IMPORTFAILED"
    new = emulator.admin.add_image(GZ, name="seeded", tags={"k": "v"}, state="CREATING", ready_after=60)
    img = emulator.admin.image(new)
    assert (img["ImageState"], img["Tags"], img["Region"]) == ("CREATING", [{"Key": "k", "Value": "v"}], GZ)
    emulator.admin.advance(61)
    assert emulator.admin.image(new)["ImageState"] == "NORMAL"
    assert emulator.admin.image("img-nothere") is None


def test_accounts_and_keys(emulator: Emulator) -> None:
    accounts = {a["name"]: a for a in emulator.admin.accounts()}
    assert accounts["default"]["uin"] == "100000000001" and accounts["default"]["app_id"] == 1250000001
    assert accounts["partner"]["uin"] == "100000000002"
    assert emulator.secret_id == accounts["default"]["secret_id"] and "EMULATOR" in emulator.secret_id
    assert "not-real" in emulator.secret_key
    assert emulator.endpoint == f"http://{emulator.host_port}"


def test_world_from_yaml_json_and_dict(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_WORLD.read_text())
    data["images"].append({"id": "img-fromfile", "region": "ap-tokyo", "owner": "partner", "name": "t"})
    data["accounts"][0]["cross_border_approved"] = True
    jpath = tmp_path / "w.json"
    jpath.write_text(json.dumps(data))
    ypath = tmp_path / "w.yaml"
    ypath.write_text(yaml.safe_dump(data))
    for world in (jpath, str(ypath), data):
        with Emulator(world=world) as emu:
            assert emu.admin.image("img-fromfile")["OwnerUin"] == "100000000002"
            call(client(emu), "SyncImages", {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": ["ap-tokyo"]})


def test_bad_world_files_fail_loudly() -> None:
    with pytest.raises(WorldFileError):
        Emulator(world={"accounts": [{"uin": "1"}], "imagez": []})
    with pytest.raises(WorldFileError):
        Emulator(world={"accounts": []})
    with pytest.raises(WorldFileError):
        Emulator(world={"accounts": [{"uin": "1"}], "images": [{"id": "img-aaaaaaaa", "region": "ap-mumbai"}]})


def test_fixture_gives_a_fresh_world(emulator: Emulator) -> None:
    assert emulator.admin.calls() == []
    assert emulator.admin.image("img-5ddkx3gh")["ImageState"] == "NORMAL"
