"""SCF 2018-04-16: Invoke / InvokeFunction, GetFunction, ListFunctions, triggers, async invoke config.

Functions come from a deploy (``Emulator.deploy``, docs/emulator.md); these actions run and inspect them.
Synchronous invocations run WITHOUT the world lock (``locked=False``): the function calls back into the emulator.
"""

from __future__ import annotations

import json
import zlib

from ..errors import ApiError
from ..params import Params
from ..scf.cron import Cron, CronError
from ..scf.deploy import check_memory, check_timeout, dead_letter_config, environment
from ..scf.model import MAX_MSG_TTL_S, MAX_RETRY_NUM, MIN_MSG_TTL_S, FunctionSpec, Invocation
from ..scf.runtime import FunctionNotFound, ScfRuntime
from ..scf.triggers import find_trigger, new_trigger
from ..world import iso8601
from . import CallContext, Service

SERVICE = Service("scf", "2018-04-16")

ASYNC_MAX_BYTES = 128 * 1024
SYNC_MAX_BYTES = 6 * 1024 * 1024
LOG_TAIL_BYTES = 4096


def _runtime(ctx: CallContext) -> ScfRuntime:
    runtime = getattr(ctx.world, "scf", None)
    if runtime is None:
        raise ApiError("FailedOperation.ServiceClosed", "SCF is not running in this emulator.")
    return runtime


def _function(ctx: CallContext, p: Params) -> tuple[ScfRuntime, FunctionSpec]:
    runtime = _runtime(ctx)
    name = p.text("FunctionName", required=True) or ""
    namespace = p.text("Namespace") or "default"
    try:
        return runtime, runtime.function(name, namespace)
    except FunctionNotFound:
        raise ApiError(
            "ResourceNotFound.Function", f"The function `{name}` does not exist in namespace `{namespace}`."
        ) from None


def _qualifier(p: Params) -> None:
    q = p.text("Qualifier")
    if q not in (None, "", "$LATEST", "$DEFAULT"):
        raise ApiError("ResourceNotFound.Qualifier", f"The version or alias `{q}` does not exist.")


def _event(text: str, limit: int, name: str) -> object:
    if len(text.encode("utf-8")) > limit:
        raise ApiError("InvalidParameter.RequestTooLarge", f"`{name}` holds at most {limit // 1024} KB here.")
    try:
        return json.loads(text) if text else {}
    except ValueError as exc:
        raise ApiError("InvalidParameterValue.ClientContext", f"`{name}` is not valid JSON: {exc}.") from exc


def _result(record: Invocation, with_log: bool) -> dict:
    ok = record.outcome == "ok"
    error = record.error or {}
    return {
        "Result": {
            "FunctionRequestId": record.request_id,
            "RetMsg": json.dumps(record.result) if ok else "",
            "ErrMsg": ""
            if ok
            else json.dumps(
                {
                    "errorCode": -1,
                    "errorMessage": error.get("errorMessage", ""),
                    "stackTrace": "".join(error.get("stackTrace") or []),
                    "statusCode": 433 if record.outcome == "timeout" else 430,
                }
            ),
            "Log": record.log.encode("utf-8")[-LOG_TAIL_BYTES:].decode("utf-8", "ignore") if with_log else "",
            "Duration": record.duration_ms,
            "BillDuration": int(record.duration_ms + 0.999),
            "MemUsage": 0,
            "InvokeResult": 0 if ok else -1,
        }
    }


@SERVICE.action(
    "Invoke",
    {"FunctionName", "InvocationType", "Qualifier", "ClientContext", "LogType", "Namespace", "RoutingKey"},
    locked=False,
)  # the real rate limit is not documented: the default
def invoke(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    _qualifier(p)
    kind = p.text("InvocationType") or "RequestResponse"
    if kind not in ("RequestResponse", "Event"):
        raise ApiError("InvalidParameterValue.InvokeType", "InvocationType is RequestResponse or Event.")
    text = p.text("ClientContext") or ""
    if kind == "Event":
        event = _event(text, ASYNC_MAX_BYTES, "ClientContext")
        request_id = runtime.invoke_async(spec.name, event, namespace=spec.namespace, source="api")
        return {
            "Result": {
                "FunctionRequestId": request_id,
                "RetMsg": "",
                "ErrMsg": "",
                "Log": "",
                "Duration": 0,
                "BillDuration": 0,
                "MemUsage": 0,
                "InvokeResult": 0,
            }
        }
    event = _event(text, SYNC_MAX_BYTES, "ClientContext")
    record = runtime.invoke(spec.name, event, namespace=spec.namespace, source="api")
    return _result(record, with_log=True)


@SERVICE.action(
    "InvokeFunction", {"FunctionName", "Qualifier", "Event", "LogType", "Namespace", "RoutingKey"}, locked=False
)
def invoke_function(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    _qualifier(p)
    log_type = p.text("LogType") or "None"
    if log_type not in ("None", "Tail"):
        raise ApiError("InvalidParameterValue", "LogType is None or Tail.")
    event = _event(p.text("Event") or "", SYNC_MAX_BYTES, "Event")
    record = runtime.invoke(spec.name, event, namespace=spec.namespace, source="api")
    return _result(record, with_log=log_type == "Tail")


def _function_view(runtime: ScfRuntime, spec: FunctionSpec) -> dict:
    with runtime.lock:
        triggers = [t.info() for t in runtime.triggers if t.function == spec.name and t.namespace == spec.namespace]
    return {
        "FunctionName": spec.name,
        "Namespace": spec.namespace,
        "Runtime": spec.runtime,
        "Handler": spec.handler,
        "MemorySize": spec.memory_mb,
        "Timeout": spec.timeout_s,
        "Description": spec.description,
        "Role": spec.role,
        "Status": "Active",
        "Type": "Event",
        "Qualifier": "$LATEST",
        "FunctionVersion": "$LATEST",
        "Environment": {"Variables": [{"Key": k, "Value": v} for k, v in spec.environment.items()]},
        "Layers": list(spec.layers),
        "DeadLetterConfig": spec.dead_letter,
        "Triggers": triggers,
        "AsyncRunEnable": "FALSE",
        "ModTime": iso8601(runtime.clock.started_at).replace("T", " ").rstrip("Z"),
        "AddTime": iso8601(runtime.clock.started_at).replace("T", " ").rstrip("Z"),
    }


@SERVICE.action("GetFunction", {"FunctionName", "Qualifier", "Namespace", "ShowCode"})
def get_function(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    _qualifier(p)
    return _function_view(runtime, spec)


@SERVICE.action(
    "ListFunctions", {"Order", "Orderby", "Offset", "Limit", "SearchKey", "Namespace", "Description", "Filters"}
)
def list_functions(ctx: CallContext, p: Params) -> dict:
    runtime = _runtime(ctx)
    namespace = p.text("Namespace") or "default"
    offset = p.integer("Offset", default=0, minimum=0) or 0
    limit = p.integer("Limit", default=20, minimum=1, maximum=100) or 20
    search = p.text("SearchKey") or ""
    with runtime.lock:
        specs = sorted(
            (s for (ns, _), s in runtime.functions.items() if ns == namespace and search in s.name),
            key=lambda s: s.name,
        )
    page = specs[offset : offset + limit]
    return {
        "TotalCount": len(specs),
        "Functions": [
            {
                "FunctionName": s.name,
                "Namespace": s.namespace,
                "Runtime": s.runtime,
                "Status": "Active",
                "Description": s.description,
                "Type": "Event",
                "FunctionId": f"lam-{zlib.crc32(s.name.encode()):08x}",
            }
            for s in page
        ],
    }


def _enable(p: Params, name: str = "Enable") -> bool:
    value = p.text(name) or "OPEN"
    if value not in ("OPEN", "CLOSE"):
        raise ApiError("InvalidParameterValue.Enable", f"`{name}` is OPEN or CLOSE.")
    return value == "OPEN"


@SERVICE.action(
    "CreateTrigger",
    {
        "FunctionName",
        "TriggerName",
        "Type",
        "TriggerDesc",
        "Namespace",
        "Qualifier",
        "Enable",
        "CustomArgument",
        "Description",
    },
    rate=100,
)
def create_trigger(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    trigger = new_trigger(
        runtime,
        function=spec.name,
        namespace=spec.namespace,
        name=p.text("TriggerName", required=True) or "",
        type_=p.text("Type", required=True) or "",
        desc=p.text("TriggerDesc") or "",
        enabled=_enable(p),
        custom_argument=p.text("CustomArgument") or "",
        now=ctx.now,
    )
    return {"TriggerInfo": trigger.info()}


@SERVICE.action("DeleteTrigger", {"FunctionName", "TriggerName", "Type", "Namespace", "TriggerDesc", "Qualifier"})
def delete_trigger(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    trigger = find_trigger(
        runtime, spec.name, spec.namespace, p.text("TriggerName", required=True) or "", p.text("Type", required=True)
    )
    runtime.remove_trigger(trigger)
    return {}


@SERVICE.action(
    "UpdateTrigger",
    {
        "FunctionName",
        "TriggerName",
        "Type",
        "Enable",
        "Qualifier",
        "Namespace",
        "TriggerDesc",
        "Description",
        "CustomArgument",
    },
)
def update_trigger(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    trigger = find_trigger(
        runtime, spec.name, spec.namespace, p.text("TriggerName", required=True) or "", p.text("Type", required=True)
    )
    if p.has("TriggerDesc") and trigger.type == "timer":
        try:
            trigger.cron = Cron.parse(p.text("TriggerDesc") or "")
        except CronError as exc:
            raise ApiError("InvalidParameterValue.TriggerDesc", f"The timer's cron is not valid: {exc}.") from exc
        trigger.desc = p.text("TriggerDesc") or ""
    if p.has("Enable"):
        trigger.enabled = _enable(p)
    if p.has("CustomArgument"):
        trigger.custom_argument = p.text("CustomArgument") or ""
    trigger.modified_at = ctx.now
    trigger.checked_until = max(trigger.checked_until, ctx.now)
    return {}


@SERVICE.action(
    "UpdateTriggerStatus", {"Enable", "FunctionName", "TriggerName", "Type", "Qualifier", "Namespace", "TriggerDesc"}
)
def update_trigger_status(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    enabled = _enable(p)
    type_ = p.text("Type", required=True) or ""
    if type_ not in ("timer", "cos", "ckafka"):
        raise ApiError("InvalidParameterValue.Type", "UpdateTriggerStatus takes timer, cos and ckafka triggers.")
    trigger = find_trigger(runtime, spec.name, spec.namespace, p.text("TriggerName", required=True) or "", type_)
    if trigger.enabled == enabled:
        raise ApiError("FailedOperation.UpdateTriggerStatus", "The trigger is already in that state.")
    trigger.enabled = enabled
    trigger.modified_at = ctx.now
    trigger.checked_until = max(trigger.checked_until, ctx.now)  # a re-armed timer does not catch up
    return {}


@SERVICE.action("ListTriggers", {"FunctionName", "Namespace", "Offset", "Limit", "OrderBy", "Order", "Filters"})
def list_triggers(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    offset = p.integer("Offset", default=0, minimum=0) or 0
    limit = p.integer("Limit", default=20, minimum=1, maximum=200) or 20
    with runtime.lock:
        mine = [t.info() for t in runtime.triggers if t.function == spec.name and t.namespace == spec.namespace]
    return {"TotalCount": len(mine), "Triggers": mine[offset : offset + limit]}


@SERVICE.action("GetFunctionEventInvokeConfig", {"FunctionName", "Namespace", "Qualifier"})
def get_event_invoke_config(ctx: CallContext, p: Params) -> dict:
    _, spec = _function(ctx, p)
    return {"AsyncTriggerConfig": {"RetryConfig": [{"RetryNum": spec.retry_num}], "MsgTTL": spec.msg_ttl_s}}


@SERVICE.action("UpdateFunctionEventInvokeConfig", {"AsyncTriggerConfig", "FunctionName", "Namespace"})
def update_event_invoke_config(ctx: CallContext, p: Params) -> dict:
    runtime, spec = _function(ctx, p)
    config = p.obj("AsyncTriggerConfig", required=True) or {}
    retry = config.get("RetryConfig")
    ttl = config.get("MsgTTL")
    if retry is not None and (
        not isinstance(retry, list)
        or len(retry) != 1
        or not isinstance(retry[0], dict)
        or not isinstance(retry[0].get("RetryNum"), int)
    ):
        raise ApiError("InvalidParameterValue.AsyncTriggerConfig", 'RetryConfig is [{"RetryNum": n}].')
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
        raise ApiError("InvalidParameterValue.AsyncTriggerConfig", "MsgTTL is an integer (seconds).")
    if retry is not None and not 0 <= retry[0]["RetryNum"] <= MAX_RETRY_NUM:
        raise ApiError("LimitExceeded.RetryNum", f"RetryNum is 0-{MAX_RETRY_NUM}.")
    if ttl is not None and not MIN_MSG_TTL_S <= ttl <= MAX_MSG_TTL_S:
        raise ApiError("LimitExceeded.MsgTTL", f"MsgTTL is {MIN_MSG_TTL_S}-{MAX_MSG_TTL_S} seconds.")
    with runtime.lock:
        if retry is not None:
            spec.retry_num = retry[0]["RetryNum"]
        if ttl is not None:
            spec.msg_ttl_s = ttl
    return {}


@SERVICE.action(
    "UpdateFunctionConfiguration",
    {"FunctionName", "Namespace", "Description", "MemorySize", "Timeout", "Environment", "DeadLetterConfig", "Role"},
)
def update_function_configuration(ctx: CallContext, p: Params) -> dict:
    """The subset the emulator applies (any other parameter is UnknownParameter, never ignored). The function's
    idle instances stop, so the next invocation starts cold with the new configuration."""
    runtime, spec = _function(ctx, p)
    timeout = p.integer("Timeout")
    memory = p.integer("MemorySize")
    env = p.obj("Environment")
    variables = None
    if env is not None:
        raw = env.get("Variables") or []
        if not isinstance(raw, list) or not all(isinstance(v, dict) and isinstance(v.get("Key"), str) for v in raw):
            raise ApiError("InvalidParameterValue.Environment", 'Environment is {"Variables": [{Key, Value}]}.')
        variables = environment(spec.name, [{"key": v["Key"], "value": v.get("Value")} for v in raw])
    dead = dead_letter_config(spec.name, p.obj("DeadLetterConfig")) if p.has("DeadLetterConfig") else None
    if timeout is not None:
        check_timeout(spec.name, timeout)
    if memory is not None:
        check_memory(spec.name, memory)
    with runtime.lock:  # everything checked: apply all or nothing
        if timeout is not None:
            spec.timeout_s = timeout
        if memory is not None:
            spec.memory_mb = memory
        if variables is not None:
            spec.environment = variables
        if p.has("DeadLetterConfig"):
            spec.dead_letter = dead
        if p.has("Description"):
            spec.description = p.text("Description") or ""
        if p.has("Role"):
            spec.role = p.text("Role") or ""
    runtime.retire_idle(spec.name, spec.namespace)
    return {}
