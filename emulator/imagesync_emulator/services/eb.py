"""EventBridge 2021-04-16: PutEvents (recorded, drained by the admin handle) and CreateEventBus."""

from __future__ import annotations

import json

from ..errors import ApiError
from ..params import Params, require_member
from . import CallContext, Service

SERVICE = Service("eb", "2021-04-16")


@SERVICE.action("PutEvents", {"EventList", "EventBusId"})
def put_events(ctx: CallContext, p: Params) -> dict:
    bus = p.text("EventBusId", required=True) or ""
    events = p.obj_list("EventList", required=True,
                        fields={"Source": str, "Data": str, "Type": str, "Subject": str, "Time": int}) or []
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
        ctx.world.events.append({
            "event_bus_id": bus, "source": e["Source"], "type": e["Type"], "subject": e["Subject"],
            "time": e.get("Time"), "data": data, "raw": dict(e), "id": ctx.world.new_id("evt-", 16),
            "account": ctx.account.uin, "region": ctx.region, "received_at": ctx.now,
            "request_id": ctx.request_id,
        })
    return {}


@SERVICE.action("CreateEventBus", {"EventBusName", "Description", "SaveDays", "EnableStore"})
def create_event_bus(ctx: CallContext, p: Params) -> dict:
    name = p.text("EventBusName", required=True) or ""
    bus_id = ctx.world.new_id("eb-")
    ctx.world.event_buses[(ctx.account.uin, bus_id)] = name
    return {"EventBusId": bus_id}
