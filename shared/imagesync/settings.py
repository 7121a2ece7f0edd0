"""Settings, validated once on entry (pydantic-settings, prefix IMAGESYNC_).

Credentials are NOT settings: SCF rotates the function role's temporary keys, so they are found per invocation, by
the first cloud call (see imagesync.adapters.credentials.CredentialChain).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from .domain.hooks import HookSpec

#: the completion links (IMAGESYNC_QUEUE)
QUEUES = ("local", "scf-async", "eventbridge")


class Settings(BaseSettings):
    # populate_by_name: Settings(region=...) works too, not only the env aliases (a silent no-op otherwise)
    model_config = SettingsConfigDict(env_prefix="IMAGESYNC_", extra="ignore", populate_by_name=True)

    tencent_endpoint: str = Field(
        default="",
        description="Tencent Cloud API endpoint, e.g. http://127.0.0.1:9000 for the emulator; empty = the real cloud",
    )
    region: str = Field(
        default="ap-guangzhou",
        validation_alias=AliasChoices("IMAGESYNC_REGION", "TENCENTCLOUD_REGION"),
        description="home region (region service calls, default source region); SCF sets TENCENTCLOUD_REGION",
    )
    database_url: str = Field(
        default="sqlite:///.imagesync/state.db",
        description="SQLAlchemy URL of the state table (sqlite, mysql+pymysql, postgresql+psycopg)",
    )
    auto_migrate: bool | None = Field(
        default=None,
        description="create/upgrade the schema on start; default: SQLite only (production: `imagesync db upgrade`)",
    )
    queue: str = Field(
        default="local",
        description="the completion link: local (one machine) | scf-async (Invoke completion_hook asynchronously) | "
        "eventbridge (PutEvents to IMAGESYNC_EVENT_BUS_ID)",
    )
    queue_path: str = Field(default=".imagesync/queue.db", description="SQLite file of the local queue")
    queue_max_attempts: int = Field(default=5, ge=1, description="deliveries before a message is dead-lettered")
    completion_function: str = Field(
        default="", description="queue=scf-async: the name of the completion_hook function to invoke (no default)"
    )
    completion_namespace: str = Field(
        default="default", description="queue=scf-async: that function's SCF namespace (SCF's own default: default)"
    )
    completion_qualifier: str = Field(
        default="", description="queue=scf-async: the version or alias to invoke; empty = SCF's default ($LATEST)"
    )
    completion_batch_max: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="queue=scf-async: completion messages per invocation at most (their hooks share one timeout)",
    )
    event_bus_id: str = Field(default="", description="queue=eventbridge: the custom bus's EventBusId (no default)")
    completion_deadline_seconds: int = Field(
        default=25200,
        ge=0,
        description="the sweep records a replica end's hooks failed (Hook.Undelivered) when they are still open this "
        "long after its completion was published: longer than the link redelivers (SCF async MsgTTL, 6 h); 0 = off",
    )

    size_cap_gb: int = Field(default=50, ge=0, description="largest source image copied, in GB; 0 = no cap")
    cross_border_allowed: bool = Field(
        default=False, description="the account has Tencent's approval to copy between mainland China and elsewhere"
    )
    max_images_per_request: int = Field(default=10, ge=1)
    max_regions_per_request: int = Field(default=16, ge=1)
    copy_timeout_seconds: int = Field(default=7200, ge=60, description="a copy not ended by then is TIMED_OUT")
    first_check_seconds: int = Field(
        default=60,
        ge=1,
        description="the earliest the sweep first looks at a new copy: 0.9 x the 10th percentile of the last 100 "
        "copies' durations (3 days, the destination region's when it has 5), at least this and at most "
        "IMAGESYNC_MAX_CHECK_SECONDS; this alone while fewer than 5 copies ended",
    )
    recheck_seconds: int = Field(
        default=10,
        ge=1,
        description="the shortest wait between two looks at a copy in flight (and before the sweep looks again at "
        "an outbox it could not publish)",
    )
    retry_seconds: int = Field(default=30, ge=1, description="when a copy refused for a retryable reason is retried")
    lease_seconds: int = Field(
        default=120,
        ge=5,
        description="how long a sweep with no invocation deadline (the CLI) runs and holds the sweepers' lease; an "
        "SCF invocation holds it until its own deadline",
    )
    sweep_batch: int = Field(
        default=1000, ge=1, description="a sweep reads up to 20 times this many due replicas (the oldest due first)"
    )
    sync_rate_per_second: float = Field(default=8.0, gt=0, description="SyncImages calls per second (API limit 10)")
    describe_rate_per_second: float = Field(default=30.0, gt=0, description="DescribeImages calls/s (API limit 40)")

    webhook_url: str = Field(default="", description="POST each replica end here (JSON, signed); empty = none")
    webhook_secret: str = Field(default="", description="HMAC-SHA256 key for the X-Imagesync-Signature header")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_allow_private: bool = Field(
        default=False,
        description="allow http and private, loopback or link-local webhook targets (local receivers, tests only)",
    )

    # hooks (issue 6): global ones run on every replica end, after the webhook above and before a rule's own
    # NoDecode: read as text, so an empty value means none (serverless.yml passes ${env:IMAGESYNC_HOOKS} as is).
    # Each item a HookSpec, validated on entry by _hook_specs (list[Any] here: the hook models' schema is built only
    # when there are hooks, which an empty IMAGESYNC_HOOKS never pays for: docs/benchmarks.md, cold start)
    hooks: Annotated[list[Any], NoDecode] = Field(
        default_factory=list,
        description="JSON list of hook specs run on every replica end (see domain.hooks); empty = none",
    )
    uin: str = Field(
        default="",
        validation_alias=AliasChoices("IMAGESYNC_UIN", "TENCENTCLOUD_UIN"),
        description="the account's uin: the tag service names images by it; SCF sets TENCENTCLOUD_UIN",
    )
    max_check_seconds: int = Field(
        default=600,
        ge=1,
        description="longest wait between two looks at a copy in flight (SyncPercent-based ETA); also its look "
        "budget: never more looks by any moment than one at the first look and one every this many seconds since "
        "would have made by its next, and only those looks until recent copies say looks ahead of them pay (their "
        "looks ahead rarely missed, or their SyncPercent kept one pace)",
    )

    # the sweep's schedule (issue 15): status_sweep's timers follow the work (app.schedule, adapters.sweep_timer)
    scheduler: Literal["none", "scf-timer"] = Field(
        default="none",
        description="none: nothing arms the sweep (one machine: `imagesync sweep`); scf-timer: copy_request and "
        "status_sweep arm status_sweep's timer trigger at the earliest due check and disarm it at rest",
    )
    sweep_function: str = Field(
        default="", description="scheduler=scf-timer: status_sweep's function name (no default)"
    )
    sweep_namespace: str = Field(default="default", description="scheduler=scf-timer: its SCF namespace")
    sweep_timer: str = Field(
        default="", description="scheduler=scf-timer: the timer trigger re-pointed at each next check (no default)"
    )
    sweep_safety_timer: str = Field(
        default="", description="scheduler=scf-timer: the hourly timer trigger on while anything is in flight"
    )
    schedule_lead_seconds: int = Field(
        default=5, ge=1, le=300, description="the sweep's timer is never armed closer to now than this"
    )

    settle_seconds: int = Field(
        default=45,
        ge=0,
        description="a copy whose end the SyncPercent pins to a window this narrow is looked at once, "
        "at its latest point; 0 = off (a look every IMAGESYNC_RECHECK_SECONDS near the end, as far as the look budget "
        "allows: the end is then seen up to IMAGESYNC_MAX_CHECK_SECONDS late)",
    )
    look_ahead: Literal["learn", "always", "never"] = Field(
        default="learn",
        description="looks ahead of the look budget's slots (one at the end a steady SyncPercent pins: the end seen "
        "within seconds): learn = only once recent copies say they pay (none for a world's first copies, none where "
        "copies stall, jump or change pace: ends then seen up to IMAGESYNC_MAX_CHECK_SECONDS late, never a look "
        "over the budget); always = on every copy (at most one look over the budget on a copy that stalls); "
        "never = only the slots",
    )
    ride_along_seconds: int = Field(
        default=0, ge=0, description="a sweep also checks the copies due within this many seconds (shared pages)"
    )

    # replication rules (issue 6): a file, or inline JSON for SCF (env vars are the easy way to ship it there)
    rules_file: str = Field(default="", description="YAML or JSON rule file; empty = none")
    rules_json: str = Field(default="", description="the rules as inline JSON (SCF); not together with rules_file")
    reconcile_limit: int = Field(default=20, ge=0, description="copies the reconcile pass requests per run; 0 = off")
    reconcile_interval_seconds: int = Field(
        default=600, ge=0, description="the reconcile pass runs once per window (DescribeImages costs); 0 = every sweep"
    )
    event_image_wait_seconds: int = Field(
        default=600, ge=0, description="a CreateImage event whose image is not visible yet is retried this long"
    )

    # copy_request's HTTP API: closed unless a credential is configured or api_auth=none is set on purpose
    api_token: SecretStr = Field(default=SecretStr(""), description="`Authorization: Bearer <token>`; empty = off")
    api_hmac_secret: SecretStr = Field(
        default=SecretStr(""), description="key of the X-Imagesync-Signature request signature; empty = off"
    )
    api_auth: Literal["required", "none"] = Field(
        default="required", description="`none` opens every route without credentials (local use only)"
    )
    api_max_body_bytes: int = Field(
        default=65536, ge=1, le=6 * 1024 * 1024, description="larger bodies get 413 (SCF's sync limit is 6 MB)"
    )

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str) -> str:
        value = value.strip()
        if value in ("tdmq-queue", "tdmq-topic"):
            raise ValueError(
                f"{value} was removed: SCF no longer has a CMQ trigger, so nothing would deliver to completion_hook; "
                "use scf-async (with IMAGESYNC_COMPLETION_FUNCTION) or eventbridge (docs/deploy.md)"
            )
        if value not in QUEUES:
            raise ValueError(f"unknown completion link {value!r}: one of {', '.join(QUEUES)}")
        return value

    @field_validator("hooks", mode="before")
    @classmethod
    def _hooks(cls, value: Any) -> Any:
        if not isinstance(value, (str, bytes)):
            return value
        if not value.strip():
            return []
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ValueError(f"IMAGESYNC_HOOKS is not JSON ({exc}): a JSON list of hook specs, or empty") from exc

    @field_validator("hooks")
    @classmethod
    def _hook_specs(cls, value: list[Any]) -> list[HookSpec]:
        # a bad spec fails here as before: pydantic reports the adapter's errors under `hooks` (hooks.0.share...)
        return _hook_specs_adapter().validate_python(value) if value else []

    @field_validator("tencent_endpoint")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @property
    def migrate_on_start(self) -> bool:
        if self.auto_migrate is not None:
            return self.auto_migrate
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def _hook_specs_adapter() -> TypeAdapter[list[HookSpec]]:
    from .domain.hooks import HookSpec

    return TypeAdapter(list[HookSpec])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings (environment read once per container)."""
    return Settings()
