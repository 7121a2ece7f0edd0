"""Image family and deprecation, deleting images (snapshots, refusals, CloudAudit), share-then-sync between
accounts, and "which instances use this image" (DescribeInstances paging): the emulator side of issue 14."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tencentcloud.cbs.v20170312 import models as cbs_models
from tencentcloud.cbs.v20170312.cbs_client import CbsClient
from tencentcloud.cvm.v20170312 import models
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.eb.v20210416.eb_client import EbClient
from tencentcloud.sts.v20180813.sts_client import StsClient

from imagesync_emulator import Emulator

from .conftest import DEFAULT_UIN, GZ, PARTNER_UIN, call, client, error_code, partner_client
from .scf_toys import attempts, deploy_toy, wait_for

WEB = "img-5ddkx3gh"
API = "img-8c2rq9tw"
SHARED = "img-sh4red01"  # partner's, shared with default
CREATING = "img-9fjm4wza"


def ids(resp: dict) -> list[str]:
    return [i["ImageId"] for i in resp["ImageSet"]]


# ---- family and deprecation -----------------------------------------------------------------------------------
def test_family_and_deprecation_are_shown_and_drive_describe_image_from_family(
    emulator: Emulator, cvm: CvmClient
) -> None:
    call(cvm, "ModifyImageAttribute", {"ImageId": WEB, "ImageFamily": "web"})
    call(cvm, "ModifyImageAttribute", {"ImageId": API, "ImageFamily": "web"})  # API is newer (created later)
    shown = {
        i["ImageId"]: (i["ImageFamily"], i["ImageDeprecated"])
        for i in call(cvm, "DescribeImages", {"ImageIds": [WEB, API]})["ImageSet"]
    }
    assert shown == {WEB: ("web", False), API: ("web", False)}

    resp = cvm.DescribeImageFromFamily(_family_request("web"))  # typed: the answer fits the SDK's Image model
    assert resp.Image.ImageId == API and resp.Image.ImageFamily == "web"

    call(cvm, "ModifyImageAttribute", {"ImageId": API, "ImageDeprecated": True})
    assert call(cvm, "DescribeImages", {"ImageIds": [API]})["ImageSet"][0]["ImageDeprecated"] is True
    assert call(cvm, "DescribeImageFromFamily", {"ImageFamily": "web"})["Image"]["ImageId"] == WEB
    call(cvm, "ModifyImageAttribute", {"ImageId": WEB, "ImageDeprecated": True})
    assert "Image" not in call(cvm, "DescribeImageFromFamily", {"ImageFamily": "web"})  # none available
    call(cvm, "ModifyImageAttribute", {"ImageId": API, "ImageDeprecated": False})
    assert call(cvm, "DescribeImageFromFamily", {"ImageFamily": "web"})["Image"]["ImageId"] == API


def _family_request(family: str) -> models.DescribeImageFromFamilyRequest:
    req = models.DescribeImageFromFamilyRequest()
    req.ImageFamily = family
    return req


def test_describe_image_from_family_skips_images_not_normal_and_other_regions(
    emulator: Emulator, cvm: CvmClient
) -> None:
    emulator.admin.add_image(
        GZ, name="nightly-2", family="nightly", state="CREATING", ready_after=300, created_at=emulator.admin.now() + 10
    )
    emulator.admin.add_image("ap-shanghai", name="nightly-sh", family="nightly")
    old = emulator.admin.add_image(GZ, name="nightly-1", family="nightly", created_at=emulator.admin.now() - 10)
    assert call(cvm, "DescribeImageFromFamily", {"ImageFamily": "nightly"})["Image"]["ImageId"] == old
    emulator.admin.advance(301)
    assert call(cvm, "DescribeImageFromFamily", {"ImageFamily": "nightly"})["Image"]["ImageName"] == "nightly-2"


def test_family_names_are_checked(emulator: Emulator, cvm: CvmClient) -> None:
    assert (
        error_code(cvm, "DescribeImageFromFamily", {"ImageFamily": "no spaces"})
        == "InvalidParameterValue.InvalidImageFamily"
    )
    assert error_code(cvm, "DescribeImageFromFamily", {}) == "MissingParameter"
    assert (
        error_code(cvm, "ModifyImageAttribute", {"ImageId": WEB, "ImageFamily": "x" * 61})
        == "InvalidParameterValue.InvalidImageFamily"
    )
    assert (
        error_code(cvm, "ModifyImageAttribute", {"ImageId": SHARED, "ImageFamily": "theirs"})
        == "UnsupportedOperation.SharedImageModifyUnsupported"
    )
    call(cvm, "ModifyImageAttribute", {"ImageId": WEB, "ImageFamily": "web"})
    call(cvm, "ModifyImageAttribute", {"ImageId": WEB, "ImageFamily": ""})  # an empty family clears it
    assert emulator.admin.image(WEB)["ImageFamily"] == ""


def test_a_copy_keeps_the_source_family(emulator: Emulator, cvm: CvmClient) -> None:
    call(cvm, "ModifyImageAttribute", {"ImageId": WEB, "ImageFamily": "web"})
    copy = call(
        cvm, "SyncImages", {"ImageIds": [WEB], "DestinationRegions": ["ap-shanghai"], "ImageSetRequired": True}
    )["ImageSet"][0]["ImageId"]
    assert emulator.admin.image(copy)["ImageFamily"] == "web"


# ---- deleting images ------------------------------------------------------------------------------------------
def test_a_copy_gets_its_own_snapshots(emulator: Emulator, cvm: CvmClient) -> None:
    src_snaps = call(cvm, "DescribeImages", {"ImageIds": [WEB]})["ImageSet"][0]["SnapshotSet"]
    assert len(src_snaps) == 1 and src_snaps[0]["SnapshotId"].startswith("snap-")
    copy = call(
        cvm, "SyncImages", {"ImageIds": [WEB], "DestinationRegions": ["ap-shanghai"], "ImageSetRequired": True}
    )["ImageSet"][0]["ImageId"]
    copy_snaps = emulator.admin.image(copy)["SnapshotSet"]
    assert len(copy_snaps) == 1 and copy_snaps[0]["SnapshotId"] != src_snaps[0]["SnapshotId"]
    [snap] = emulator.admin.snapshots(region="ap-shanghai")
    assert (snap["snapshot_id"], snap["owner"], snap["image_ids"]) == (copy_snaps[0]["SnapshotId"], DEFAULT_UIN, [copy])


def test_delete_images_leaves_snapshots_unless_asked(emulator: Emulator, cvm: CvmClient) -> None:
    kept = emulator.admin.image(WEB)["SnapshotSet"][0]["SnapshotId"]
    gone = emulator.admin.image(API)["SnapshotSet"][0]["SnapshotId"]
    emulator.admin.set_image_state(WEB, "NORMAL")
    call(cvm, "DeleteImages", {"ImageIds": [WEB]})
    call(cvm, "DeleteImages", {"ImageIds": [API], "DeleteBindedSnap": True})
    assert ids(call(cvm, "DescribeImages", {"ImageIds": [WEB, API]})) == []
    snaps = {s["snapshot_id"]: s for s in emulator.admin.dump()["snapshots"]}
    assert snaps[kept]["image_ids"] == [] and gone not in snaps  # left behind (still billing) / deleted
    deleted = [h for h in emulator.admin.dump()["history"] if h["event"] == "image_deleted"]
    assert [(h["image_id"], h["snapshots_kept"], h["snapshots_deleted"]) for h in deleted] == [
        (WEB, [kept], []),
        (API, [], [gone]),
    ]


def test_dry_run_deletes_nothing(emulator: Emulator, cvm: CvmClient) -> None:
    before = emulator.admin.snapshots()
    call(cvm, "DeleteImages", {"ImageIds": [WEB], "DeleteBindedSnap": True, "DryRun": True})
    assert emulator.admin.image(WEB) is not None and emulator.admin.snapshots() == before


def test_delete_images_refusals(emulator: Emulator, cvm: CvmClient) -> None:
    assert error_code(cvm, "DeleteImages", {"ImageIds": [CREATING]}) == "InvalidImageId.IncorrectState"
    copy = call(
        cvm, "SyncImages", {"ImageIds": [WEB], "DestinationRegions": ["ap-shanghai"], "ImageSetRequired": True}
    )["ImageSet"][0]["ImageId"]
    shanghai = client(emulator, region="ap-shanghai")
    assert error_code(shanghai, "DeleteImages", {"ImageIds": [copy]}) == "InvalidImageId.IncorrectState"
    assert error_code(cvm, "DeleteImages", {"ImageIds": [WEB]}) == "InvalidImageId.IncorrectState"  # copying out
    call(cvm, "ModifyImageSharePermission", {"ImageId": API, "AccountIds": [PARTNER_UIN], "Permission": "SHARE"})
    assert error_code(cvm, "DeleteImages", {"ImageIds": [API]}) == "InvalidImageId.InShared"
    assert error_code(cvm, "DeleteImages", {"ImageIds": [SHARED]}) == "UnauthorizedOperation.ImageNotBelongToAccount"
    assert (
        error_code(cvm, "DeleteImages", {"ImageIds": ["img-487zeit5"]})
        == "UnauthorizedOperation.ImageNotBelongToAccount"
    )  # public
    # one refused image refuses the whole call: nothing is deleted
    assert error_code(cvm, "DeleteImages", {"ImageIds": ["img-2hxv7lqe", API]}) == "InvalidImageId.InShared"
    assert emulator.admin.image("img-2hxv7lqe") is not None


def test_an_image_instances_run_from_can_be_deleted(emulator: Emulator, cvm: CvmClient) -> None:
    """No refusal for an image in use (docs/facts.md F-IMG-3): a cleanup must look for instances itself."""
    assert any(i["image_id"] == WEB for i in emulator.admin.dump()["instances"])
    call(cvm, "DeleteImages", {"ImageIds": [WEB]})
    assert emulator.admin.image(WEB) is None


def test_delete_images_calls_are_audited(emulator: Emulator, cvm: CvmClient) -> None:
    call(cvm, "DeleteImages", {"ImageIds": ["img-2hxv7lqe"], "DeleteBindedSnap": True})
    error_code(cvm, "DeleteImages", {"ImageIds": [CREATING]})
    ok, failed = emulator.admin.drain_audit_events()
    assert ok["type"] == "cvm:CloudEvent:ApiCall" and ok["data"]["eventName"] == "DeleteImages"
    assert ok["data"]["errorCode"] == 0 and ok["data"]["resourceName"] == "image/img-2hxv7lqe"
    assert json.loads(ok["data"]["resources"]) == [f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:image/img-2hxv7lqe"]
    assert json.loads(ok["data"]["requestParameters"]) == {"DeleteBindedSnap": True, "ImageIds": ["img-2hxv7lqe"]}
    assert failed["data"]["apiErrorCode"] == "InvalidImageId.IncorrectState"


def test_audit_names_the_assumed_role(emulator: Emulator) -> None:
    creds = call(
        client(emulator, StsClient),
        "AssumeRole",
        {"RoleArn": f"qcs::cam::uin/{PARTNER_UIN}:roleName/imagesync-delivery", "RoleSessionName": "cleanup"},
    )["Credentials"]
    as_partner = client(
        emulator, CvmClient, secret_id=creds["TmpSecretId"], secret_key=creds["TmpSecretKey"], token=creds["Token"]
    )
    call(
        as_partner,
        "ModifyImageSharePermission",
        {"ImageId": SHARED, "AccountIds": [DEFAULT_UIN], "Permission": "CANCEL"},
    )
    call(as_partner, "DeleteImages", {"ImageIds": [SHARED]})
    [event] = emulator.admin.drain_audit_events()
    identity = event["data"]["userIdentity"]
    assert (identity["type"], identity["userName"], identity["accountId"]) == (
        "AssumedRole",
        "imagesync-delivery",
        PARTNER_UIN,
    )


@pytest.mark.slow  # starts a Python worker process
def test_an_eventbridge_rule_routes_delete_images_to_a_function(tmp_path: Path) -> None:
    record = """
    import json, os

    def main_handler(event, context):
        with open(os.path.join(os.path.dirname(__file__), "..", "events.jsonl"), "a") as f:
            f.write(json.dumps(event) + "\\n")
        return "ok"
"""
    with Emulator(time_scale=0.0) as emu:
        deploy_toy(emu, tmp_path, record)
        eb = client(emu, EbClient)
        buses = eb.call_json("ListEventBuses", {})["Response"]["EventBuses"]
        bus = next(b["EventBusId"] for b in buses if b["EventBusName"] == "default")
        pattern = json.dumps(
            {
                "source": ["cvm.cloud.tencent"],
                "type": ["cvm:CloudEvent:ApiCall"],
                "data": {"eventName": ["DeleteImages"], "errorCode": [0]},
            }
        )
        rule = eb.call_json(
            "CreateRule", {"EventBusId": bus, "RuleName": "delete-images", "EventPattern": pattern, "Enable": True}
        )["Response"]["RuleId"]
        target = {
            "ResourceDescription": f"qcs::scf:{GZ}:uin/{DEFAULT_UIN}:namespace/default/function/toy-fn/$DEFAULT",
            "SCFParams": {"EnableBatchDelivery": False},
        }
        eb.call_json("CreateTarget", {"EventBusId": bus, "RuleId": rule, "Type": "scf", "TargetDescription": target})
        cvm = client(emu)
        call(cvm, "DeleteImages", {"ImageIds": ["img-2hxv7lqe"]})
        error_code(cvm, "DeleteImages", {"ImageIds": [CREATING]})  # failed: errorCode != 0, not routed
        wait_for(lambda: attempts(emu, "toy-fn"), what="the routed event")
        wait_for(emu.scf.idle, what="the queue to drain")
        path = emu.scf.work_dir / "deploy-1" / "events.jsonl"
        [event] = [json.loads(line) for line in path.read_text().splitlines()]
        assert event["data"]["eventName"] == "DeleteImages" and event["data"]["resourceName"] == "image/img-2hxv7lqe"


# ---- share, then sync, between accounts -----------------------------------------------------------------------
def test_share_then_sync_makes_the_receivers_own_image_in_the_same_region_only(
    emulator: Emulator, cvm: CvmClient
) -> None:
    partner = partner_client(emulator)
    call(cvm, "ModifyImageSharePermission", {"ImageId": WEB, "AccountIds": [PARTNER_UIN], "Permission": "SHARE"})
    perms = call(cvm, "DescribeImageSharePermission", {"ImageId": WEB})["SharePermissionSet"]
    assert [p["AccountId"] for p in perms] == [PARTNER_UIN]
    shared = call(partner, "DescribeImages", {"Filters": [{"Name": "image-type", "Values": ["SHARED_IMAGE"]}]})
    assert ids(shared) == [WEB] and shared["ImageSet"][0]["ImageCreator"] == DEFAULT_UIN
    assert (
        ids(
            call(
                client(
                    emulator,
                    region="ap-shanghai",
                    secret_id=_partner_key(emulator)[0],
                    secret_key=_partner_key(emulator)[1],
                ),
                "DescribeImages",
                {"Filters": [{"Name": "image-type", "Values": ["SHARED_IMAGE"]}]},
            )
        )
        == []
    )  # region-bound

    assert (
        error_code(partner, "SyncImages", {"ImageIds": [WEB], "DestinationRegions": ["ap-shanghai"]})
        == "InvalidParameterValue.InvalidRegion"
    )
    assert (
        error_code(partner, "SyncImages", {"ImageIds": [WEB], "DestinationRegions": [GZ, "ap-shanghai"]})
        == "InvalidParameterValue.InvalidRegion"
    )
    assert error_code(partner, "DeleteImages", {"ImageIds": [WEB]}) == "UnauthorizedOperation.ImageNotBelongToAccount"
    emulator.admin.set_copy_duration(600, 600)
    own = call(partner, "SyncImages", {"ImageIds": [WEB], "DestinationRegions": [GZ], "ImageSetRequired": True})[
        "ImageSet"
    ][0]
    assert own["Region"] == GZ and own["ImageId"] != WEB
    emulator.admin.advance(601)
    mine = call(partner, "DescribeImages", {"ImageIds": [own["ImageId"]]})["ImageSet"][0]
    assert (mine["ImageType"], mine["ImageState"], mine["ImageCreator"]) == ("PRIVATE_IMAGE", "NORMAL", PARTNER_UIN)
    assert ids(call(cvm, "DescribeImages", {"ImageIds": [own["ImageId"]]})) == []  # not the sharer's
    # ... and that own image copies on across regions like any custom image
    onward = call(
        partner,
        "SyncImages",
        {"ImageIds": [own["ImageId"]], "DestinationRegions": ["ap-beijing"], "ImageSetRequired": True},
    )["ImageSet"][0]
    assert emulator.admin.image(onward["ImageId"])["OwnerUin"] == PARTNER_UIN
    # cancelling the share leaves the receiver's own copy alone
    call(cvm, "ModifyImageSharePermission", {"ImageId": WEB, "AccountIds": [PARTNER_UIN], "Permission": "CANCEL"})
    assert ids(call(partner, "DescribeImages", {"ImageIds": [WEB]})) == []
    assert ids(call(partner, "DescribeImages", {"ImageIds": [own["ImageId"]]})) == [own["ImageId"]]


def _partner_key(emu: Emulator) -> tuple[str, str]:
    acct = next(a for a in emu.admin.accounts() if a["name"] == "partner")
    return acct["secret_id"], acct["secret_key"]


# ---- which instances use an image -----------------------------------------------------------------------------
def test_instances_using_an_image_are_found_by_paging(emulator: Emulator, cvm: CvmClient) -> None:
    emulator.admin.set_rate_limits(False)
    launch = {"Placement": {"Zone": "ap-guangzhou-3"}, "InstanceCount": 100}
    call(cvm, "RunInstances", {**launch, "ImageId": API})
    users = call(cvm, "RunInstances", {**launch, "ImageId": WEB, "InstanceCount": 30})["InstanceIdSet"]
    with pytest.raises(Exception):  # noqa: B017 - there is no image-id filter to shortcut the paging
        call(cvm, "DescribeInstances", {"Filters": [{"Name": "image-id", "Values": [WEB]}]})
    found, offset, total = [], 0, None
    while total is None or offset < total:
        page = call(cvm, "DescribeInstances", {"Offset": offset, "Limit": 100})
        total = page["TotalCount"]
        found += [i["InstanceId"] for i in page["InstanceSet"] if i["ImageId"] == WEB]
        offset += 100
    assert total == 132 and sorted(found) == sorted([*users, "ins-1a2b3c4d"])


# ---- cbs: the snapshots left behind ---------------------------------------------------------------------------
def test_cbs_shows_and_deletes_the_snapshots_delete_images_left_behind(emulator: Emulator, cvm: CvmClient) -> None:
    cbs = client(emulator, CbsClient)
    snap = emulator.admin.image(WEB)["SnapshotSet"][0]["SnapshotId"]
    req = cbs_models.DescribeSnapshotsRequest()
    req.SnapshotIds = [snap]
    [shown] = cbs.DescribeSnapshots(req).SnapshotSet  # typed: the answer fits the SDK's Snapshot model
    assert (shown.SnapshotId, shown.DiskUsage, shown.ImageCount, shown.Images[0].ImageId) == (
        snap,
        "SYSTEM_DISK",
        1,
        WEB,
    )
    assert error_code(cbs, "DeleteSnapshots", {"SnapshotIds": [snap]}) == "UnsupportedOperation.SnapshotHasBindedImage"

    call(cvm, "DeleteImages", {"ImageIds": [WEB]})
    left = call(cbs, "DescribeSnapshots", {"Filters": [{"Name": "snapshot-id", "Values": [snap]}]})["SnapshotSet"]
    assert [(s["SnapshotId"], s["ImageCount"], s["Images"]) for s in left] == [(snap, 0, [])]
    mine = call(cbs, "DescribeSnapshots", {"Limit": 100})
    assert mine["TotalCount"] == 5 and snap in [s["SnapshotId"] for s in mine["SnapshotSet"]]  # default's, GZ
    assert call(partner_client(emulator, CbsClient), "DescribeSnapshots", {})["TotalCount"] == 1  # partner's own

    assert (
        error_code(partner_client(emulator, CbsClient), "DeleteSnapshots", {"SnapshotIds": [snap]})
        == "InvalidSnapshotId.NotFound"
    )
    call(cbs, "DeleteSnapshots", {"SnapshotIds": [snap]})
    assert call(cbs, "DescribeSnapshots", {"SnapshotIds": [snap]})["SnapshotSet"] == []
    assert (
        error_code(cbs, "DescribeSnapshots", {"Filters": [{"Name": "disk-id", "Values": ["disk-1"]}]})
        == "InvalidFilter"
    )


def test_cbs_delete_bind_images_deletes_the_image_too(emulator: Emulator, cvm: CvmClient) -> None:
    cbs = client(emulator, CbsClient)
    snap = emulator.admin.image(API)["SnapshotSet"][0]["SnapshotId"]
    call(cvm, "ModifyImageSharePermission", {"ImageId": API, "AccountIds": [PARTNER_UIN], "Permission": "SHARE"})
    assert (
        error_code(cbs, "DeleteSnapshots", {"SnapshotIds": [snap], "DeleteBindImages": True})
        == "UnsupportedOperation.SnapshotHasBindedImage"
    )  # the image is shared: nothing is deleted
    call(cvm, "ModifyImageSharePermission", {"ImageId": API, "AccountIds": [PARTNER_UIN], "Permission": "CANCEL"})
    call(cbs, "DeleteSnapshots", {"SnapshotIds": [snap], "DeleteBindImages": True})
    assert emulator.admin.image(API) is None and snap not in [s["snapshot_id"] for s in emulator.admin.snapshots()]
