"""sts AssumeRole through the official sts client: temporary keys that act as the role's account, only where the
world's trust policies allow it."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.sts.v20180813 import models
from tencentcloud.sts.v20180813.sts_client import StsClient

from imagesync_emulator import Emulator
from imagesync_emulator.worldfile import DEFAULT_WORLD, WorldFileError

from .conftest import DEFAULT_UIN, GZ, PARTNER_UIN, call, client, error_code, partner_client

DELIVERY = f"qcs::cam::uin/{PARTNER_UIN}:roleName/imagesync-delivery"


def assume(sts: StsClient, arn: str = DELIVERY, **extra: Any) -> dict:
    return call(sts, "AssumeRole", {"RoleArn": arn, "RoleSessionName": "imagesync-test", **extra})


def test_assumed_keys_act_as_the_role_account(emulator: Emulator) -> None:
    sts = client(emulator, StsClient)
    req = models.AssumeRoleRequest()
    req.RoleArn, req.RoleSessionName, req.DurationSeconds = DELIVERY, "imagesync-test", 1800
    resp = sts.AssumeRole(req)  # the typed SDK call: the answer deserialises into the SDK's model
    creds = resp.Credentials
    assert creds.TmpSecretId and creds.TmpSecretKey and creds.Token
    assert abs(resp.ExpiredTime - (time.time() + 1800)) < 60
    # the same instant as ExpiredTime, in ISO 8601 (not "this year": at 23:30 on 31 December it is next year's)
    assert resp.Expiration == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(resp.ExpiredTime))

    as_partner = client(
        emulator, CvmClient, secret_id=creds.TmpSecretId, secret_key=creds.TmpSecretKey, token=creds.Token
    )
    mine = call(as_partner, "DescribeImages", {"Filters": [{"Name": "image-type", "Values": ["PRIVATE_IMAGE"]}]})
    assert {i["ImageId"] for i in mine["ImageSet"]} == {"img-sh4red01"}  # partner's own image, not default's
    call(
        as_partner,
        "ModifyImageSharePermission",
        {"ImageId": "img-sh4red01", "AccountIds": [DEFAULT_UIN], "Permission": "CANCEL"},
    )
    assert emulator.admin.image("img-sh4red01")["SharedWith"] == []
    assert emulator.admin.calls("ModifyImageSharePermission")[-1]["account"] == PARTNER_UIN

    # the key needs its token, like every temporary key
    no_token = client(emulator, CvmClient, secret_id=creds.TmpSecretId, secret_key=creds.TmpSecretKey)
    assert error_code(no_token, "DescribeImages") == "AuthFailure.TokenFailure"
    assert any(h["event"] == "role_assumed" and h["by"] == DEFAULT_UIN for h in emulator.admin.dump()["history"])


def test_a_copy_made_with_assumed_keys_belongs_to_the_role_account(emulator: Emulator) -> None:
    """The cross-account path: default shares its image with partner, assumes partner's role, and makes partner's
    own copy of the shared image in the same region."""
    cvm = client(emulator)
    call(
        cvm,
        "ModifyImageSharePermission",
        {"ImageId": "img-5ddkx3gh", "AccountIds": [PARTNER_UIN], "Permission": "SHARE"},
    )
    creds = assume(client(emulator, StsClient))["Credentials"]
    as_partner = client(
        emulator, CvmClient, secret_id=creds["TmpSecretId"], secret_key=creds["TmpSecretKey"], token=creds["Token"]
    )
    seen = call(as_partner, "DescribeImages", {"ImageIds": ["img-5ddkx3gh"]})["ImageSet"][0]
    assert seen["ImageType"] == "SHARED_IMAGE"
    copy = call(
        as_partner, "SyncImages", {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": [GZ], "ImageSetRequired": True}
    )["ImageSet"][0]
    assert emulator.admin.image(copy["ImageId"])["OwnerUin"] == PARTNER_UIN


def test_roles_can_be_assumed_by_role_id_and_from_temporary_keys(emulator: Emulator) -> None:
    role = next(r for r in emulator.admin.roles() if r["name"] == "imagesync-delivery")
    assert role["arn"] == DELIVERY and role["trusted"] == [DEFAULT_UIN]
    temp = emulator.admin.temporary_credentials(DEFAULT_UIN)
    sts = client(emulator, StsClient, secret_id=temp["secret_id"], secret_key=temp["secret_key"], token=temp["token"])
    assert assume(sts, f"qcs::cam::uin/{PARTNER_UIN}:role/{role['role_id']}")["Credentials"]["Token"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"RoleArn": "qcs::cam::uin/999999999999:roleName/imagesync-delivery"}, "InvalidParameter.AccountNotAvaliable"),
        ({"RoleArn": f"qcs::cam::uin/{PARTNER_UIN}:roleName/nope"}, "ResourceNotFound.RoleNotFound"),
        ({"RoleArn": f"qcs::cam::uin/{PARTNER_UIN}:role/4611686018427000000"}, "ResourceNotFound.RoleNotFound"),
        ({"RoleArn": "arn:aws:iam::123:role/x"}, "InvalidParameter.ResouceError"),
        ({"RoleSessionName": "x"}, "InvalidParameter.ParamError"),
        ({"RoleSessionName": "has space"}, "InvalidParameter.ParamError"),
        ({"DurationSeconds": 43201}, "InvalidParameter.OverTimeError"),
        ({"DurationSeconds": 0}, "InvalidParameter.OverTimeError"),
        ({"RoleArn": None}, "MissingParameter"),
    ],
)
def test_refusals(emulator: Emulator, params: dict, code: str) -> None:
    body = {"RoleArn": DELIVERY, "RoleSessionName": "imagesync-test", **params}
    assert (
        error_code(client(emulator, StsClient), "AssumeRole", {k: v for k, v in body.items() if v is not None}) == code
    )


def test_only_trusted_accounts_may_assume(emulator: Emulator) -> None:
    # partner may not assume its own role (not in the trust policy), nor a role of default's nobody trusts
    assert (
        error_code(
            partner_client(emulator, StsClient), "AssumeRole", {"RoleArn": DELIVERY, "RoleSessionName": "p-session"}
        )
        == "UnauthorizedOperation"
    )
    emulator.admin.add_role("default", "reader", [])
    reader = f"qcs::cam::uin/{DEFAULT_UIN}:roleName/reader"
    assert (
        error_code(
            partner_client(emulator, StsClient), "AssumeRole", {"RoleArn": reader, "RoleSessionName": "p-session"}
        )
        == "UnauthorizedOperation"
    )
    emulator.admin.add_role("default", "reader", ["partner"])  # trust policy replaced
    assert assume(partner_client(emulator, StsClient), reader)["Credentials"]["TmpSecretId"]
    with pytest.raises(KeyError):
        emulator.admin.add_role("default", "x", ["nobody"])


def test_assumed_keys_carry_their_role_and_lifetime(emulator: Emulator) -> None:
    creds = assume(client(emulator, StsClient), DurationSeconds=900)["Credentials"]
    cvm = client(
        emulator, CvmClient, secret_id=creds["TmpSecretId"], secret_key=creds["TmpSecretKey"], token=creds["Token"]
    )
    call(cvm, "DescribeImages")
    lookup = emulator.world.credentials.lookup(creds["TmpSecretId"])
    assert lookup is not None and lookup.role_name == "imagesync-delivery" and lookup.session_name == "imagesync-test"
    assert lookup.expires_at is not None and 850 < lookup.expires_at - time.time() <= 900


def test_world_file_roles() -> None:
    data = yaml.safe_load(DEFAULT_WORLD.read_text())
    data["accounts"][1]["roles"] = [{"name": "ops", "trusted": ["default", "100000000002"]}]
    with Emulator(world=data, time_scale=0.0) as emu:
        assert [(r["name"], r["trusted"]) for r in emu.admin.roles()] == [("ops", [DEFAULT_UIN, PARTNER_UIN])]
    data["accounts"][1]["roles"] = [{"name": "ops", "trusted": ["stranger"]}]
    with pytest.raises(WorldFileError, match="roles"):
        Emulator(world=data)
    data["accounts"][1]["roles"] = [{"name": "ops", "principals": ["default"]}]
    with pytest.raises(WorldFileError, match="unknown keys"):
        Emulator(world=data)
