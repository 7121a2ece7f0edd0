"""The "lost answer" fault (drop_after): the emulator does the call, then closes the connection unanswered."""

from __future__ import annotations

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from imagesync_emulator import Emulator

from .conftest import call, client, error_code

SH = "ap-shanghai"
SYNC = {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": [SH], "ImageSetRequired": True}


def copies_in(emu: Emulator, region: str, name: str) -> list[dict]:
    return [i for i in emu.admin.dump()["images"].get(region, []) if i["ImageName"] == name]


def test_scripted_lost_answer_after_sync_images_started_the_copy(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.script_fault("SyncImages", 1, kind="drop_after")

    assert error_code_network(cvm, "SyncImages", SYNC) == "ClientNetworkError"

    # The caller heard nothing, yet the copy runs: one SYNCING image of that name in the destination, source busy.
    started = copies_in(emulator, SH, "web-base-2026")
    assert [c["ImageState"] for c in started] == ["SYNCING"]
    assert emulator.admin.image("img-5ddkx3gh")["ImageState"] == "SYNCING"
    [logged] = emulator.admin.calls("SyncImages")
    assert (logged["outcome"], logged["answer_lost"]) == ("ok", True)
    assert emulator.admin.counters()["SyncImages"] == {"ok": 1}
    # A blind retry meets the copy it does not know it started; finding it by name is the way out.
    assert error_code(cvm, "SyncImages", SYNC) == "FailedOperation.InvalidImageState"
    assert emulator.admin.calls("SyncImages")[-1]["answer_lost"] is False
    found = call(
        client(emulator, region=SH),
        "DescribeImages",
        {"Filters": [{"Name": "image-name", "Values": ["web-base-2026"]}]},
    )["ImageSet"]
    assert [i["ImageId"] for i in found] == [started[0]["ImageId"]]


def error_code_network(c: CvmClient, action: str, params: dict) -> str:
    with pytest.raises(TencentCloudSDKException) as info:
        call(c, action, params)
    return info.value.code


def test_lost_answer_of_a_refused_call_is_logged_with_its_real_outcome(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.script_fault("CreateImage", 1, kind="drop_after")
    params = {"InstanceId": "ins-1a2b3c4d", "ImageName": "web-base-2026"}  # the name is taken

    assert error_code_network(cvm, "CreateImage", params) == "ClientNetworkError"

    [logged] = emulator.admin.calls("CreateImage")
    assert (logged["outcome"], logged["answer_lost"]) == ("InvalidImageName.Duplicate", True)
    assert len(copies_in(emulator, "ap-guangzhou", "web-base-2026")) == 1
    # The script is used up: the next call is answered.
    assert error_code(cvm, "CreateImage", params) == "InvalidImageName.Duplicate"


def test_plain_drop_still_changes_nothing(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.script_fault("SyncImages", 1, kind="drop")
    assert error_code_network(cvm, "SyncImages", SYNC) == "ClientNetworkError"
    assert copies_in(emulator, SH, "web-base-2026") == []
    [logged] = emulator.admin.calls("SyncImages")
    assert (logged["outcome"], logged["answer_lost"]) == ("ConnectionDropped", False)


def lost_answer_run(seed: int, calls: int = 24) -> tuple[list[str], int]:
    """(what the caller saw per CreateImage, images created) with half the answers lost at random."""
    with Emulator(seed=seed, rate_limits=False) as emu:
        emu.admin.set_fault("CreateImage", drop_after_rate=0.5)
        cvm = client(emu)
        seen = []
        for n in range(calls):
            try:
                call(cvm, "CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": f"lost-answer-{n}"})
                seen.append("ok")
            except TencentCloudSDKException as exc:
                seen.append(exc.code)
        created = sum(
            1 for i in emu.admin.dump()["images"]["ap-guangzhou"] if i["ImageName"].startswith("lost-answer-")
        )
        assert [c["answer_lost"] for c in emu.admin.calls("CreateImage")] == [s != "ok" for s in seen]
        return seen, created


def test_random_lost_answers_are_deterministic_under_the_seed() -> None:
    first, created = lost_answer_run(7)
    assert created == len(first)  # every call did its work, answered or not
    assert set(first) == {"ok", "ClientNetworkError"}
    assert 4 < first.count("ClientNetworkError") < 20
    assert lost_answer_run(7) == (first, created)
    assert lost_answer_run(8)[0] != first


def test_rules_without_drop_after_draw_the_same_faults_as_before(emulator: Emulator) -> None:
    """A rule that does not ask for lost answers draws exactly the numbers it drew before the fault existed."""
    import random

    emulator.admin.set_fault("DescribeImageQuota", code="RequestLimitExceeded", rate=0.5)
    emulator.admin.set_rate_limits(False)
    cvm = client(emulator)
    rng = random.Random(f"{0}:DescribeImageQuota")
    expected = []
    for _ in range(12):
        _drop, _http, err = rng.random(), rng.random(), rng.random()
        expected.append("RequestLimitExceeded" if err < 0.5 else "ok")
    seen = []
    for _ in range(12):
        try:
            call(cvm, "DescribeImageQuota")
            seen.append("ok")
        except TencentCloudSDKException as exc:
            seen.append(exc.code)
    assert seen == expected


def test_lost_answers_over_the_admin_http_api(emulator: Emulator, cvm: CvmClient) -> None:
    base = emulator.admin_url + "/"
    r = requests.post(base + "script_fault", json={"action": "SyncImages", "count": 1, "kind": "drop_after"})
    assert r.status_code == 200
    assert error_code_network(cvm, "SyncImages", SYNC) == "ClientNetworkError"
    assert len(copies_in(emulator, SH, "web-base-2026")) == 1
    assert requests.post(base + "set_fault", json={"action": "DescribeImageQuota", "drop_after_rate": 1.0}).ok
    assert error_code_network(cvm, "DescribeImageQuota", {}) == "ClientNetworkError"
    assert emulator.admin.calls("DescribeImageQuota")[-1]["answer_lost"] is True
    assert requests.post(base + "set_fault", json={"action": "X", "drop_after_rate": 2}).status_code == 400
    assert requests.post(base + "script_fault", json={"action": "X", "count": 1, "kind": "nope"}).status_code == 400
