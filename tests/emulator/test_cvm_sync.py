"""SyncImages: the copy lifecycle on the emulated clock, and every rule the emulator decides."""

from __future__ import annotations

import pytest
from tencentcloud.cvm.v20170312 import models
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from imagesync_emulator import Emulator

from .conftest import DEFAULT_UIN, GZ, call, client, error_code, partner_client

WEB = "img-5ddkx3gh"


def sync(c: CvmClient, image_id: str, *regions: str, **extra: object) -> dict:
    return call(c, "SyncImages", {"ImageIds": [image_id], "DestinationRegions": list(regions), **extra})


def sync_error(c: CvmClient, image_id: str, *regions: str, **extra: object) -> str:
    return error_code(c, "SyncImages", {"ImageIds": [image_id], "DestinationRegions": list(regions), **extra})


def test_copy_lifecycle(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_copy_duration(1200, 1200)
    req = models.SyncImagesRequest()
    req.ImageIds, req.DestinationRegions, req.ImageSetRequired = [WEB], ["ap-shanghai", "ap-beijing"], True
    resp = cvm.SyncImages(req)
    copies = {s.Region: s.ImageId for s in resp.ImageSet}
    assert set(copies) == {"ap-shanghai", "ap-beijing"} and WEB not in copies.values()

    shanghai = client(emulator, region="ap-shanghai")
    dest = call(shanghai, "DescribeImages", {"ImageIds": [copies["ap-shanghai"]]})["ImageSet"][0]
    assert (dest["ImageState"], dest["ImageName"], dest["ImageType"], dest["ImageSize"]) == (
        "SYNCING",
        "web-base-2026",
        "PRIVATE_IMAGE",
        20,
    )
    assert 0 <= dest["SyncPercent"] < 100
    assert emulator.admin.image(copies["ap-shanghai"])["OwnerUin"] == DEFAULT_UIN
    assert emulator.admin.image(WEB)["ImageState"] == "SYNCING"  # the source is busy, not NORMAL

    emulator.admin.advance(600)
    half = call(shanghai, "DescribeImages", {"ImageIds": [copies["ap-shanghai"]]})["ImageSet"][0]
    assert half["ImageState"] == "SYNCING" and 45 <= half["SyncPercent"] <= 60

    emulator.admin.advance(601)
    done = call(shanghai, "DescribeImages", {"ImageIds": [copies["ap-shanghai"]]})["ImageSet"][0]
    assert (done["ImageState"], done["SyncPercent"]) == ("NORMAL", 100)
    assert emulator.admin.image(WEB)["ImageState"] == "NORMAL"
    assert emulator.admin.image(copies["ap-beijing"])["ImageState"] == "NORMAL"
    log = emulator.admin.calls("SyncImages")
    assert len(log) == 1 and log[0]["params"]["DestinationRegions"] == ["ap-shanghai", "ap-beijing"]
    assert log[0]["outcome"] == "ok" and log[0]["region"] == GZ


def test_copy_plays_out_on_the_real_clock_at_time_scale(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_time_scale(600)  # the running clock is what this test is about (the fixture's is frozen)
    emulator.admin.set_copy_duration(60, 60)  # 0.1 s at time_scale 600
    image_id = sync(cvm, WEB, "ap-nanjing", ImageSetRequired=True)["ImageSet"][0]["ImageId"]
    import time

    time.sleep(0.3)  # at least 180 emulated seconds, however busy the machine
    assert emulator.admin.image(image_id)["ImageState"] == "NORMAL"


def test_without_image_set_required_no_ids_come_back(cvm: CvmClient) -> None:
    assert sync(cvm, WEB, "ap-shanghai").keys() == {"RequestId"}


def test_image_name_and_its_limit(emulator: Emulator, cvm: CvmClient) -> None:
    image_id = sync(cvm, WEB, "ap-chengdu", ImageName="web-copy", ImageSetRequired=True)["ImageSet"][0]["ImageId"]
    assert emulator.admin.image(image_id)["ImageName"] == "web-copy"
    emulator.admin.advance(3600)
    assert sync_error(cvm, WEB, "ap-chengdu", ImageName="x" * 61) == "InvalidParameterValue.TooLong"
    sync(cvm, WEB, "ap-chengdu", ImageName="x" * 60)


def test_busy_source_refuses_a_new_copy(emulator: Emulator, cvm: CvmClient) -> None:
    sync(cvm, WEB, "ap-shanghai")
    assert sync_error(cvm, WEB, "ap-beijing") == "FailedOperation.InvalidImageState"
    emulator.admin.advance(1801)
    sync(cvm, WEB, "ap-beijing")


def test_source_must_be_normal(emulator: Emulator, cvm: CvmClient) -> None:
    assert sync_error(cvm, "img-9fjm4wza", "ap-shanghai") == "InvalidImageId.IncorrectState"
    assert sync_error(cvm, "img-0ldcr7ya", "ap-shanghai") == "InvalidImageId.IncorrectState"
    emulator.admin.advance(301)
    sync(cvm, "img-9fjm4wza", "ap-shanghai")


def test_image_id_errors(cvm: CvmClient) -> None:
    assert sync_error(cvm, "img-zzzzzzzz", "ap-shanghai") == "InvalidImageId.NotFound"
    assert sync_error(cvm, "img_bad", "ap-shanghai") == "InvalidImageId.Malformed"
    assert sync_error(cvm, "img-487zeit5", "ap-shanghai") == "InvalidParameterValue.InvalidImageId"  # public
    two = {"ImageIds": [WEB, "img-8c2rq9tw"], "DestinationRegions": ["ap-shanghai"]}
    assert error_code(cvm, "SyncImages", two) == "InvalidParameterValue.LimitExceeded"
    assert error_code(cvm, "SyncImages", {"ImageIds": [WEB]}) == "MissingParameter"
    assert error_code(cvm, "SyncImages", {"DestinationRegions": ["ap-shanghai"]}) == "MissingParameter"


def test_private_image_cannot_target_its_own_region(cvm: CvmClient) -> None:
    assert sync_error(cvm, WEB, GZ) == "InvalidParameterValue.InvalidRegion"
    assert sync_error(cvm, WEB, "ap-shanghai", GZ) == "InvalidParameterValue.InvalidRegion"


def test_shared_image_copies_only_into_its_own_region(emulator: Emulator, cvm: CvmClient) -> None:
    assert sync_error(cvm, "img-sh4red01", "ap-shanghai") == "InvalidParameterValue.InvalidRegion"
    copy_id = sync(cvm, "img-sh4red01", GZ, ImageSetRequired=True)["ImageSet"][0]["ImageId"]
    copy = emulator.admin.image(copy_id)
    assert copy["OwnerUin"] == DEFAULT_UIN and copy["ImageName"] == "partner-golden"
    emulator.admin.advance(1801)
    mine = call(cvm, "DescribeImages", {"ImageIds": [copy_id]})["ImageSet"][0]
    assert (mine["ImageType"], mine["ImageState"]) == ("PRIVATE_IMAGE", "NORMAL")


@pytest.mark.parametrize(
    ("dest", "code"),
    [
        ("ap-mumbai", "InvalidRegion.NotFound"),
        ("na-toronto", "InvalidRegion.NotFound"),
        ("eu-moscow", "InvalidRegion.NotFound"),
        ("mars-north-1", "InvalidRegion.NotFound"),
        ("ap-taipei", "InvalidRegion.Unavailable"),
        ("ap-singapore", "UnsupportedOperation.Region"),
        ("na-siliconvalley", "UnsupportedOperation.Region"),
        ("ap-hongkong", "UnsupportedOperation.Region"),
        ("ap-shanghai-fsi", "UnsupportedOperation.Region"),
    ],
)
def test_region_rules(cvm: CvmClient, dest: str, code: str) -> None:
    assert sync_error(cvm, WEB, dest) == code


def test_one_bad_destination_fails_the_whole_call(emulator: Emulator, cvm: CvmClient) -> None:
    assert sync_error(cvm, WEB, "ap-shanghai", "ap-mumbai") == "InvalidRegion.NotFound"
    assert emulator.admin.image(WEB)["ImageState"] == "NORMAL"
    assert all(img["ImageName"] != "web-base-2026" for img in emulator.admin.dump()["images"].get("ap-shanghai", []))


def test_cross_border_copy_needs_the_accounts_approval(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.approve_cross_border(DEFAULT_UIN)
    sync(cvm, WEB, "ap-singapore", "eu-frankfurt")
    emulator.admin.advance(1801)
    # approval is per account: the partner still cannot
    partner_img = emulator.admin.add_image(GZ, owner="partner", name="p")
    assert sync_error(partner_client(emulator), partner_img, "ap-singapore") == "UnsupportedOperation.Region"
    emulator.admin.approve_cross_border(DEFAULT_UIN, approved=False)
    assert sync_error(cvm, WEB, "ap-singapore") == "UnsupportedOperation.Region"


def test_elsewhere_copies_among_elsewhere(emulator: Emulator) -> None:
    img = emulator.admin.add_image("ap-singapore", name="sg-base")
    sg = client(emulator, region="ap-singapore")
    sync(sg, img, "ap-tokyo", "ap-hongkong", "sa-saopaulo")
    emulator.admin.advance(1801)
    assert sync_error(sg, img, "ap-beijing") == "UnsupportedOperation.Region"


def test_finance_zones_copy_only_among_themselves(emulator: Emulator) -> None:
    img = emulator.admin.add_image("ap-shanghai-fsi", name="fsi-base")
    fsi = client(emulator, region="ap-shanghai-fsi")
    sync(fsi, img, "ap-shenzhen-fsi", "ap-beijing-fsi")
    emulator.admin.advance(1801)
    assert sync_error(fsi, img, "ap-shanghai") == "UnsupportedOperation.Region"


def test_taipei_cannot_send_copies(emulator: Emulator) -> None:
    img = emulator.admin.add_image("ap-taipei", name="tpe-base")
    assert sync_error(client(emulator, region="ap-taipei"), img, "ap-hongkong") == "InvalidRegion.Unavailable"


def test_dry_run_checks_everything_and_copies_nothing(emulator: Emulator, cvm: CvmClient) -> None:
    assert sync(cvm, WEB, "ap-shanghai", DryRun=True, ImageSetRequired=True).keys() == {"RequestId"}
    assert emulator.admin.image(WEB)["ImageState"] == "NORMAL"
    assert "ap-shanghai" not in emulator.admin.dump()["images"] or all(
        i["ImageName"] != "web-base-2026" for i in emulator.admin.dump()["images"]["ap-shanghai"]
    )
    assert sync_error(cvm, WEB, "ap-mumbai", DryRun=True) == "InvalidRegion.NotFound"


def test_destination_quota(emulator: Emulator, cvm: CvmClient) -> None:
    for n in range(500):
        emulator.admin.add_image("ap-beijing", name=f"filler-{n}")
    assert sync_error(cvm, WEB, "ap-beijing") == "ImageQuotaLimitExceeded"
    sync(cvm, WEB, "ap-shanghai")


def test_encrypted_copies_stay_in_the_source_region(emulator: Emulator, cvm: CvmClient) -> None:
    key = "1c8b6ab5-0000-4b5b-9b2a-2f3c4d5e6f70"
    assert sync_error(cvm, WEB, "ap-shanghai", Encrypt=True) == "InvalidParameterValue.InvalidRegion"
    assert sync_error(cvm, WEB, GZ, Encrypt=True, KmsKeyId="not-a-key") == "InvalidParameter.InvalidKmsKeyId"
    copy_id = sync(cvm, WEB, GZ, Encrypt=True, KmsKeyId=key, ImageSetRequired=True)["ImageSet"][0]["ImageId"]
    emulator.admin.advance(1801)
    assert emulator.admin.image(copy_id)["ImageState"] == "NORMAL"
    assert sync_error(cvm, copy_id, "ap-shanghai") == "UnsupportedOperation.SyncEncryptImageNotSupport"


def test_size_precheck_when_configured() -> None:
    world = {
        "settings": {"max_copy_size_gb": 50},
        "accounts": [{"name": "default", "uin": "100000000001"}],
        "images": [{"id": "img-b1gb1g00", "region": GZ, "name": "big", "size": 80}],
    }
    with Emulator(world=world) as emu:
        assert sync_error(client(emu), "img-b1gb1g00", "ap-shanghai") == "InvalidImageId.TooLarge"


def test_copies_can_fail(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_copy_failure_rate(1.0)
    copy_id = sync(cvm, WEB, "ap-shanghai", ImageSetRequired=True)["ImageSet"][0]["ImageId"]
    emulator.admin.advance(1801)
    assert emulator.admin.image(copy_id)["ImageState"] == "CREATEFAILED"
    assert emulator.admin.image(WEB)["ImageState"] == "NORMAL"


def test_copy_duration_is_drawn_from_the_configured_range(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_copy_duration(100, 200)
    ids = [
        s["ImageId"]
        for s in sync(cvm, WEB, "ap-shanghai", "ap-beijing", "ap-chengdu", "ap-nanjing", ImageSetRequired=True)[
            "ImageSet"
        ]
    ]
    emulator.admin.set_time_scale(0)
    emulator.admin.advance(99)
    assert {emulator.admin.image(i)["ImageState"] for i in ids} == {"SYNCING"}
    emulator.admin.advance(102)
    assert {emulator.admin.image(i)["ImageState"] for i in ids} == {"NORMAL"}


def test_same_seed_same_ids() -> None:
    def run() -> list[str]:
        with Emulator(seed=7) as emu:
            resp = sync(client(emu), WEB, "ap-shanghai", "ap-beijing", ImageSetRequired=True)
            return [s["ImageId"] for s in resp["ImageSet"]]

    assert run() == run()


def test_concurrent_syncs_of_one_image_start_one_copy(emulator: Emulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

    emulator.admin.set_rate_limits(False)

    def attempt(region: str) -> str:
        try:
            sync(client(emulator), WEB, region)
            return "ok"
        except TencentCloudSDKException as exc:
            return exc.code

    regions = ["ap-shanghai", "ap-beijing", "ap-chengdu", "ap-nanjing", "ap-chongqing"] * 2
    with ThreadPoolExecutor(len(regions)) as pool:
        results = list(pool.map(attempt, regions))
    assert results.count("ok") == 1
    assert set(results) == {"ok", "FailedOperation.InvalidImageState"}
    assert len(emulator.admin.dump()["history"]) == 1
