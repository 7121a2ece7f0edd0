"""Deliveries into other accounts (issue 14 item 5) on the emulator: share, sts AssumeRole, the account's own copy
of the shared source, then its other regions; every step a replica; the ids per account and region reported."""

from __future__ import annotations

import json
from typing import Any

from imagesync.domain.models import CompletionMessage
from imagesync.handlers import copy_request, status_sweep
from tests.conftest import load_event

TIMER = load_event("timer/every_minute.json")
PARTNER = "100000000002"  # the default world's second account; its role imagesync-delivery trusts `default`
SOURCE = "img-5ddkx3gh"  # the default account's image in ap-guangzhou


def _post(body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("http/function_url_create_replication.json")
    event["body"] = json.dumps({"source_region": "ap-guangzhou", "image_ids": [SOURCE], **body})
    return copy_request.main_handler(event, {})


def _sweep() -> dict[str, Any]:
    return status_sweep.main_handler(TIMER, {"time_limit_in_ms": 30000})


def _get(replication_id: str) -> dict[str, Any]:
    event = load_event("http/apigw_get_replication.json")
    event["path"] = f"/replications/{replication_id}"
    response = copy_request.main_handler(event, {})
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def _partner_keys(emulator: Any) -> Any:
    from tencentcloud.common.credential import Credential

    keys = emulator.admin.temporary_credentials(PARTNER)
    return Credential(keys["secret_id"], keys["secret_key"], keys["token"])


def test_cross_account_delivery_end_to_end(services: Any, emulator: Any) -> None:
    response = _post(
        {
            "destination_regions": [
                "ap-shanghai",
                {
                    "account": PARTNER,
                    "role": "imagesync-delivery",
                    "regions": ["ap-guangzhou", "ap-beijing", "ap-nanjing"],
                },
            ]
        }
    )
    assert response["statusCode"] == 202, response["body"]
    replication = json.loads(response["body"])
    by_where = {(r.get("account"), r["destination_region"]): r for r in replication["replicas"]}
    assert set(by_where) == {
        (None, "ap-shanghai"),
        (PARTNER, "ap-guangzhou"),
        (PARTNER, "ap-beijing"),
        (PARTNER, "ap-nanjing"),
    }
    handover = by_where[(PARTNER, "ap-guangzhou")]
    assert by_where[(None, "ap-shanghai")]["state"] == "COPYING"
    # only a NORMAL image can be shared, and the own copy keeps the source SYNCING: the handover waits for it
    assert handover["state"] == "WAITING_SOURCE" and "copied_from" not in handover
    assert handover["error"]["code"] == "InvalidImageId.IncorrectState"
    for region in ("ap-beijing", "ap-nanjing"):  # wait for the account's own copy
        assert by_where[(PARTNER, region)]["state"] == "WAITING_SOURCE"
        assert by_where[(PARTNER, region)]["copied_from"] == handover["id"]

    emulator.admin.advance(45 * 60)  # the own copy ended: the source is NORMAL again
    assert _sweep()["outcomes"] == {"SUCCEEDED": 1, "STARTED": 1}
    # the source was shared with the partner; the handover copy was made BY the partner (assumed role's keys)
    shares = [c for c in emulator.admin.calls(action="ModifyImageSharePermission") if c["outcome"] == "ok"]
    assert [c["params"]["AccountIds"] for c in shares] == [[PARTNER]]
    assumed = emulator.admin.calls(action="AssumeRole")
    assert {c["params"]["RoleArn"] for c in assumed} == {f"qcs::cam::uin/{PARTNER}:roleName/imagesync-delivery"}
    handover_id = services.store.get_replica(handover["id"]).destination_image_id
    assert emulator.admin.image(handover_id)["OwnerUin"] == PARTNER

    emulator.admin.advance(45 * 60)  # the handover copy ended: the partner's other regions start from it
    assert _sweep()["outcomes"] == {"SUCCEEDED": 1, "STARTED": 2}
    emulator.admin.advance(45 * 60)
    assert _sweep()["outcomes"] == {"SUCCEEDED": 2}

    got = _get(replication["id"])
    assert got["state"] == "SUCCEEDED"
    (delivery,) = got["accounts"]
    assert delivery["account"] == PARTNER and delivery["state"] == "SUCCEEDED"
    assert set(delivery["image_ids"]) == {"ap-guangzhou", "ap-beijing", "ap-nanjing"}
    assert all(i and i.startswith("img-") for i in delivery["image_ids"].values())
    # the partner sees each copy as its own image (PRIVATE_IMAGE) where it was delivered
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.cvm.v20170312 import cvm_client, models

    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=emulator.endpoint.split("://")[1]))
    for region, image_id in delivery["image_ids"].items():
        client = cvm_client.CvmClient(_partner_keys(emulator), region, profile)
        req = models.DescribeImagesRequest()
        req.ImageIds = [image_id]
        (image,) = client.DescribeImages(req).ImageSet
        assert image.ImageType == "PRIVATE_IMAGE" and image.ImageState == "NORMAL"
    # the webhook payload names the account
    messages = [CompletionMessage.model_validate_json(d.body) for d in services.queue.receive(10, 30)]
    assert sorted((m.account or "", m.destination_region) for m in messages) == [
        ("", "ap-shanghai"),
        (PARTNER, "ap-beijing"),
        (PARTNER, "ap-guangzhou"),
        (PARTNER, "ap-nanjing"),
    ]
    # the assumed keys were cached: one AssumeRole for every call made in the account
    assert len(emulator.admin.calls(action="AssumeRole")) == 1


def test_role_not_trusted_fails_the_handover_and_its_regions(services: Any, emulator: Any) -> None:
    response = _post(
        {
            "destination_regions": [
                {"account": PARTNER, "role": "no-such-role", "regions": ["ap-beijing"]},
            ]
        }
    )
    assert response["statusCode"] == 202, response["body"]
    replication = json.loads(response["body"])
    states = {r["destination_region"]: r for r in replication["replicas"]}
    assert states["ap-guangzhou"]["state"] == "FAILED"
    assert states["ap-guangzhou"]["error"]["code"] == "ResourceNotFound.RoleNotFound"
    report = _sweep()
    assert report["outcomes"] == {"FAILED": 1}
    got = _get(replication["id"])
    assert {r["destination_region"]: r["error"]["code"] for r in got["replicas"]} == {
        "ap-guangzhou": "ResourceNotFound.RoleNotFound",
        "ap-beijing": "Account.HandoverFailed",
    }


def test_account_destinations_are_checked(services: Any, emulator: Any) -> None:
    twice = {"account": PARTNER, "role": "imagesync-delivery", "regions": ["ap-beijing"]}
    response = _post({"destination_regions": [twice, twice]})
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "Account.Duplicate"
    response = _post({"destination_regions": [{"account": "12", "role": "x", "regions": ["ap-beijing"]}]})
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "InvalidRequest"
    response = _post({"destination_regions": [{**twice, "regions": ["ap-singapore"]}]})
    assert response["statusCode"] == 422
    assert json.loads(response["body"])["error"]["code"] == "Region.CrossBorderNotAllowed"


def test_a_rule_delivers_new_images_into_another_account(services: Any, emulator: Any) -> None:
    from tests.integration.test_events import audit_event, create_image, use_rules

    emulator.admin.set_time_scale(0)
    use_rules(
        services,
        [
            {
                "name": "releases",
                "selector": {"source_regions": ["ap-guangzhou"], "name_glob": "release-*"},
                "destinations": ["ap-shanghai"],
                "accounts": [
                    {"account": PARTNER, "role": "imagesync-delivery", "regions": ["ap-guangzhou", "ap-beijing"]}
                ],
            }
        ],
    )
    image_id = create_image(services, "release-partner")
    [outcome] = copy_request.main_handler(audit_event(emulator, "release-partner"), {})["events"]
    assert outcome["status"] == "handled" and outcome["image_id"] == image_id
    replication = services.store.get_replication(outcome["requests"][0]["replication_id"])
    assert {(r.account, r.destination_region) for r in replication.replicas} == {
        (None, "ap-shanghai"),
        (PARTNER, "ap-guangzhou"),
        (PARTNER, "ap-beijing"),
    }
    for _ in range(8):  # the source turns NORMAL, then own copy -> handover -> the partner's other region
        emulator.admin.advance(31 * 60)
        _sweep()
    replication = services.store.get_replication(replication.id)
    assert {r.state.value for r in replication.replicas} == {"SUCCEEDED"}
