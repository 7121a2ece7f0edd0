"""The timer trigger's envelope (status_sweep): ``{"Type": "Timer"|"timer", "TriggerName", "Time", "Message"}``,
the business payload being its Message (empty, or a JSON object of options) decoded (docs/facts.md#events).

Its own module (platform.envelopes re-exports it): the sweep's first answer imports no other trigger's model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

from ..domain.safeparse import loads_json, printable
from .events import InvalidEvent, JsonText, M, check_record, describe_error


class TimerEvent(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="allow")

    type: Literal["Timer", "timer", "TIMER"] = Field(validation_alias=AliasChoices("Type", "type"))
    trigger_name: str = Field(default="", validation_alias=AliasChoices("TriggerName", "triggerName"))
    time: str = Field(default="", validation_alias=AliasChoices("Time", "time"))
    message: JsonText = Field(default="", validation_alias=AliasChoices("Message", "message"))


class TimerEnvelope:
    """The timer trigger; the business payload is its Message (empty, or a JSON object of options)."""

    @staticmethod
    def matches(event: Mapping[str, Any]) -> bool:
        if not isinstance(event, Mapping):  # SCF hands over any JSON value an invoker sent
            return False
        kind = event.get("Type") or event.get("type")
        return isinstance(kind, str) and kind.lower() == "timer"

    @staticmethod
    def parse(event: Mapping[str, Any], model: type[M]) -> M:
        """The Message validated as `model` (an empty Message = the model's defaults).

        Raises InvalidEvent when the event is not a timer event or the Message does not validate.
        """
        check_record(event, "not a timer event")
        try:
            timer = TimerEvent.model_validate(event)
        except ValidationError as exc:
            raise InvalidEvent(f"not a timer event: {describe_error(exc)}") from exc
        text = timer.message.strip()
        try:
            data = loads_json(text) if text else {}
            return model.model_validate(data)
        except (ValueError, ValidationError) as exc:  # Unparseable is a ValueError
            name = printable(timer.trigger_name, 60) or "?"
            raise InvalidEvent(
                f"timer {name}: Message is not valid options: {describe_error(exc)}",
                timer_message=printable(text),
            ) from exc
