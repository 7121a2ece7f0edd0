"""What may run when a replica ends: the hook specs (from rules or global settings). Pure models.

Runners live in imagesync.app.hooks; each run is recorded per replica and hook (done, failed with code, skipped).
Secrets never appear in a spec: a webhook names the environment variable that holds its signing secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EndState = Literal["SUCCEEDED", "FAILED", "TIMED_OUT"]
END_STATES: tuple[EndState, ...] = ("SUCCEEDED", "FAILED", "TIMED_OUT")


def _on_success() -> list[EndState]:
    return ["SUCCEEDED"]


def _on_every_end() -> list[EndState]:
    return list(END_STATES)


class _Hook(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    #: the replica end states this hook runs on (tag/share/encrypt/launch/retention make sense on SUCCEEDED only)
    on: list[EndState] = Field(default_factory=_on_success)
    #: a stable name, unique within the replication's hooks (default: the type); records are keyed by it
    name: str | None = None

    if TYPE_CHECKING:  # every concrete hook declares `type` as its Literal discriminator
        type: str

    @property
    def key(self) -> str:
        return self.name or str(self.type)


class WebhookHook(_Hook):
    type: Literal["webhook"] = "webhook"
    url: str
    secret_env: str | None = Field(default=None, description="env var holding the HMAC-SHA256 signing secret")
    format: Literal["json", "wecom", "dingtalk", "slack"] = "json"
    on: list[EndState] = Field(default_factory=_on_every_end)


class TagHook(_Hook):
    type: Literal["tag"] = "tag"
    copy_source_tags: bool = True
    provenance: bool = Field(default=True, description="imagesync:source-image, :source-region, :replication-id")
    extra: dict[str, str] = Field(default_factory=dict)


class ShareHook(_Hook):
    type: Literal["share"] = "share"
    account_ids: list[str] = Field(min_length=1, max_length=500)


class EncryptHook(_Hook):
    type: Literal["encrypt"] = "encrypt"
    #: destination region -> KMS key id; a region not listed gets no encrypted copy
    kms_key_ids: dict[str, str] = Field(min_length=1)


class LaunchHook(_Hook):
    type: Literal["launch"] = "launch"
    #: RunInstances parameters (Placement, InstanceType, VirtualPrivateCloud, ...), ImageId filled in per copy;
    #: a "regions" list limits where it runs
    spec: dict[str, Any] = Field(default_factory=dict)
    regions: list[str] | None = None


class RetentionHook(_Hook):
    type: Literal["retention"] = "retention"
    keep: int = Field(ge=1, description="newest copies kept per rule (or per family) and region")
    dry_run: bool = True
    #: "rule": copies of the same rule (or, without one, of the same name); "family": imagesync's copies in the
    #: region with the source's ImageFamily
    per: Literal["rule", "family"] = "rule"


class FamilyHook(_Hook):
    """The source's ImageFamily (and ImageDeprecated, when the source is deprecated) set on the copy."""

    type: Literal["family"] = "family"


HookSpec = Annotated[
    WebhookHook | TagHook | ShareHook | EncryptHook | LaunchHook | RetentionHook | FamilyHook,
    Field(discriminator="type"),
]
