"""Image quota control, DescribeInstances filters, and DeleteImages on an image instances were launched from."""

from __future__ import annotations

import requests
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from imagesync_emulator import Emulator

from .conftest import DEFAULT_UIN, GZ, call, client, error_code, partner_client

SH, BJ = "ap-shanghai", "ap-beijing"


def own_images(emu: Emulator, region: str) -> list[dict]:
    return [i for i in emu.admin.dump()["images"].get(region, []) if i["OwnerUin"] == DEFAULT_UIN]


def test_a_full_region_refuses_copies_and_new_images(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_image_quota(0, region=SH)

    assert call(client(emulator, region=SH), "DescribeImageQuota")["ImageNumQuota"] == 0
    assert call(cvm, "DescribeImageQuota")["ImageNumQuota"] == 500  # other regions keep theirs
    sync = {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": [BJ, SH]}
    assert error_code(cvm, "SyncImages", sync) == "ImageQuotaLimitExceeded"
    assert own_images(emulator, SH) == [] and own_images(emulator, BJ) == []  # one full region fails the call
    call(cvm, "SyncImages", {**sync, "DestinationRegions": [BJ]})
    assert len(own_images(emulator, BJ)) == 1


def test_quota_counts_the_images_already_there(emulator: Emulator, cvm: CvmClient) -> None:
    here = len(own_images(emulator, GZ))
    emulator.admin.set_image_quota(here + 1, region=GZ)
    call(cvm, "CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": "fits"})
    assert (
        error_code(cvm, "CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": "one-too-many"})
        == "ImageQuotaLimitExceeded"
    )
    assert [i["ImageName"] for i in own_images(emulator, GZ)].count("one-too-many") == 0
    # region=None sets every region and drops the per-region settings.
    emulator.admin.set_image_quota(here + 5)
    assert call(cvm, "DescribeImageQuota")["ImageNumQuota"] == here + 5
    assert call(client(emulator, region=SH), "DescribeImageQuota")["ImageNumQuota"] == here + 5
    call(cvm, "CreateImage", {"InstanceId": "ins-1a2b3c4d", "ImageName": "one-too-many"})
    # Another account's quota is its own.
    emulator.admin.set_image_quota(0, region=GZ, uin="partner")
    assert call(partner_client(emulator), "DescribeImageQuota")["ImageNumQuota"] == 0
    assert call(cvm, "DescribeImageQuota")["ImageNumQuota"] == here + 5
    [partner] = [a for a in emulator.admin.dump()["accounts"] if a["name"] == "partner"]
    assert partner["region_image_quotas"] == {GZ: 0}


def test_quota_over_http_and_in_world_files(emulator: Emulator, cvm: CvmClient) -> None:
    base = emulator.admin_url + "/"
    assert requests.post(base + "set_image_quota", json={"quota": 7, "region": SH}).ok
    assert call(client(emulator, region=SH), "DescribeImageQuota")["ImageNumQuota"] == 7
    assert requests.post(base + "set_image_quota", json={"quota": -1}).status_code == 400
    assert requests.post(base + "set_image_quota", json={"quota": 1, "region": "xx-nowhere"}).status_code == 400
    world = {"accounts": [{"name": "default", "uin": DEFAULT_UIN, "image_quota": 3, "region_image_quotas": {SH: 1}}]}
    with Emulator(world=world, rate_limits=False) as emu:
        assert call(client(emu), "DescribeImageQuota")["ImageNumQuota"] == 3
        assert call(client(emu, region=SH), "DescribeImageQuota")["ImageNumQuota"] == 1


def instance_ids(c: CvmClient, params: dict) -> list[str]:
    return [i["InstanceId"] for i in call(c, "DescribeInstances", params)["InstanceSet"]]


def test_describe_instances_filters(emulator: Emulator, cvm: CvmClient) -> None:
    def by(name: str, *values: str) -> list[str]:
        return instance_ids(cvm, {"Filters": [{"Name": name, "Values": list(values)}]})

    assert by("zone", "ap-guangzhou-3") == ["ins-1a2b3c4d", "ins-5e6f7a8b"]
    assert by("instance-name", "web-1") == ["ins-1a2b3c4d"]
    assert by("instance-id", "ins-5e6f7a8b") == ["ins-5e6f7a8b"]
    assert by("instance-state", "STOPPED") == []
    assert by("creation-start-time", "2000-01-01 00:00:00") == ["ins-1a2b3c4d", "ins-5e6f7a8b"]
    assert by("creation-end-time", "2000-01-01 00:00:00") == []
    # The SDK documents no image-id filter for DescribeInstances (only for DescribeImages): refused, not ignored.
    assert (
        error_code(cvm, "DescribeInstances", {"Filters": [{"Name": "image-id", "Values": ["img-5ddkx3gh"]}]})
        == "InvalidFilter"
    )
    assert (
        error_code(cvm, "DescribeInstances", {"Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]}) == "InvalidFilter"
    )
    assert (
        error_code(
            cvm, "DescribeInstances", {"InstanceIds": ["ins-1a2b3c4d"], "Filters": [{"Name": "zone", "Values": ["x"]}]}
        )
        == "InvalidParameterCombination"
    )
    assert error_code(cvm, "DescribeInstances", {"InstanceIds": ["ins-1"]}) == "InvalidInstanceId.Malformed"
    assert (
        error_code(cvm, "DescribeInstances", {"Filters": [{"Name": "zone", "Values": ["a"] * 6}]})
        == "InvalidFilterValue.LimitExceeded"
    )


def instances_using(c: CvmClient, image_id: str) -> list[str]:
    """ "Is any instance using this image": page DescribeInstances and compare ImageId (no image-id filter)."""
    using, offset = [], 0
    while True:
        page = call(c, "DescribeInstances", {"Offset": offset, "Limit": 100})
        using += [i["InstanceId"] for i in page["InstanceSet"] if i["ImageId"] == image_id]
        offset += len(page["InstanceSet"])
        if not page["InstanceSet"] or offset >= page["TotalCount"]:
            return using


def test_instances_using_an_image_and_deleting_it(emulator: Emulator, cvm: CvmClient) -> None:
    assert instances_using(cvm, "img-5ddkx3gh") == ["ins-1a2b3c4d"]
    assert instances_using(cvm, "img-8c2rq9tw") == []
    # The SDK's DeleteImages error codes have no "in use by an instance" refusal (InShared, IncorrectState,
    # Malformed, NotFound, InvalidParameterValue.*, MutexOperation.TaskRunning): the image goes, the instance stays.
    call(cvm, "DeleteImages", {"ImageIds": ["img-5ddkx3gh"]})
    assert emulator.admin.image("img-5ddkx3gh") is None
    assert instances_using(cvm, "img-5ddkx3gh") == ["ins-1a2b3c4d"]
