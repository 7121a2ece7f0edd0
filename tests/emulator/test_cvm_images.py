"""CVM image reads and writes other than SyncImages: DescribeImages, CreateImage, sharing, attributes, delete."""

from __future__ import annotations

from tencentcloud.cvm.v20170312 import models
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.region.v20220627.region_client import RegionClient

from imagesync_emulator import Emulator

from .conftest import DEFAULT_UIN, GZ, PARTNER_UIN, call, client, error_code, partner_client

OWN = {"img-5ddkx3gh", "img-8c2rq9tw", "img-2hxv7lqe", "img-9fjm4wza", "img-0ldcr7ya"}
PUBLIC = {"img-487zeit5", "img-eb30mz89"}


def _ids(resp: dict) -> set[str]:
    return {i["ImageId"] for i in resp["ImageSet"]}


def test_default_world_as_the_default_account_sees_it(cvm: CvmClient) -> None:
    resp = cvm.DescribeImages(models.DescribeImagesRequest())
    by_id = {i.ImageId: i for i in resp.ImageSet}
    assert resp.TotalCount == 8 and set(by_id) == OWN | PUBLIC | {"img-sh4red01"}
    web = by_id["img-5ddkx3gh"]
    assert (web.ImageName, web.ImageType, web.ImageState, web.ImageSize) == (
        "web-base-2026",
        "PRIVATE_IMAGE",
        "NORMAL",
        20,
    )
    assert {(t.Key, t.Value) for t in web.Tags} == {("team", "web"), ("env", "prod")}
    assert web.CreatedTime.endswith("Z")
    assert by_id["img-sh4red01"].ImageType == "SHARED_IMAGE"
    assert by_id["img-487zeit5"].ImageType == "PUBLIC_IMAGE"
    assert by_id["img-487zeit5"].ImageSource == "OFFICIAL"
    assert by_id["img-9fjm4wza"].ImageState == "CREATING"
    assert by_id["img-0ldcr7ya"].ImageState == "CREATEFAILED"


def test_public_images_have_the_same_ids_in_every_region(emulator: Emulator) -> None:
    for region in ("ap-singapore", "ap-taipei", "ap-shanghai-fsi"):
        resp = call(client(emulator, region=region), "DescribeImages")
        assert _ids(resp) == PUBLIC


def test_other_accounts_see_only_their_own_and_public(emulator: Emulator) -> None:
    resp = call(partner_client(emulator), "DescribeImages", {"Limit": 100})
    by_id = {i["ImageId"]: i for i in resp["ImageSet"]}
    assert set(by_id) == PUBLIC | {"img-sh4red01"}
    assert by_id["img-sh4red01"]["ImageType"] == "PRIVATE_IMAGE"


def test_nightly_build_turns_normal_after_five_emulated_minutes(emulator: Emulator, cvm: CvmClient) -> None:
    assert emulator.admin.image("img-9fjm4wza")["ImageState"] == "CREATING"
    emulator.admin.advance(301)
    resp = call(cvm, "DescribeImages", {"ImageIds": ["img-9fjm4wza"]})
    assert resp["ImageSet"][0]["ImageState"] == "NORMAL"


def test_filters(cvm: CvmClient) -> None:
    def f(name: str, *values: str) -> set[str]:
        return _ids(call(cvm, "DescribeImages", {"Filters": [{"Name": name, "Values": list(values)}]}))

    assert f("image-id", "img-5ddkx3gh", "img-487zeit5") == {"img-5ddkx3gh", "img-487zeit5"}
    assert f("image-type", "PRIVATE_IMAGE") == OWN
    assert f("image-type", "SHARED_IMAGE") == {"img-sh4red01"}
    assert f("image-type", "PUBLIC_IMAGE") == PUBLIC
    assert f("image-name", "base") == {"img-5ddkx3gh", "img-8c2rq9tw"}  # fuzzy: substring
    assert f("image-name", "web-base-2026") == {"img-5ddkx3gh"}
    assert f("tag-key", "team") == {"img-5ddkx3gh", "img-8c2rq9tw"}
    assert f("tag-value", "prod") == {"img-5ddkx3gh"}
    assert f("tag:team", "api") == {"img-8c2rq9tw"}
    assert f("tag:team", "nobody") == set()
    both = call(
        cvm,
        "DescribeImages",
        {"Filters": [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}, {"Name": "tag:env", "Values": ["prod"]}]},
    )
    assert _ids(both) == {"img-5ddkx3gh"}
    assert error_code(cvm, "DescribeImages", {"Filters": [{"Name": "colour", "Values": ["x"]}]}) == "InvalidFilter"
    assert (
        error_code(cvm, "DescribeImages", {"Filters": [{"Name": "image-id", "Values": ["a"] * 6}]})
        == "InvalidFilterValue.LimitExceeded"
    )


def test_image_ids_and_filters_never_both(cvm: CvmClient) -> None:
    params = {"ImageIds": ["img-5ddkx3gh"], "Filters": [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}]}
    assert error_code(cvm, "DescribeImages", params) == "InvalidParameter.InvalidParameterCoexistImageIdsFilters"


def test_image_ids_lookup_and_malformed_ids(cvm: CvmClient) -> None:
    assert _ids(call(cvm, "DescribeImages", {"ImageIds": ["img-5ddkx3gh", "img-zzzzzzzz"]})) == {"img-5ddkx3gh"}
    assert error_code(cvm, "DescribeImages", {"ImageIds": ["image-1"]}) == "InvalidImageId.Malformed"


def test_pagination(emulator: Emulator, cvm: CvmClient) -> None:
    for n in range(30):
        emulator.admin.add_image(GZ, name=f"bulk-{n:02d}")
    first = call(cvm, "DescribeImages", {})
    assert first["TotalCount"] == 38 and len(first["ImageSet"]) == 20  # default Limit 20
    seen = set()
    for offset in range(0, 38, 7):
        seen |= _ids(call(cvm, "DescribeImages", {"Offset": offset, "Limit": 7}))
    assert len(seen) == 38
    assert len(call(cvm, "DescribeImages", {"Limit": 100})["ImageSet"]) == 38
    assert call(cvm, "DescribeImages", {"Offset": 100})["ImageSet"] == []


def test_create_image_from_instance(emulator: Emulator, cvm: CvmClient) -> None:
    req = models.CreateImageRequest()
    req.InstanceId, req.ImageName, req.ImageDescription = "ins-1a2b3c4d", "web-2026-11", "from web-1"
    spec = models.TagSpecification()
    spec.ResourceType = "image"
    spec.Tags = [models.Tag()]
    spec.Tags[0].Key, spec.Tags[0].Value = "team", "web"
    req.TagSpecification = [spec]
    image_id = cvm.CreateImage(req).ImageId
    img = emulator.admin.image(image_id)
    assert img["ImageState"] == "CREATING" and img["ImageName"] == "web-2026-11" and img["OwnerUin"] == DEFAULT_UIN
    assert img["Tags"] == [{"Key": "team", "Value": "web"}]
    assert img["ImageSource"] == "CREATE_IMAGE"
    emulator.admin.advance(301)
    assert call(cvm, "DescribeImages", {"ImageIds": [image_id]})["ImageSet"][0]["ImageState"] == "NORMAL"
    assert emulator.admin.calls("CreateImage")[0]["params"]["InstanceId"] == "ins-1a2b3c4d"


def test_create_image_errors(emulator: Emulator, cvm: CvmClient) -> None:
    assert error_code(cvm, "CreateImage", {"InstanceId": "ins-1a2b3c4d"}) == "MissingParameter"
    assert error_code(cvm, "CreateImage", {"ImageName": "x"}) == "MissingParameter.AtLeastOne"
    assert error_code(cvm, "CreateImage", {"ImageName": "x", "InstanceId": "i-1"}) == "InvalidInstanceId.Malformed"
    assert (
        error_code(cvm, "CreateImage", {"ImageName": "x", "InstanceId": "ins-00000000"}) == "InvalidInstanceId.NotFound"
    )
    assert (
        error_code(cvm, "CreateImage", {"ImageName": "web-base-2026", "InstanceId": "ins-1a2b3c4d"})
        == "InvalidImageName.Duplicate"
    )
    assert (
        error_code(partner_client(emulator), "CreateImage", {"ImageName": "x", "InstanceId": "ins-1a2b3c4d"})
        == "InvalidInstanceId.NotFound"
    )
    bad_spec = {
        "ImageName": "x",
        "InstanceId": "ins-1a2b3c4d",
        "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}],
    }
    assert error_code(cvm, "CreateImage", bad_spec) == "InvalidParameterValue"
    dry = call(cvm, "CreateImage", {"ImageName": "x", "InstanceId": "ins-1a2b3c4d", "DryRun": True})
    assert dry.keys() == {"RequestId"}
    assert len(emulator.admin.dump()["images"][GZ]) == 8  # nothing created by errors or DryRun


def test_quota_counts_custom_images(emulator: Emulator, cvm: CvmClient) -> None:
    assert cvm.DescribeImageQuota(models.DescribeImageQuotaRequest()).ImageNumQuota == 500
    for n in range(500 - 5):
        emulator.admin.add_image(GZ, name=f"filler-{n}")
    assert (
        error_code(cvm, "CreateImage", {"ImageName": "one-too-many", "InstanceId": "ins-1a2b3c4d"})
        == "ImageQuotaLimitExceeded"
    )


def test_share_and_unshare(emulator: Emulator, cvm: CvmClient) -> None:
    partner = partner_client(emulator)
    assert "img-8c2rq9tw" not in _ids(call(partner, "DescribeImages", {"Limit": 100}))
    call(
        cvm,
        "ModifyImageSharePermission",
        {"ImageId": "img-8c2rq9tw", "AccountIds": [PARTNER_UIN], "Permission": "SHARE"},
    )
    seen = {i["ImageId"]: i["ImageType"] for i in call(partner, "DescribeImages", {"Limit": 100})["ImageSet"]}
    assert seen["img-8c2rq9tw"] == "SHARED_IMAGE"
    perms = cvm.DescribeImageSharePermission(_share_req("img-8c2rq9tw"))
    assert [p.AccountId for p in perms.SharePermissionSet] == [PARTNER_UIN]
    assert (
        error_code(
            cvm,
            "ModifyImageSharePermission",
            {"ImageId": "img-8c2rq9tw", "AccountIds": [PARTNER_UIN], "Permission": "SHARE"},
        )
        == "FailedOperation.AccountAlreadyExists"
    )
    call(
        cvm,
        "ModifyImageSharePermission",
        {"ImageId": "img-8c2rq9tw", "AccountIds": [PARTNER_UIN], "Permission": "CANCEL"},
    )
    assert "img-8c2rq9tw" not in _ids(call(partner, "DescribeImages", {"Limit": 100}))
    assert call(cvm, "DescribeImageSharePermission", {"ImageId": "img-8c2rq9tw"})["SharePermissionSet"] == []


def _share_req(image_id: str) -> models.DescribeImageSharePermissionRequest:
    req = models.DescribeImageSharePermissionRequest()
    req.ImageId = image_id
    return req


def test_share_errors(emulator: Emulator, cvm: CvmClient) -> None:
    def share(image_id: str, accounts: list[str], permission: str = "SHARE") -> str:
        return error_code(
            cvm, "ModifyImageSharePermission", {"ImageId": image_id, "AccountIds": accounts, "Permission": permission}
        )

    assert share("img-8c2rq9tw", ["999999999999"]) == "InvalidAccountId.NotFound"
    assert share("img-8c2rq9tw", [DEFAULT_UIN]) == "FailedOperation.AccountIsYourSelf"
    assert share("img-8c2rq9tw", [PARTNER_UIN], "LEND") == "InvalidParameterValue"
    assert share("img-sh4red01", [PARTNER_UIN]) == "UnauthorizedOperation.ImageNotBelongToAccount"
    assert share("img-0ldcr7ya", [PARTNER_UIN]) == "InvalidImageId.IncorrectState"
    assert share("img-zzzzzzzz", [PARTNER_UIN]) == "InvalidImageId.NotFound"
    assert (
        error_code(
            client(emulator, region="ap-shanghai"),
            "ModifyImageSharePermission",
            {"ImageId": "img-8c2rq9tw", "AccountIds": [PARTNER_UIN], "Permission": "SHARE"},
        )
        == "InvalidImageId.NotFound"
    )  # same region only


def test_modify_image_attribute(emulator: Emulator, cvm: CvmClient) -> None:
    call(
        cvm,
        "ModifyImageAttribute",
        {
            "ImageId": "img-2hxv7lqe",
            "ImageName": "bigdata-node-v2",
            "ImageDescription": "renamed",
            "ImageFamily": "bigdata",
            "ImageDeprecated": True,
        },
    )
    img = emulator.admin.image("img-2hxv7lqe")
    assert (img["ImageName"], img["ImageDescription"], img["ImageFamily"], img["ImageDeprecated"]) == (
        "bigdata-node-v2",
        "renamed",
        "bigdata",
        True,
    )
    assert (
        error_code(cvm, "ModifyImageAttribute", {"ImageId": "img-sh4red01", "ImageName": "mine"})
        == "UnsupportedOperation.SharedImageModifyUnsupported"
    )
    assert (
        error_code(cvm, "ModifyImageAttribute", {"ImageId": "img-2hxv7lqe", "ImageName": "n" * 61})
        == "InvalidParameterValue.TooLong"
    )


def test_delete_images(emulator: Emulator, cvm: CvmClient) -> None:
    assert error_code(cvm, "DeleteImages", {"ImageIds": ["img-9fjm4wza"]}) == "InvalidImageId.IncorrectState"
    assert (
        error_code(cvm, "DeleteImages", {"ImageIds": ["img-487zeit5"]})
        == "UnauthorizedOperation.ImageNotBelongToAccount"
    )
    call(cvm, "DeleteImages", {"ImageIds": ["img-0ldcr7ya"], "DryRun": True})
    assert emulator.admin.image("img-0ldcr7ya") is not None
    call(cvm, "DeleteImages", {"ImageIds": ["img-0ldcr7ya", "img-2hxv7lqe"]})
    assert emulator.admin.image("img-0ldcr7ya") is None and emulator.admin.image("img-2hxv7lqe") is None
    call(cvm, "SyncImages", {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": ["ap-shanghai"]})
    assert error_code(cvm, "DeleteImages", {"ImageIds": ["img-5ddkx3gh"]}) == "InvalidImageId.IncorrectState"
    assert (
        error_code(partner_client(emulator), "DeleteImages", {"ImageIds": ["img-sh4red01"]})
        == "InvalidImageId.InShared"
    )


def test_run_instances_from_an_image(emulator: Emulator, cvm: CvmClient) -> None:
    req = models.RunInstancesRequest()
    req.ImageId, req.InstanceType, req.InstanceCount, req.InstanceName = "img-8c2rq9tw", "S5.MEDIUM4", 2, "api"
    req.Placement = models.Placement()
    req.Placement.Zone = "ap-guangzhou-3"
    ids = cvm.RunInstances(req).InstanceIdSet
    assert len(ids) == 2 and all(i.startswith("ins-") for i in ids)
    described = call(cvm, "DescribeInstances", {"InstanceIds": ids})["InstanceSet"]
    assert {(i["ImageId"], i["InstanceState"]) for i in described} == {("img-8c2rq9tw", "RUNNING")}
    assert {i["instance_id"] for i in emulator.admin.dump()["instances"]} >= set(ids)
    assert emulator.admin.calls("RunInstances")[0]["params"]["ImageId"] == "img-8c2rq9tw"
    base = {"Placement": {"Zone": "ap-guangzhou-3"}}
    assert error_code(cvm, "RunInstances", {**base, "ImageId": "img-0ldcr7ya"}) == "InvalidImageId.IncorrectState"
    assert error_code(cvm, "RunInstances", {**base, "ImageId": "img-zzzzzzzz"}) == "InvalidImageId.NotFound"
    assert (
        error_code(cvm, "RunInstances", {"Placement": {"Zone": "ap-beijing-1"}, "ImageId": "img-8c2rq9tw"})
        == "InvalidZone.MismatchRegion"
    )
    assert error_code(cvm, "RunInstances", {"ImageId": "img-8c2rq9tw"}) == "MissingParameter"


def test_run_instances_client_token_is_idempotent(emulator: Emulator, cvm: CvmClient) -> None:
    params = {"Placement": {"Zone": "ap-guangzhou-3"}, "ImageId": "img-8c2rq9tw", "ClientToken": "launch-rpl-1"}
    first = call(cvm, "RunInstances", params)["InstanceIdSet"]
    again = call(cvm, "RunInstances", params)["InstanceIdSet"]
    assert first == again and len(first) == 1
    other = call(cvm, "RunInstances", {**params, "ClientToken": "launch-rpl-2"})["InstanceIdSet"]
    assert other != first
    launched = [i for i in emulator.admin.dump()["instances"] if i["image_id"] == "img-8c2rq9tw"]
    assert len(launched) == 2


def test_describe_regions_in_cvm_and_region_services(cvm: CvmClient, region_api: RegionClient) -> None:
    from tencentcloud.region.v20220627 import models as rmodels

    legacy = cvm.DescribeRegions(models.DescribeRegionsRequest())
    req = rmodels.DescribeRegionsRequest()
    req.Product = "cvm"
    current = region_api.DescribeRegions(req)
    names = {r.Region for r in current.RegionSet}
    assert names == {r.Region for r in legacy.RegionSet}
    assert {"ap-guangzhou", "ap-singapore", "ap-shanghai-fsi", "ap-taipei"} <= names
    assert "ap-mumbai" not in names
    assert all(r.RegionState == "AVAILABLE" for r in current.RegionSet)
    assert error_code(region_api, "DescribeRegions") == "MissingParameter"
