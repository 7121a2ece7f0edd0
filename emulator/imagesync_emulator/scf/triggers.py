"""Creating a trigger, as scf CreateTrigger checks it: shared by the API action and the deploy of serverless.yml.

Error codes (scf SDK 3.1.100 errorcodes.py): a type outside "cos, cls, timer, ckafka, http" (``cmq``, ``apigw``,
``mps``...) -> InvalidParameterValue.Type ("Type传入错误"; which code the cloud answers for a retired type is not
documented: this is the SDK's code for a bad Type). A supported type the emulator does not emulate (cos, cls,
ckafka) -> UnsupportedOperation.Trigger, so that nothing is accepted that would never fire. A bad cron ->
InvalidParameterValue.TriggerDesc; a bad name -> InvalidParameterValue.TriggerName; a name taken ->
ResourceInUse.Trigger; more than 10 of one type -> LimitExceeded.Trigger.
"""

from __future__ import annotations

import json
import re

from ..errors import ApiError
from .cron import Cron, CronError
from .model import EMULATED_TRIGGERS, SUPPORTED_TRIGGERS, Trigger
from .runtime import ScfRuntime

MAX_PER_TYPE = 10
_TIMER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_trigger(type_: str, name: str, desc: str, custom_argument: str) -> Cron | None:
    """What CreateTrigger checks on its own arguments (the cron of a timer, parsed); raises ApiError."""
    if type_ not in SUPPORTED_TRIGGERS:
        raise ApiError(
            "InvalidParameterValue.Type",
            f"The trigger type `{type_}` is not supported: CreateTrigger takes "
            f"{', '.join(SUPPORTED_TRIGGERS)} (CMQ and API Gateway triggers are retired).",
        )
    if type_ not in EMULATED_TRIGGERS:
        raise ApiError(
            "UnsupportedOperation.Trigger",
            f"The emulator does not emulate `{type_}` triggers (only {', '.join(EMULATED_TRIGGERS)}).",
        )
    if type_ == "timer" and not _TIMER_NAME.match(name):
        raise ApiError(
            "InvalidParameterValue.TriggerName",
            "A timer trigger's name has 1-100 letters, digits, dashes and underscores.",
        )
    if not name:
        raise ApiError("InvalidParameterValue.TriggerName", "The trigger name is empty.")
    if len(custom_argument.encode("utf-8")) > 4096:
        raise ApiError("InvalidParameterValue.CustomArgument", "CustomArgument holds at most 4 KB.")
    cron = None
    if type_ == "timer":
        try:
            cron = Cron.parse(desc)
        except CronError as exc:
            raise ApiError("InvalidParameterValue.TriggerDesc", f"The timer's cron is not valid: {exc}.") from exc
    elif desc:
        try:
            json.loads(desc)
        except ValueError as exc:
            raise ApiError("InvalidParameterValue.TriggerDesc", "An http trigger's TriggerDesc is JSON.") from exc
    return cron


def check_count(existing: list[tuple[str, str]], type_: str, name: str) -> None:
    """A new (type, name) among a function's existing (type, name) triggers."""
    if (type_, name) in existing:
        raise ApiError("ResourceInUse.Trigger", f"The trigger `{name}` already exists.")
    if sum(t == type_ for t, _ in existing) >= MAX_PER_TYPE:
        raise ApiError("LimitExceeded.Trigger", f"A function has at most {MAX_PER_TYPE} {type_} triggers.")
    if type_ == "http" and any(t == "http" for t, _ in existing):
        raise ApiError("ResourceInUse.Trigger", "The function already has a Function URL.")


def new_trigger(
    runtime: ScfRuntime,
    *,
    function: str,
    namespace: str,
    name: str,
    type_: str,
    desc: str,
    enabled: bool,
    custom_argument: str,
    now: float,
) -> Trigger:
    """Check and register a trigger; raises ApiError with the cloud's code."""
    cron = check_trigger(type_, name, desc, custom_argument)
    runtime.function(function, namespace)
    with runtime.lock:
        check_count(
            [(t.type, t.name) for t in runtime.triggers if t.function == function and t.namespace == namespace],
            type_,
            name,
        )
        trigger = Trigger(
            function, namespace, name, type_, desc, enabled, custom_argument, now, now, cron, checked_until=now
        )
        runtime.add_trigger(trigger)
    return trigger


def find_trigger(runtime: ScfRuntime, function: str, namespace: str, name: str, type_: str | None) -> Trigger:
    with runtime.lock:
        for t in runtime.triggers:
            if t.function == function and t.namespace == namespace and t.name == name and type_ in (None, t.type):
                return t
    raise ApiError("ResourceNotFound.Trigger", f"The trigger `{name}` does not exist.")
