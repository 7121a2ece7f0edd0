"""The tag service (tags show up in DescribeImages), TDMQ CMQ messages and EventBridge events."""

from __future__ import annotations

import json

from tencentcloud.cvm.v20170312.cvm_client import CvmClient
from tencentcloud.eb.v20210416 import models as eb_models
from tencentcloud.eb.v20210416.eb_client import EbClient
from tencentcloud.tag.v20180813 import models as tag_models
from tencentcloud.tag.v20180813.tag_client import TagClient
from tencentcloud.tdmq.v20200217 import models as tdmq_models
from tencentcloud.tdmq.v20200217.tdmq_client import TdmqClient

from imagesync_emulator import Emulator

from .conftest import DEFAULT_UIN, GZ, PARTNER_UIN, call, error_code, partner_client

WEB = "img-5ddkx3gh"
WEB_RES = f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:image/{WEB}"


def tags_of(cvm: CvmClient, image_id: str) -> dict[str, str]:
    img = call(cvm, "DescribeImages", {"ImageIds": [image_id]})["ImageSet"][0]
    return {t["Key"]: t["Value"] for t in img["Tags"]}


def test_tag_and_untag_an_image(emulator: Emulator, cvm: CvmClient, tag: TagClient) -> None:
    req = tag_models.TagResourcesRequest()
    req.ResourceList = [WEB_RES]
    t = tag_models.Tag()
    t.TagKey, t.TagValue = "imagesync:replica-of", "img-5ddkx3gh"
    req.Tags = [t]
    tag.TagResources(req)
    assert tags_of(cvm, WEB) == {"team": "web", "env": "prod", "imagesync:replica-of": "img-5ddkx3gh"}
    found = call(cvm, "DescribeImages", {"Filters": [{"Name": "tag:imagesync:replica-of", "Values": [WEB]}]})
    assert [i["ImageId"] for i in found["ImageSet"]] == [WEB]
    call(tag, "UnTagResources", {"ResourceList": [WEB_RES], "TagKeys": ["env", "imagesync:replica-of"]})
    assert tags_of(cvm, WEB) == {"team": "web"}
    assert emulator.admin.calls("TagResources")[0]["params"]["ResourceList"] == [WEB_RES]
    assert emulator.admin.calls("TagResources")[0]["service"] == "tag"


def test_tag_a_fresh_copy(emulator: Emulator, cvm: CvmClient, tag: TagClient) -> None:
    copy = call(
        cvm, "SyncImages", {"ImageIds": [WEB], "DestinationRegions": ["ap-shanghai"], "ImageSetRequired": True}
    )["ImageSet"][0]
    res = f"qcs::cvm:ap-shanghai:uin/{DEFAULT_UIN}:image/{copy['ImageId']}"
    call(tag, "TagResources", {"ResourceList": [res], "Tags": [{"TagKey": "team", "TagValue": "web"}]})
    assert emulator.admin.image(copy["ImageId"])["Tags"] == [{"Key": "team", "Value": "web"}]


def test_read_tags_back(tag: TagClient) -> None:
    resp = tag.GetResources(tag_models.GetResourcesRequest())
    mapping = {m.Resource: {t.TagKey: t.TagValue for t in m.Tags} for m in resp.ResourceTagMappingList}
    assert mapping[WEB_RES] == {"team": "web", "env": "prod"}
    filtered = call(tag, "GetResources", {"TagFilters": [{"TagKey": "team", "TagValue": ["api"]}]})
    assert [m["Resource"] for m in filtered["ResourceTagMappingList"]] == [
        f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:image/img-8c2rq9tw"
    ]
    page = call(tag, "GetResources", {"MaxResults": 1})
    assert len(page["ResourceTagMappingList"]) == 1 and page["PaginationToken"]
    by_ids = call(
        tag,
        "DescribeResourceTagsByResourceIds",
        {"ServiceType": "cvm", "ResourcePrefix": "image", "ResourceIds": [WEB, "img-2hxv7lqe"], "ResourceRegion": GZ},
    )
    assert {(r["ResourceId"], r["TagKey"], r["TagValue"]) for r in by_ids["Tags"]} == {
        (WEB, "team", "web"),
        (WEB, "env", "prod"),
    }


def test_tag_errors(emulator: Emulator, tag: TagClient) -> None:
    def tag_err(resources: list[str], tags: list[dict]) -> str:
        return error_code(tag, "TagResources", {"ResourceList": resources, "Tags": tags})

    ok_tag = [{"TagKey": "a", "TagValue": "b"}]
    assert tag_err(["cvm/img-5ddkx3gh"], ok_tag) == "InvalidParameterValue.ResourceDescriptionError"
    assert (
        tag_err([f"qcs::cvm:{GZ}:uin/{PARTNER_UIN}:image/img-sh4red01"], ok_tag) == "InvalidParameterValue.UinInvalid"
    )
    assert (
        tag_err([f"qcs::cvm:{GZ}:uin/{DEFAULT_UIN}:image/img-zzzzzzzz"], ok_tag)
        == "InvalidParameterValue.ResourceIdInvalid"
    )
    assert tag_err([WEB_RES], [{"TagKey": "", "TagValue": "b"}]) == "InvalidParameterValue.TagKeyEmpty"
    assert tag_err([WEB_RES], ok_tag * 2) == "InvalidParameterValue.TagKeyDuplicate"
    assert tag_err([WEB_RES], [{"TagKey": "qcs:x", "TagValue": "b"}]) == "InvalidParameter.ReservedTagKey"
    assert (
        tag_err([WEB_RES], [{"TagKey": f"k{i}", "TagValue": "v"} for i in range(11)])
        == "LimitExceeded.TagNumPerRequest"
    )
    assert tag_err([WEB_RES], [{"TagKey": "k" * 128, "TagValue": "v"}]) == "InvalidParameterValue.TagKeyLengthExceeded"
    assert tag_err([WEB_RES], []) == "MissingParameter"
    assert error_code(tag, "GetResources", {"PaginationToken": "zzz"}) == "InvalidParameter.PaginationTokenInvalid"
    # the partner cannot see the default account's tags
    assert call(partner_client(emulator, TagClient, None), "GetResources")["ResourceTagMappingList"] == []


def test_cmq_queue_messages(emulator: Emulator, tdmq: TdmqClient) -> None:
    req = tdmq_models.SendCmqMsgRequest()
    req.QueueName, req.MsgContent, req.DelaySeconds = "imagesync-tasks", json.dumps({"copy": WEB}), 5
    resp = tdmq.SendCmqMsg(req)
    assert resp.Result is True and resp.MsgId
    msgs = emulator.admin.drain_messages("imagesync-tasks")
    assert len(msgs) == 1
    m = msgs[0]
    assert (m["queue"], json.loads(m["body"]), m["delay_seconds"], m["msg_id"], m["tags"]) == (
        "imagesync-tasks",
        {"copy": WEB},
        5,
        resp.MsgId,
        [],
    )
    assert emulator.admin.drain_messages() == []
    assert emulator.admin.calls("SendCmqMsg")[0]["params"]["QueueName"] == "imagesync-tasks"


def test_cmq_errors(tdmq: TdmqClient) -> None:
    assert (
        error_code(tdmq, "SendCmqMsg", {"QueueName": "nope", "MsgContent": "x", "DelaySeconds": 0})
        == "ResourceNotFound"
    )
    assert error_code(tdmq, "PublishCmqMsg", {"TopicName": "nope", "MsgContent": "x"}) == "ResourceNotFound.Topic"
    assert (
        error_code(
            tdmq,
            "SendCmqMsg",
            {"QueueName": "imagesync-tasks", "MsgContent": "x" * (1024 * 1024 + 1), "DelaySeconds": 0},
        )
        == "FailedOperation.MaxMessageSizeError"
    )
    assert error_code(tdmq, "SendCmqMsg", {"QueueName": "imagesync-tasks", "DelaySeconds": 0}) == "MissingParameter"
    assert error_code(tdmq, "CreateCmqQueue", {"QueueName": "imagesync-tasks"}) == "ResourceInUse.Queue"
    assert (
        error_code(
            tdmq,
            "CreateCmqSubscribe",
            {"TopicName": "nope", "SubscriptionName": "s", "Protocol": "queue", "Endpoint": "q"},
        )
        == "ResourceNotFound.Topic"
    )


def test_cmq_topics_fan_out_to_queue_subscriptions(emulator: Emulator, tdmq: TdmqClient) -> None:
    assert call(tdmq, "CreateCmqQueue", {"QueueName": "done"})["QueueId"]
    assert call(tdmq, "CreateCmqTopic", {"TopicName": "replication"})["TopicId"]
    assert call(
        tdmq,
        "CreateCmqSubscribe",
        {
            "TopicName": "replication",
            "SubscriptionName": "to-done",
            "Protocol": "queue",
            "Endpoint": "done",
            "FilterTag": ["finished"],
        },
    )["SubscriptionId"]
    call(tdmq, "PublishCmqMsg", {"TopicName": "replication", "MsgContent": "a", "MsgTag": ["finished"]})
    call(tdmq, "PublishCmqMsg", {"TopicName": "replication", "MsgContent": "b", "MsgTag": ["started"]})
    topic = emulator.admin.drain_messages("replication")
    assert [(m["topic"], m["body"], m["tags"]) for m in topic] == [
        ("replication", "a", ["finished"]),
        ("replication", "b", ["started"]),
    ]
    assert [m["body"] for m in emulator.admin.drain_messages("done")] == ["a"]


def test_put_events(emulator: Emulator, eb: EbClient) -> None:
    req = eb_models.PutEventsRequest()
    req.EventBusId = "eb-default"
    ev = eb_models.Event()
    ev.Source, ev.Type, ev.Subject = "imagesync.replication", "imagesync:CopyFinished", "img-5ddkx3gh"
    ev.Data = json.dumps({"image_id": WEB, "state": "NORMAL"})
    req.EventList = [ev]
    eb.PutEvents(req)
    events = emulator.admin.drain_events()
    assert len(events) == 1
    e = events[0]
    assert (e["event_bus_id"], e["source"], e["type"], e["subject"], e["data"]) == (
        "eb-default",
        "imagesync.replication",
        "imagesync:CopyFinished",
        WEB,
        {"image_id": WEB, "state": "NORMAL"},
    )
    assert emulator.admin.drain_events() == []


def test_put_events_errors(eb: EbClient) -> None:
    one = [{"Source": "s", "Data": "{}", "Type": "t", "Subject": "x"}]
    assert error_code(eb, "PutEvents", {"EventBusId": "eb-nope", "EventList": one}) == "ResourceNotFound.EventBus"
    assert error_code(eb, "PutEvents", {"EventBusId": "eb-default"}) == "MissingParameter"
    assert (
        error_code(eb, "PutEvents", {"EventBusId": "eb-default", "EventList": [{"Source": "s"}]}) == "MissingParameter"
    )
    bus = call(eb, "CreateEventBus", {"EventBusName": "imagesync"})["EventBusId"]
    call(eb, "PutEvents", {"EventBusId": bus, "EventList": one})
