"""Use case: the hooks of a replica end whose completion message will not be delivered again are recorded
``failed``, with the reason, so that `imagesync status` and GET /replications/{id} show them (never an end that
looks finished with its hooks silently missing).

Two ways a message stops being delivered while hooks of its end are still open:

* the queue gives up on it: the local queue dead-letters it after IMAGESYNC_QUEUE_MAX_ATTEMPTS deliveries, failed
  or crashed (`dead_lettered`: code Hook.DeadLettered, with the queue's last error);
* the link gives up without telling the function: SCF's async invocation retries RetryNum times and keeps an event
  up to MsgTTL, then drops it (or hands it to a dead-letter queue the function never reads), and an invocation
  cannot tell its last attempt. The sweep's backstop (`undelivered`) records Hook.Undelivered for every end
  published more than the link's redelivery window ago whose hooks are still open, or have no record at all while
  hooks are configured.

Either is recorded once (a hook already done, skipped or failed is left as it is). It is not final: a message
re-driven later (`LocalQueue.requeue_dead`, a replayed event) runs the hook again, as any redelivery would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..domain.hooks import HookSpec
from ..domain.models import CompletionMessage
from ..domain.safeparse import loads_json
from ..ports import Clock, Delivery, HookRun, HookRunStore, OutboxStore, ReplicaStore
from ..runtime.records import emit
from .complete import hooks_for
from .hooks import DONE, FAILED, SKIPPED

log = logging.getLogger(__name__)

DEAD_LETTERED = "Hook.DeadLettered"
UNDELIVERED = "Hook.Undelivered"
#: how far behind its window the backstop looks for ends: it runs every sweep (every minute), so a day is ample,
#: and it bounds the outbox range each sweep reads (one day of ends, on the (sent_at, created_at) index)
HORIZON = timedelta(days=1)
#: hook records no give-up changes
SETTLED = (DONE, SKIPPED, FAILED)


class GiveUpHooks:
    def __init__(
        self,
        replicas: ReplicaStore,
        hook_runs: HookRunStore,
        outbox: OutboxStore,
        clock: Clock,
        *,
        global_hooks: Sequence[HookSpec] = (),
    ) -> None:
        """`clock`: the real clock (the outbox's sent_at and a queue's retries are real time)."""
        self.replicas = replicas
        self.runs = hook_runs
        self.outbox = outbox
        self.clock = clock
        self.global_hooks = list(global_hooks)

    def give_up(self, message: CompletionMessage, code: str, reason: str) -> list[str]:
        """Record every hook of this end not yet done, skipped or failed as failed with `code` and `reason`;
        a hook its end's state does not run is recorded skipped. Returns the keys recorded failed."""
        replication = self.replicas.get_replication(message.replication_id)
        specs = hooks_for(self.global_hooks, replication.hooks if replication is not None else [])
        records = {r.hook_key: r for r in self.runs.hook_runs([message.replica_id])[message.replica_id]}
        now = self.clock.now()
        to_fail: list[tuple[str, str]] = []
        for key, spec in specs:
            if message.state.value in spec.on:
                to_fail.append((key, str(spec.type)))
            elif key not in records:
                self.runs.save_hook_run(
                    HookRun(
                        replica_id=message.replica_id,
                        hook_key=key,
                        replication_id=message.replication_id,
                        hook_type=str(spec.type),
                        status=SKIPPED,
                        attempts=0,
                        updated_at=now,
                        result={"reason": f"not run on {message.state.value}"},
                    )
                )
        # records of hooks no longer configured, still open: they will not run either
        keys = {k for k, _ in to_fail}
        to_fail += [
            (r.hook_key, r.hook_type) for r in records.values() if r.hook_key not in keys and r.status not in SETTLED
        ]
        to_fail = [(k, t) for k, t in to_fail if k not in records or records[k].status not in SETTLED]
        if not to_fail:
            return []
        failed = self.runs.give_up_hooks(
            message.replica_id, message.replication_id, to_fail, error_code=code, error_message=reason, at=now
        )
        if failed:
            log.error(
                "hooks given up",
                extra={"replica_id": message.replica_id, "hooks": failed, "error_code": code, "reason": reason},
            )
            for key in failed:  # the operator's record of each (runtime.records: event hook_given_up)
                emit(
                    "hook_given_up",
                    logging.ERROR,
                    f"hook {key} given up",
                    replication=message.replication_id,
                    replica=message.replica_id,
                    region=message.destination_region,
                    state=message.state.value,
                    hook=key,
                    code=code,
                    error=reason,
                )
        return failed

    def dead_lettered(self, dead: Sequence[Delivery]) -> dict[str, Any]:
        """The queue's dead letters: each end's open hooks recorded failed (Hook.DeadLettered, the last error).
        Returns replica id -> the hook keys recorded. Cheap to repeat: ends already settled are read, not written."""
        messages: list[tuple[CompletionMessage, Delivery]] = []
        for delivery in dead:
            try:  # the bounded loader, as for every body a queue hands over (domain.safeparse)
                messages.append((CompletionMessage.model_validate(loads_json(delivery.body)), delivery))
            except ValueError:  # ValidationError and Unparseable are ValueErrors
                continue  # not a completion message: there is no end to show it on (the queue keeps it)
        recorded: dict[str, list[str]] = {}
        for message, delivery in messages:
            error = delivery.attributes.get("last_error") or "unknown"
            reason = f"completion message dead-lettered after {delivery.attempts} deliveries; last error: {error}"
            failed = self.give_up(message, DEAD_LETTERED, reason[:2000])
            if failed:
                recorded[message.replica_id] = failed
        return recorded

    def undelivered(self, *, window_seconds: float, limit: int = 100) -> int:
        """The backstop: ends published more than `window_seconds` ago with hooks still open (or none recorded
        while hooks are configured) get them recorded failed (Hook.Undelivered). Returns how many ends."""
        now = self.clock.now()
        before = now - timedelta(seconds=window_seconds)
        ends = self.outbox.undelivered_ends(
            sent_before=before, sent_after=before - HORIZON, hooks_everywhere=bool(self.global_hooks), limit=limit
        )
        reason = f"the completion was not delivered within {window_seconds:g} s of its publication"
        for message in ends:
            self.give_up(message, UNDELIVERED, reason)
        return len(ends)
