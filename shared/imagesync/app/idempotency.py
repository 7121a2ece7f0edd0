"""Run a piece of work at most once per key, on the state table (powertools' idempotency design, without its
DynamoDB-bound package, which imports boto3: docs/facts.md#F-SCF-8)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..domain import errors
from ..ports import Clock, IdempotencyStore
from ..runtime.deadline import budget

#: the claim of a caller with no invocation deadline: SCF's longest timeout (event functions), 900 s
NO_DEADLINE_SECONDS = 900.0


def payload_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class Idempotent:
    """Records on the REAL clock (`clock` is the wall clock in production wiring): a claim in progress says "a
    process is at work", and it must run out when that process can no longer be (see runtime.deadline)."""

    def __init__(self, records: IdempotencyStore, clock: Clock, *, expires_seconds: int = 86400 * 7) -> None:
        self.records = records
        self.clock = clock
        self.expires = timedelta(seconds=expires_seconds)

    def run(
        self,
        key: str,
        payload: Any,
        work: Callable[[], dict[str, Any]],
        *,
        in_progress_seconds: float | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """(result, replayed): `work`'s result, or the stored result of the first run with this key.

        The claim lasts `in_progress_seconds`, by default until the invocation's deadline (NO_DEADLINE_SECONDS
        without one): a redelivery after a crash is refused only while the crashed invocation could still be
        running. Raises IdempotencyConflict when the key was used with another payload, IdempotencyInProgress
        while another invocation runs it (its deadline not yet passed).
        """
        digest = payload_hash(payload)
        now = self.clock.now()
        seconds = budget(NO_DEADLINE_SECONDS) if in_progress_seconds is None else in_progress_seconds
        claim = now + timedelta(seconds=seconds)
        existing = self.records.idempotency_claim(
            key, digest, now=now, expires_at=now + self.expires, in_progress_until=claim
        )
        if existing is not None:
            if existing.payload_hash != digest:
                raise errors.IdempotencyConflict(f"idempotency key {key!r} was used with another payload")
            if existing.status == "COMPLETED" and existing.result is not None:
                return existing.result, True
            raise errors.IdempotencyInProgress(f"{key!r} is being processed by another invocation")
        try:
            result = work()
        except BaseException:
            self.records.idempotency_release(key, claimed_until=claim)
            raise
        # conditional on our claim: if it ran out and another invocation took the key over, its record is its own
        self.records.idempotency_complete(key, result, expires_at=self.clock.now() + self.expires, claimed_until=claim)
        return result, False
