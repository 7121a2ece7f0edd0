"""CloudAudit events: every CreateImage call leaves the CloudEvent EventBridge would deliver to a function."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.cvm.v20170312.cvm_client import CvmClient

from imagesync_emulator import Emulator

from .conftest import DEFAULT_UIN, GZ, call, client, error_code

CREATE = {
    "InstanceId": "ins-1a2b3c4d",
    "ImageName": "web-golden-2026-07",
    "ImageDescription": "nightly",
    "TagSpecification": [{"ResourceType": "image", "Tags": [{"Key": "team", "Value": "web"}]}],
}


def test_successful_create_image_event(emulator: Emulator, cvm: CvmClient) -> None:
    before_ms = int(emulator.admin.now() * 1000)
    image_id = call(cvm, "CreateImage", CREATE)["ImageId"]

    [event] = emulator.admin.drain_audit_events()
    assert emulator.admin.drain_audit_events() == []  # drained
    assert {k: event[k] for k in ("specversion", "type", "source", "region", "datacontenttype")} == {
        "specversion": "1.0",
        "type": "cvm:CloudEvent:ApiCall",
        "source": "cvm.cloud.tencent",
        "region": GZ,
        "datacontenttype": "application/json;charset=utf-8",
    }
    # the event's time is the call's emulated time in ms, rounded (the frozen clock gives the same instant back)
    assert isinstance(event["time"], int) and before_ms <= event["time"] <= round(emulator.admin.now() * 1000)
    assert event["id"] and isinstance(event["resource"], list) and isinstance(event["tags"], dict)
    assert event["subject"] == f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:instance/ins-1a2b3c4d"
    data = event["data"]
    assert (data["eventName"], data["eventType"], data["actionType"]) == ("CreateImage", "ApiCall", "Write")
    assert (data["errorCode"], data["apiErrorCode"], data["errorMessage"]) == (0, 0, "")
    assert (data["eventRegion"], data["region"], data["eventSource"]) == (GZ, GZ, "cvm.tencentcloudapi.com")
    assert data["requestID"] == emulator.admin.calls("CreateImage")[0]["request_id"] == data["eventID"]
    assert json.loads(data["requestParameters"]) == CREATE  # a JSON string holding the call's parameters
    assert data["userIdentity"]["accountId"] == DEFAULT_UIN
    assert data["userIdentity"]["secretId"] == emulator.secret_id
    assert data["userAgent"].startswith("SDK_PYTHON") and data["sourceIPAddress"] == "127.0.0.1"
    event_time = datetime.strptime(data["eventTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs(event_time.timestamp() - event["time"] / 1000) < 1
    # The record does not name the new image (no response in an audit record)...
    assert image_id not in json.dumps(event)
    assert json.loads(data["resources"]) == [f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:instance/ins-1a2b3c4d"]
    assert data["resourceName"] == "instance/ins-1a2b3c4d"
    # ...so a consumer finds it by name in eventRegion among images created at or after eventTime.
    params = json.loads(data["requestParameters"])
    found = call(
        client(emulator, region=data["eventRegion"]),
        "DescribeImages",
        {"Filters": [{"Name": "image-name", "Values": [params["ImageName"]]}]},
    )["ImageSet"]
    created = [
        i
        for i in found
        if i["ImageName"] == params["ImageName"]
        and datetime.strptime(i["CreatedTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) >= event_time
    ]
    assert [(i["ImageId"], i["ImageState"]) for i in created] == [(image_id, "CREATING")]
    json.dumps(event)  # deliverable as is


def test_failed_create_image_event(emulator: Emulator, cvm: CvmClient) -> None:
    params = {"InstanceId": "ins-1a2b3c4d", "ImageName": "web-base-2026"}  # the name is taken
    assert error_code(cvm, "CreateImage", params) == "InvalidImageName.Duplicate"
    assert error_code(cvm, "CreateImage", {"ImageName": "x"}) == "MissingParameter.AtLeastOne"

    first, second = emulator.admin.drain_audit_events()
    assert first["data"]["errorCode"] != 0 and first["data"]["apiErrorCode"] == "InvalidImageName.Duplicate"
    assert "web-base-2026" in first["data"]["apiErrorMessage"]
    assert second["data"]["apiErrorCode"] == "MissingParameter.AtLeastOne"
    assert json.loads(second["data"]["resources"]) == [] and second["data"]["resourceName"] == ""
    assert second["subject"] == f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}"
    assert first["id"] != second["id"]


def test_only_calls_the_server_processed_are_audited(emulator: Emulator, cvm: CvmClient) -> None:
    call(cvm, "DescribeImages", {"Limit": 1})
    call(cvm, "SyncImages", {"ImageIds": ["img-8c2rq9tw"], "DestinationRegions": ["ap-shanghai"]})
    emulator.admin.script_fault("CreateImage", 1, kind="drop")
    emulator.admin.script_fault("CreateImage", 1, kind="http5xx")
    emulator.admin.script_fault("CreateImage", 1, kind="drop_after")
    for expected in ("ClientNetworkError", "ServerNetworkError", "ClientNetworkError"):
        with pytest.raises(TencentCloudSDKException) as info:
            call(cvm, "CreateImage", {**CREATE, "ImageName": f"try-{expected}"})
        assert info.value.code == expected
    bad_key = client(emulator, secret_id="AKIDNOPE", secret_key="nope")
    assert error_code(bad_key, "CreateImage", CREATE) == "AuthFailure.SecretIdNotFound"

    events = emulator.admin.drain_audit_events()
    # Only the lost answer: the server created the image, the caller never heard of it.
    assert [json.loads(e["data"]["requestParameters"])["ImageName"] for e in events] == ["try-ClientNetworkError"]
    assert events[0]["data"]["errorCode"] == 0


def test_temporary_key_identity_and_image_id_option(emulator: Emulator) -> None:
    temp = emulator.admin.temporary_credentials()
    cvm = client(emulator, secret_id=temp["secret_id"], secret_key=temp["secret_key"], token=temp["token"])
    emulator.admin.set_audit_include_image_id(True)
    image_id = call(cvm, "CreateImage", {"SnapshotIds": ["snap-12345678"], "ImageName": "from-snapshot"})["ImageId"]

    [event] = emulator.admin.drain_audit_events()
    identity = event["data"]["userIdentity"]
    assert (identity["type"], identity["secretId"], identity["accountId"]) == (
        "AssumedRole",
        temp["secret_id"],
        DEFAULT_UIN,
    )
    resources = json.loads(event["data"]["resources"])
    assert resources[0] == f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:image/{image_id}"
    assert resources[1:] == [f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:snapshot/snap-12345678"]
    assert event["data"]["resourceName"] == f"image/{image_id}" and event["subject"] == resources[0]


def test_audit_events_over_the_admin_http_api(emulator: Emulator, cvm: CvmClient) -> None:
    base = emulator.admin_url + "/"
    assert requests.post(base + "set_audit_include_image_id", json={"enabled": True}).ok
    image_id = call(cvm, "CreateImage", CREATE)["ImageId"]
    events = requests.get(base + "drain_audit_events").json()["result"]
    assert [e["data"]["resourceName"] for e in events] == [f"image/{image_id}"]
    assert requests.get(base + "drain_audit_events").json()["result"] == []
    assert emulator.admin.dump()["settings"]["audit_include_image_id"] is True


def test_audit_event_ids_are_reproducible_and_leave_other_ids_alone() -> None:
    def run(create_first: bool) -> tuple[list[str], str]:
        with Emulator(seed=5, rate_limits=False) as emu:
            cvm = client(emu)
            if create_first:
                error_code(cvm, "CreateImage", {"ImageName": "x"})  # audited, creates nothing
            copy_id = call(
                cvm,
                "SyncImages",
                {"ImageIds": ["img-5ddkx3gh"], "DestinationRegions": ["ap-beijing"], "ImageSetRequired": True},
            )["ImageSet"][0]["ImageId"]
            return [e["id"] for e in emu.admin.drain_audit_events()], copy_id

    ids, copy_id = run(True)
    assert run(True) == (ids, copy_id)
    assert run(False)[1] == copy_id  # an audit record does not shift the world's own ids
