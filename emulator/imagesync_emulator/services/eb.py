"""EventBridge 2021-04-16: PutEvents (recorded, drained by the admin handle), CreateEventBus, ListEventBuses, and
rules (CreateRule with an event pattern, CreateTarget of type scf; ListRules, ListTargets) that route events to the
emulated SCF.

Routing: every event recorded on a bus (a PutEvents event, or a CloudAudit event, which goes to the account's
``default`` bus, id ``eb-default``) that matches an enabled rule's pattern becomes one asynchronous invocation of
each scf target (the CloudEvent itself is the function's event; batch delivery is not emulated).
"""

from __future__ import annotations

import json
import re

from ..errors import ApiError
from ..params import Params, require_member
from ..scf import patterns
from ..world import World
from . import CallContext, Service

DEFAULT_BUS_ID = "eb-default"
_SCF_TARGET = re.compile(
    r"^qcs::scf:(?P<region>[^:]*):uin/(?P<uin>\d*):namespace/(?P<ns>[^/]+)/function/"
    r"(?P<name>[^/]+)(/(?P<qualifier>[^/]+))?$"
)
_RULE_NAME = re.compile(r"^[A-Za-z\u4e00-\u9fff][A-Za-z0-9_\-\u4e00-\u9fff]{0,58}[A-Za-z0-9\u4e00-\u9fff]$")


def default_bus_id(world: World, uin: str) -> str:
    """The account's cloud-service event bus ("default"), created on first use. Hold the world lock."""
    for (owner, bus_id), name in world.event_buses.items():
        if owner == uin and name == "default":
            return bus_id
    world.event_buses[(uin, DEFAULT_BUS_ID)] = "default"
    return DEFAULT_BUS_ID


def route_event(world: World, uin: str, bus_id: str, event: dict) -> list[str]:
    """Queue one async invocation per matching rule's scf target; returns their request ids. Hold the world lock."""
    runtime = world.scf
    started: list[str] = []
    for rule in world.eb_rules.values():
        if rule["uin"] != uin or rule["bus_id"] != bus_id or not rule["enabled"]:
            continue
        if not patterns.matches(rule["pattern"], event):
            continue
        for target in rule["targets"]:
            m = _SCF_TARGET.match(target["ResourceDescription"])
            if runtime is None or m is None:
                continue
            try:
                started.append(runtime.invoke_async(m["name"], event, namespace=m["ns"], source="eventbridge"))
            except KeyError:  # the function is gone: EventBridge drops the delivery (recorded in history)
                world.history.append({"event": "eb_target_missing", "rule": rule["name"], "target": target})
    return started


SERVICE = Service("eb", "2021-04-16")


@SERVICE.action("PutEvents", {"EventList", "EventBusId"})
def put_events(ctx: CallContext, p: Params) -> dict:
    bus = p.text("EventBusId", required=True) or ""
    events = (
        p.obj_list(
            "EventList", required=True, fields={"Source": str, "Data": str, "Type": str, "Subject": str, "Time": int}
        )
        or []
    )
    if len(events) > 10:
        raise ApiError("InvalidParameterValue", "At most 10 events per PutEvents call.")
    if (ctx.account.uin, bus) not in ctx.world.event_buses:
        if not ctx.world.settings.auto_create_event_buses:
            raise ApiError("ResourceNotFound.EventBus", f"The event bus `{bus}` does not exist.")
        ctx.world.event_buses[(ctx.account.uin, bus)] = bus
    for i, e in enumerate(events):
        for key in ("Source", "Data", "Type", "Subject"):
            require_member(f"EventList.{i}", e, key)
    for e in events:
        try:
            data = json.loads(e["Data"])
        except ValueError:
            data = e["Data"]
        record = {
            "event_bus_id": bus,
            "source": e["Source"],
            "type": e["Type"],
            "subject": e["Subject"],
            "time": e.get("Time"),
            "data": data,
            "raw": dict(e),
            "id": ctx.world.new_id("evt-", 16),
            "account": ctx.account.uin,
            "region": ctx.region,
            "received_at": ctx.now,
            "request_id": ctx.request_id,
        }
        ctx.world.events.append(record)
        route_event(ctx.world, ctx.account.uin, bus, _cloud_event(record))
    return {}


def _cloud_event(record: dict) -> dict:
    """A PutEvents event as EventBridge delivers it to a target: a CloudEvent."""
    millis = record["time"] if isinstance(record["time"], int) else int(record["received_at"] * 1000)
    return {
        "specversion": "1.0",
        "id": record["id"],
        "type": record["type"],
        "source": record["source"],
        "subject": record["subject"],
        "time": millis,
        "region": record["region"],
        "datacontenttype": "application/json;charset=utf-8",
        "resource": [],
        "tags": None,
        "status": "",
        "data": record["data"],
    }


@SERVICE.action("CreateEventBus", {"EventBusName", "Description", "SaveDays", "EnableStore"})
def create_event_bus(ctx: CallContext, p: Params) -> dict:
    name = p.text("EventBusName", required=True) or ""
    bus_id = ctx.world.new_id("eb-")
    ctx.world.event_buses[(ctx.account.uin, bus_id)] = name
    return {"EventBusId": bus_id}


@SERVICE.action("ListEventBuses", {"OrderBy", "Limit", "Order", "Filters", "Offset"})
def list_event_buses(ctx: CallContext, p: Params) -> dict:
    default_bus_id(ctx.world, ctx.account.uin)
    buses = [
        {"EventBusId": bus_id, "EventBusName": name, "Type": "Cloud" if name == "default" else "Custom"}
        for (uin, bus_id), name in sorted(ctx.world.event_buses.items())
        if uin == ctx.account.uin
    ]
    return {"EventBuses": buses, "TotalCount": len(buses)}


def _bus(ctx: CallContext, p: Params) -> str:
    bus = p.text("EventBusId", required=True) or ""
    if bus == DEFAULT_BUS_ID:
        default_bus_id(ctx.world, ctx.account.uin)
    if (ctx.account.uin, bus) not in ctx.world.event_buses:
        raise ApiError("ResourceNotFound.EventBus", f"The event bus `{bus}` does not exist.")
    return bus


@SERVICE.action("CreateRule", {"EventPattern", "EventBusId", "RuleName", "Enable", "Description"})
def create_rule(ctx: CallContext, p: Params) -> dict:
    bus = _bus(ctx, p)
    name = p.text("RuleName", required=True) or ""
    if not _RULE_NAME.match(name):
        raise ApiError(
            "InvalidParameterValue.RuleName",
            "A rule name has 2-60 letters, digits, _ and -, starting with a letter and ending with a letter or digit.",
        )
    try:
        pattern = json.loads(p.text("EventPattern", required=True) or "")
        patterns.validate(pattern)
    except (ValueError, patterns.PatternError) as exc:
        raise ApiError("InvalidParameterValue.EventPattern", f"The event pattern is not valid: {exc}.") from exc
    rule_id = ctx.world.new_id("rule-")
    ctx.world.eb_rules[rule_id] = {
        "uin": ctx.account.uin,
        "bus_id": bus,
        "name": name,
        "pattern": pattern,
        "enabled": p.flag("Enable", default=True),
        "targets": [],
        "description": p.text("Description") or "",
    }
    return {"RuleId": rule_id}


@SERVICE.action(
    "CreateTarget",
    {"EventBusId", "Type", "TargetDescription", "RuleId", "BatchTimeout", "BatchEventCount", "EnableBatchDelivery"},
)
def create_target(ctx: CallContext, p: Params) -> dict:
    bus = _bus(ctx, p)
    rule_id = p.text("RuleId", required=True) or ""
    rule = ctx.world.eb_rules.get(rule_id)
    if rule is None or rule["uin"] != ctx.account.uin or rule["bus_id"] != bus:
        raise ApiError("ResourceNotFound.Rule", f"The rule `{rule_id}` does not exist on bus `{bus}`.")
    kind = p.text("Type", required=True) or ""
    if kind != "scf":
        raise ApiError("InvalidParameterValue.Type", "The emulator routes to scf targets only.")
    desc = p.obj("TargetDescription", required=True) or {}
    resource = desc.get("ResourceDescription")
    m = _SCF_TARGET.match(resource) if isinstance(resource, str) else None
    if m is None:
        raise ApiError(
            "InvalidParameterValue.TargetDescription",
            "ResourceDescription is qcs::scf:<region>:uin/<uin>:namespace/<ns>/function/<name>/<qualifier>.",
        )
    if (desc.get("SCFParams") or {}).get("EnableBatchDelivery") or p.flag("EnableBatchDelivery"):
        raise ApiError("InvalidParameterValue.TargetDescription", "The emulator does not batch deliveries.")
    runtime = ctx.world.scf
    if runtime is None or (m["ns"], m["name"]) not in runtime.functions:
        raise ApiError("ResourceNotFound.Function", f"The function `{m['name']}` does not exist.")
    target_id = ctx.world.new_id("target-")
    rule["targets"].append({"TargetId": target_id, "Type": kind, "ResourceDescription": resource})
    return {"TargetId": target_id}


def _page(p: Params, items: list) -> list:
    """Limit (default 20, at most 100) and Offset, as the SDK documents them; oldest first."""
    limit = p.integer("Limit", default=20, minimum=1, maximum=100) or 20
    offset = p.integer("Offset", default=0, minimum=0) or 0
    return items[offset : offset + limit]


@SERVICE.action("ListRules", {"EventBusId", "OrderBy", "Limit", "Offset", "Order"})
def list_rules(ctx: CallContext, p: Params) -> dict:
    """The caller's rules on a bus (what `imagesync deploy-steps` looks at before creating one). OrderBy and Order
    are accepted, not applied: rules come oldest first."""
    bus = _bus(ctx, p)
    rules = [
        {
            "RuleId": rule_id,
            "RuleName": r["name"],
            "EventBusId": bus,
            "Enable": r["enabled"],
            "Description": r["description"],
            "Targets": [{"TargetId": t["TargetId"], "Type": t["Type"]} for t in r["targets"]],
        }
        for rule_id, r in ctx.world.eb_rules.items()
        if r["uin"] == ctx.account.uin and r["bus_id"] == bus
    ]
    return {"Rules": _page(p, rules), "TotalCount": len(rules)}


@SERVICE.action("ListTargets", {"EventBusId", "RuleId", "OrderBy", "Limit", "Offset", "Order"})
def list_targets(ctx: CallContext, p: Params) -> dict:
    bus = _bus(ctx, p)
    rule_id = p.text("RuleId", required=True) or ""
    rule = ctx.world.eb_rules.get(rule_id)
    if rule is None or rule["uin"] != ctx.account.uin or rule["bus_id"] != bus:
        raise ApiError("ResourceNotFound.Rule", f"The rule `{rule_id}` does not exist on bus `{bus}`.")
    targets = [
        {
            "TargetId": t["TargetId"],
            "Type": t["Type"],
            "EventBusId": bus,
            "RuleId": rule_id,
            "TargetDescription": {"ResourceDescription": t["ResourceDescription"]},
            "EnableBatchDelivery": False,
        }
        for t in rule["targets"]
    ]
    return {"Targets": _page(p, targets), "TotalCount": len(targets)}
