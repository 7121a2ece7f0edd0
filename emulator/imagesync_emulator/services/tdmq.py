"""TDMQ for CMQ 2020-02-17: queues, topics, subscriptions; SendCmqMsg and PublishCmqMsg record messages.

Messages are not consumed through the API (the CMQ data plane is out of scope): the admin handle drains them.
A topic publish is recorded once for the topic and once per queue subscription whose filter tags match.
"""

from __future__ import annotations

from ..errors import ApiError
from ..params import Params
from ..world import Queue, Subscription, Topic
from . import CallContext, Service

SERVICE = Service("tdmq", "2020-02-17")

MAX_MSG_BYTES = 1024 * 1024


def _key(ctx: CallContext, name: str) -> tuple[str, str, str]:
    return (ctx.account.uin, ctx.region or "", name)


def _check_content(p: Params) -> str:
    content = p.text("MsgContent", required=True) or ""
    if len(content.encode("utf-8")) > MAX_MSG_BYTES:
        raise ApiError("FailedOperation.MaxMessageSizeError", "A message holds at most 1 MB.")
    return content


def _record(ctx: CallContext, where: dict, body: str, tags: list[str], delay: int, msg_id: str) -> None:
    ctx.world.outbox.append(
        {
            **where,
            "body": body,
            "tags": list(tags),
            "delay_seconds": delay,
            "msg_id": msg_id,
            "account": ctx.account.uin,
            "region": ctx.region,
            "sent_at": ctx.now,
            "request_id": ctx.request_id,
        }
    )


@SERVICE.action(
    "CreateCmqQueue",
    {
        "QueueName",
        "MaxMsgHeapNum",
        "PollingWaitSeconds",
        "VisibilityTimeout",
        "MaxMsgSize",
        "MsgRetentionSeconds",
        "RewindSeconds",
        "Transaction",
        "FirstQueryInterval",
        "MaxQueryCount",
        "DeadLetterQueueName",
        "Policy",
        "MaxReceiveCount",
        "MaxTimeToLive",
        "Trace",
        "Tags",
        "RetentionSizeInMB",
    },
)
def create_cmq_queue(ctx: CallContext, p: Params) -> dict:
    name = p.text("QueueName", required=True, max_len=64) or ""
    if _key(ctx, name) in ctx.world.queues:
        raise ApiError("ResourceInUse.Queue", f"The queue `{name}` already exists.")
    queue = Queue(name, ctx.world.new_id("cmq-queue-"))
    ctx.world.queues[_key(ctx, name)] = queue
    return {"QueueId": queue.queue_id}


@SERVICE.action("CreateCmqTopic", {"TopicName", "MaxMsgSize", "FilterType", "MsgRetentionSeconds", "Trace", "Tags"})
def create_cmq_topic(ctx: CallContext, p: Params) -> dict:
    name = p.text("TopicName", required=True, max_len=64) or ""
    if _key(ctx, name) in ctx.world.topics:
        raise ApiError("ResourceInUse.Topic", f"The topic `{name}` already exists.")
    topic = Topic(name, ctx.world.new_id("cmq-topic-"))
    ctx.world.topics[_key(ctx, name)] = topic
    return {"TopicId": topic.topic_id}


@SERVICE.action(
    "CreateCmqSubscribe",
    {
        "TopicName",
        "SubscriptionName",
        "Protocol",
        "Endpoint",
        "NotifyStrategy",
        "FilterTag",
        "BindingKey",
        "NotifyContentFormat",
    },
)
def create_cmq_subscribe(ctx: CallContext, p: Params) -> dict:
    topic_name = p.text("TopicName", required=True) or ""
    name = p.text("SubscriptionName", required=True) or ""
    protocol = p.text("Protocol", required=True, choices=("queue", "http")) or "queue"
    endpoint = p.text("Endpoint", required=True) or ""
    filter_tags = p.str_list("FilterTag") or []
    topic = ctx.world.topics.get(_key(ctx, topic_name))
    if topic is None:
        raise ApiError("ResourceNotFound.Topic", f"The topic `{topic_name}` does not exist.")
    if any(s.name == name for s in topic.subscriptions):
        raise ApiError("ResourceInUse.Subscription", f"The subscription `{name}` already exists.")
    if protocol == "queue" and _key(ctx, endpoint) not in ctx.world.queues:
        raise ApiError("ResourceNotFound", f"The queue `{endpoint}` does not exist.")
    sub = Subscription(name, protocol, endpoint, filter_tags, ctx.world.new_id("sub-"))
    topic.subscriptions.append(sub)
    return {"SubscriptionId": sub.subscription_id}


@SERVICE.action("SendCmqMsg", {"QueueName", "MsgContent", "DelaySeconds"})
def send_cmq_msg(ctx: CallContext, p: Params) -> dict:
    name = p.text("QueueName", required=True) or ""
    content = _check_content(p)
    delay = p.integer("DelaySeconds", required=True, minimum=0, maximum=3600) or 0
    if _key(ctx, name) not in ctx.world.queues:
        if not ctx.world.settings.auto_create_queues:
            raise ApiError("ResourceNotFound", f"The queue `{name}` does not exist.")
        ctx.world.queues[_key(ctx, name)] = Queue(name, ctx.world.new_id("cmq-queue-"))
    msg_id = ctx.world.new_id("msg-", 16)
    _record(ctx, {"queue": name}, content, [], delay, msg_id)
    return {"Result": True, "MsgId": msg_id}


@SERVICE.action("PublishCmqMsg", {"TopicName", "MsgContent", "MsgTag"})
def publish_cmq_msg(ctx: CallContext, p: Params) -> dict:
    name = p.text("TopicName", required=True) or ""
    content = _check_content(p)
    tags = p.str_list("MsgTag") or []
    topic = ctx.world.topics.get(_key(ctx, name))
    if topic is None:
        raise ApiError("ResourceNotFound.Topic", f"The topic `{name}` does not exist.")
    msg_id = ctx.world.new_id("msg-", 16)
    _record(ctx, {"topic": name}, content, tags, 0, msg_id)
    for sub in topic.subscriptions:
        if sub.protocol == "queue" and (not sub.filter_tags or set(sub.filter_tags) & set(tags)):
            _record(ctx, {"queue": sub.endpoint, "via_topic": name}, content, tags, 0, msg_id)
    return {"Result": True, "MsgId": msg_id}
