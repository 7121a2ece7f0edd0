"""What the emulated SCF knows: functions, triggers, invocation records, queued async events."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .cron import Cron

DEFAULT_RETRY_NUM = 2  # SCF retries a failed async invocation twice by default
DEFAULT_MSG_TTL_S = 21600  # and keeps it at most 6 hours
MAX_RETRY_NUM = 2  # UpdateFunctionEventInvokeConfig: RetryNum 0-2 (LimitExceeded.RetryNum above)
MAX_MSG_TTL_S = 21600  # MsgTTL 60-21600 s (LimitExceeded.MsgTTL above)
MIN_MSG_TTL_S = 60
RETRY_DELAY_S = 60.0  # emulated seconds between two attempts of an async event ("a minute apart")
SUPPORTED_TRIGGERS = ("cos", "cls", "timer", "ckafka", "http")  # CreateTrigger.Type, scf SDK 3.1.100
EMULATED_TRIGGERS = ("timer", "http")
RUNTIMES = ("Python3.10", "Python3.9", "Python3.7", "Python3.6")


@dataclass
class FunctionSpec:
    """One deployed function. ``code_dir``/``layer_dir`` are laid out as SCF does (/var/user and /opt)."""

    name: str
    handler: str
    code_dir: Path
    layer_dir: Path
    runtime: str = "Python3.10"
    namespace: str = "default"
    memory_mb: int = 128
    timeout_s: int = 3
    environment: dict[str, str] = field(default_factory=dict)
    description: str = ""
    role: str = ""
    dead_letter: dict | None = None  # {"Type": "QUEUE"|"TOPIC", "Name": ..., "FilterType": ...}
    retry_num: int = DEFAULT_RETRY_NUM
    msg_ttl_s: int = DEFAULT_MSG_TTL_S
    region: str = "ap-guangzhou"
    layers: list[dict] = field(default_factory=list)  # [{"LayerName", "LayerVersion"}], as GetFunction shows them


@dataclass
class Trigger:
    function: str
    namespace: str
    name: str
    type: str
    desc: str  # TriggerDesc: the cron for timers, a JSON object for http
    enabled: bool = True
    custom_argument: str = ""
    added_at: float = 0.0  # emulated
    modified_at: float = 0.0
    cron: Cron | None = None
    checked_until: float = 0.0  # timers: slots up to this emulated time are done
    url: str = ""  # http: the Function URL served on a local port
    pending: str = ""  # timers: the request id of the latest firing
    skipped: int = 0  # timers: slots skipped because the previous firing had not started yet

    def info(self) -> dict:
        """As ListTriggers / CreateTrigger answer it."""
        from ..world import iso8601

        return {
            "Type": self.type,
            "TriggerName": self.name,
            "TriggerDesc": self.desc,
            "Enable": 1 if self.enabled else 0,
            "CustomArgument": self.custom_argument,
            "AddTime": iso8601(self.added_at).replace("T", " ").rstrip("Z"),
            "ModTime": iso8601(self.modified_at).replace("T", " ").rstrip("Z"),
            "Qualifier": "$DEFAULT",
            "AvailableStatus": "Available",
            "BindStatus": "on",
            "ResourceId": "",
            "TriggerAttribute": "",
            "Description": "",
            **({"TriggerUrl": self.url} if self.url else {}),
        }


@dataclass
class Invocation:
    """One attempt to run a function (a retried async event has one per attempt)."""

    request_id: str
    function: str
    invocation_type: str  # RequestResponse | Event
    source: str  # api | timer | http | eventbridge
    attempt: int = 1
    cold: bool = False
    worker_pid: int = 0
    started_at: float = 0.0  # emulated
    duration_ms: float = 0.0  # real
    outcome: str = "running"  # ok | error | timeout | killed | running
    error: dict | None = None
    result: object = None
    log: str = ""

    def public(self) -> dict:
        return {k: v for k, v in vars(self).items()}


@dataclass
class AsyncEvent:
    request_id: str
    function: str
    namespace: str
    event: object
    source: str
    first_at: float  # emulated time it was queued
    due_at: float
    attempts: int = 0
    running: bool = False
    last_error: dict | None = None
