"""CloudAudit records of API calls, shaped as EventBridge delivers them to a function (a CloudEvent).

What is documented (EventBridge "云审计事件" page, CloudAudit LookUpEvents/DescribeEvents samples) and what is a
guess is listed in docs/emulator.md ("CloudAudit events"). The main guesses, chosen to be the HARDER case for a
consumer rather than the convenient one:

- the record never carries the response: the new image id is not in ``resources`` / ``resourceName`` unless the
  world asks for it (``audit_include_image_id``), so a consumer must find the image by name (``requestParameters``)
  in ``eventRegion`` among images created at or after ``eventTime``;
- ``requestParameters`` and ``resources`` are JSON STRINGS, as in every published sample;
- ``eventTime`` is "YYYY-MM-DD HH:MM:SS" (UTC) as in the LookUpEvents sample (newer DescribeEvents samples show
  epoch seconds: parse both).

Pure: builds a dict from what the dispatcher learnt about a call; no world access.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

EVENT_TYPE = "cvm:CloudEvent:ApiCall"
EVENT_SOURCE = "cvm.cloud.tencent"
DATA_CONTENT_TYPE = "application/json;charset=utf-8"
API_ENDPOINT = "cvm.tencentcloudapi.com"
FAILED_ERROR_CODE = 1  # any non-zero errorCode means the call failed; the real value is unconfirmed


@dataclass
class AuditedCall:
    """One audited API call, as the dispatcher saw it."""

    action: str
    region: str
    uin: str
    app_id: int
    secret_id: str
    temporary_key: bool
    request_id: str
    params: dict
    emulated_time: float  # epoch seconds
    error_code: str | None = None  # the API error code answered, None on success
    error_message: str = ""
    source_ip: str = ""
    user_agent: str = ""
    instance_ids: list[str] = field(default_factory=list)  # resources the call named
    snapshot_ids: list[str] = field(default_factory=list)
    image_ids: list[str] = field(default_factory=list)  # images the call named (DeleteImages' ImageIds)
    role_name: str | None = None  # the role a temporary key was issued for (sts AssumeRole), if any
    created_image_id: str | None = None  # only used when the world includes it


def audit_time(epoch: float) -> str:
    """CloudAudit's eventTime format: "2019-03-20 12:36:27" (UTC)."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _qcs(region: str, uin: str, kind: str, rid: str) -> str:
    return f"qcs::cvm:{region}:uin/{uin}:{kind}/{rid}"


def cloud_event(call: AuditedCall, event_uuid: uuid.UUID, *, include_image_id: bool = False) -> dict:
    """The CloudEvent EventBridge would deliver for ``call`` (``event_uuid`` makes ids reproducible)."""
    ok = call.error_code is None
    resources = [_qcs(call.region, call.uin, "instance", i) for i in call.instance_ids]
    resources += [_qcs(call.region, call.uin, "snapshot", s) for s in call.snapshot_ids]
    resources += [_qcs(call.region, call.uin, "image", i) for i in call.image_ids]
    resource_name = (
        f"instance/{call.instance_ids[0]}"
        if call.instance_ids
        else (f"image/{call.image_ids[0]}" if call.image_ids else "")
    )
    if include_image_id and call.created_image_id:
        resources.insert(0, _qcs(call.region, call.uin, "image", call.created_image_id))
        resource_name = f"image/{call.created_image_id}"
    principal = call.uin
    identity = {
        "type": "AssumedRole" if call.temporary_key else "Root",
        "userName": (call.role_name or "imagesync-role") if call.temporary_key else "root",
        "accountId": call.uin,
        "principalId": principal,
        "secretId": call.secret_id,
        "sessionContext": json.dumps({"uin": int(call.uin), "ownerUin": int(call.uin), "appId": call.app_id})
        if call.temporary_key
        else "",
    }
    record = {
        "actionType": "Write",
        "apiErrorCode": 0 if ok else call.error_code,
        "apiErrorMessage": "" if ok else call.error_message,
        "apiVersion": "3.0",
        "errorCode": 0 if ok else FAILED_ERROR_CODE,
        "errorMessage": "" if ok else call.error_message,
        "eventID": call.request_id,
        "eventName": call.action,
        "eventRegion": call.region,
        "eventSource": API_ENDPOINT,
        "eventTime": audit_time(call.emulated_time),
        "eventType": "ApiCall",
        "eventVersion": 2,
        "httpMethod": "POST",
        "region": call.region,
        "requestID": call.request_id,
        "requestParameters": json.dumps(call.params, ensure_ascii=False, sort_keys=True),
        "resourceName": resource_name,
        "resourceType": "cvm",
        "resources": json.dumps(resources),
        "sourceIPAddress": call.source_ip,
        "userAgent": call.user_agent,
        "userIdentity": identity,
    }
    return {
        "specversion": "1.0",
        "id": str(event_uuid),
        "type": EVENT_TYPE,
        "source": EVENT_SOURCE,
        "subject": resources[0] if resources else f"qcs::cvm:{call.region}:uin/{call.uin}",
        "time": int(round(call.emulated_time * 1000)),
        "region": call.region,
        "datacontenttype": DATA_CONTENT_TYPE,
        "resource": [f"qcs::eb:{call.region}:uid{call.app_id}:eventbusid/eventruleid"],
        "tags": {},
        "data": record,
    }
