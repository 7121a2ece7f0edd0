"""Use case: act once on each replica end (completion_hook). Messages arrive at least once.

The hooks of an end are the global ones (settings) followed by the replication's (from its rule or request), each
recorded per (replica, hook key) in the state table:

* a hook already ``done`` or ``skipped`` is not run again on redelivery;
* a hook whose ``on`` states do not include the end's state is recorded ``skipped``;
* a failing hook does not stop the others; after all ran, HooksFailed is raised so the queue redelivers the message
  (with its backoff). Its record says ``pending`` with the error code while retries remain, ``failed`` once
  `max_attempts` deliveries failed (when the queue dead-letters the message), and it is run again if the message
  is ever re-driven.

The whole end also runs under an idempotency record (completion:<replica id>), so a message re-sent after every
hook succeeded is answered from the stored result without touching a hook record. Its claim lasts until the
invocation's deadline (real time), so the redelivery of a killed invocation runs the end again. Deliveries that
never reach a hook (refused, crashed) are not counted here: when the queue gives up, or the link never delivers,
app.give_up records the end's open hooks failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..domain.hooks import HookSpec
from ..domain.models import CompletionMessage
from ..ports import Clock, HookRun, HookRunStore, ReplicaStore
from ..runtime.failpoints import failpoint
from ..runtime.records import emit
from .hooks import DONE, FAILED, PENDING, SKIPPED, HookContext, HookRunner, error_code
from .idempotency import Idempotent

log = logging.getLogger(__name__)


class HooksFailed(Exception):
    """Some hooks failed for this end (the others ran); raising makes the queue redeliver the message."""

    code = "Hook.Failed"

    def __init__(self, replica_id: str, failures: Mapping[str, str]) -> None:
        super().__init__(
            f"hooks failed for replica {replica_id}: " + ", ".join(f"{k} ({c})" for k, c in failures.items())
        )
        self.replica_id = replica_id
        self.failures = dict(failures)


def hooks_for(global_hooks: Sequence[HookSpec], replication_hooks: Sequence[HookSpec]) -> list[tuple[str, HookSpec]]:
    """(record key, spec) of every hook of an end: global ones first, then the replication's. A replication hook
    whose key a global one already uses is keyed "rule:<key>", so both are recorded."""
    out: list[tuple[str, HookSpec]] = []
    used: set[str] = set()
    for spec in global_hooks:
        if spec.key not in used:
            out.append((spec.key, spec))
            used.add(spec.key)
    for spec in replication_hooks:
        key = spec.key if spec.key not in used else f"rule:{spec.key}"
        if key not in used:
            out.append((key, spec))
            used.add(key)
    return out


class CompleteReplica:
    def __init__(
        self,
        idempotent: Idempotent,
        replicas: ReplicaStore,
        hook_runs: HookRunStore,
        clock: Clock,
        runners: Mapping[str, HookRunner],
        *,
        global_hooks: Sequence[HookSpec] = (),
        max_attempts: int = 5,
    ) -> None:
        self.idempotent = idempotent
        self.replicas = replicas
        self.runs = hook_runs
        self.clock = clock
        self.runners = dict(runners)
        self.global_hooks = list(global_hooks)
        self.max_attempts = max_attempts

    def __call__(self, message: CompletionMessage) -> dict[str, Any]:
        """Run the hooks for this replica end once; a failure raises HooksFailed so the queue redelivers it."""
        payload = message.model_dump(mode="json", exclude={"message_id"})
        key = f"completion:{message.replica_id}"
        result, replayed = self.idempotent.run(key, payload, lambda: self._hooks(message))
        if replayed:
            log.info("replica %s end already handled; redelivery ignored", message.replica_id)
        return {**result, "replayed": replayed}

    def _hooks(self, message: CompletionMessage) -> dict[str, Any]:
        log.info(
            "replica ended",
            extra={
                "replica_id": message.replica_id,
                "replication_id": message.replication_id,
                "state": message.state.value,
                "source_image_id": message.source_image_id,
                "destination_region": message.destination_region,
                "destination_image_id": message.destination_image_id,
                "error_code": message.error_code,
            },
        )
        replica = self.replicas.get_replica(message.replica_id)
        replication = self.replicas.get_replication(message.replication_id)
        specs = hooks_for(self.global_hooks, replication.hooks if replication is not None else [])
        ctx = HookContext(
            message=message,
            replica=replica,
            replication=replication,
            hooks=[s for _, s in specs],
            now=self.clock.now(),
        )
        records = {r.hook_key: r for r in self.runs.hook_runs([message.replica_id])[message.replica_id]}
        outcomes: dict[str, Any] = {"log": "done"}
        failures: dict[str, str] = {}
        for key, spec in specs:
            previous = records.get(key)
            if previous is not None and previous.status in (DONE, SKIPPED):
                outcomes[key] = {"status": previous.status, **(previous.result or {})}
                continue
            attempts = previous.attempts if previous is not None else 0
            if message.state.value not in spec.on:
                reason = {"reason": f"not run on {message.state.value}"}
                self._record(message, key, spec, SKIPPED, attempts, result=reason)
                outcomes[key] = {"status": SKIPPED}
                continue
            if message.account and str(spec.type) != "webhook":
                # the copy belongs to another account: hooks acting on images act with imagesync's own keys, on
                # its own images; the webhook still reports the copy (with its account)
                reason = {"reason": f"the copy is in account {message.account}"}
                self._record(message, key, spec, SKIPPED, attempts, result=reason)
                outcomes[key] = {"status": SKIPPED}
                continue
            runner = self.runners.get(str(spec.type))
            try:
                if runner is None:
                    raise LookupError(f"no runner for hook type {spec.type!r}")
                outcome = runner.run(spec, ctx)
            except Exception as exc:  # each hook fails alone; the others still run
                code = error_code(exc)
                attempts += 1
                status = FAILED if attempts >= self.max_attempts else PENDING
                log.warning("hook %s failed for %s (attempt %d): %s", key, message.replica_id, attempts, exc)
                emit(
                    "hook_failed",
                    logging.ERROR if status == FAILED else logging.WARNING,
                    f"hook {key} failed",
                    replication=message.replication_id,
                    replica=message.replica_id,
                    region=message.destination_region,
                    state=message.state.value,
                    hook=key,
                    code=code,
                    error=str(exc),
                    attempts=attempts,
                    final=status == FAILED,
                )
                self._record(message, key, spec, status, attempts, error=(code, str(exc)))
                outcomes[key] = {"status": status, "error_code": code}
                failures[key] = code
                continue
            failpoint("inside_hook")  # chaos tests: the hook's effect is done, its record not written
            self._record(message, key, spec, outcome.status, attempts + 1, result=outcome.result)
            outcomes[key] = {"status": outcome.status, **outcome.result}
        if failures:
            raise HooksFailed(message.replica_id, failures)
        return {"replica_id": message.replica_id, "hooks": outcomes}

    def _record(
        self,
        message: CompletionMessage,
        key: str,
        spec: HookSpec,
        status: str,
        attempts: int,
        *,
        result: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        self.runs.save_hook_run(
            HookRun(
                replica_id=message.replica_id,
                hook_key=key,
                replication_id=message.replication_id,
                hook_type=str(spec.type),
                status=status,
                attempts=attempts,
                updated_at=self.clock.now(),
                error_code=error[0] if error else None,
                error_message=error[1][:2000] if error else None,
                result=result,
            )
        )
