"""webhook: a JSON POST signed with HMAC-SHA256, or a WeCom / DingTalk / Slack robot message."""

from __future__ import annotations

from collections.abc import Callable

from ...domain.hooks import WebhookHook
from ...ports import WebhookPoster
from . import HookContext, HookError, HookOutcome, derived_id, done

EVENT = "replica.ended"


class WebhookRunner:
    """`secret_for(env_name)` resolves a spec's `secret_env` (the spec never holds the secret itself); `poster`
    sends the HTTP request (the adapter owns the timeout and which targets are allowed)."""

    def __init__(self, secret_for: Callable[[str], str | None], poster: WebhookPoster) -> None:
        self.secret_for = secret_for
        self.poster = poster

    def run(self, spec: WebhookHook, ctx: HookContext) -> HookOutcome:
        secret = ""
        if spec.secret_env:
            found = self.secret_for(spec.secret_env)
            if found is None:
                raise HookError("Webhook.NoSecret", f"the signing secret's variable {spec.secret_env} is not set")
            secret = found
        payload = ctx.message.model_dump(mode="json", exclude={"message_id"})
        # At least once: a crash after the POST and before the record re-sends; the delivery id (the same for
        # every re-send of this hook for this replica end) is what receivers dedupe on.
        status = self.poster.post(
            spec.url,
            EVENT,
            payload,
            secret=secret,
            fmt=spec.format,
            delivery_id=derived_id("whd", ctx.message.replica_id, spec.key),
        )
        return done(http_status=status, format=spec.format)
