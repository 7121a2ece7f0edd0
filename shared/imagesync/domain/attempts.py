"""Attempts of one copy: a retry adds a replica whose `retry_of` names the FAILED or TIMED_OUT one it replaces.

The earlier attempts stay as they ended (the history); the latest attempt of each copy is the one that counts
for the replication's state. Pure functions over a replication's replicas.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .models import Replica

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def retry_id(replica_id: str) -> str:
    """The id of the attempt that retries `replica_id`: derived, not random, so that two racing retries of the same
    failed attempt insert the same row (ReplicaStore.add_replica is idempotent by id) and never two copies."""
    number = int.from_bytes(hashlib.sha256(f"{replica_id}/retry".encode()).digest()[:16], "big")
    chars = []
    for _ in range(12):
        number, rest = divmod(number, 36)
        chars.append(_ALPHABET[rest])
    return "rpl-" + "".join(chars)


def successors(replicas: Sequence[Replica]) -> dict[str, Replica]:
    """Replica id -> the attempt that retried it."""
    return {r.retry_of: r for r in replicas if r.retry_of}


def latest(replica: Replica, replicas: Sequence[Replica]) -> Replica:
    """The latest attempt of the copy `replica` is an attempt of (itself when never retried)."""
    after = successors(replicas)
    seen = {replica.id}
    while replica.id in after and after[replica.id].id not in seen:
        replica = after[replica.id]
        seen.add(replica.id)
    return replica


def attempt_numbers(replicas: Sequence[Replica]) -> dict[str, int]:
    """Replica id -> its attempt number (1 = the first attempt; a retry of attempt n is n + 1)."""
    by_id = {r.id: r for r in replicas}
    numbers: dict[str, int] = {}

    def number(r: Replica, depth: int = 0) -> int:
        if r.id in numbers:
            return numbers[r.id]
        parent = by_id.get(r.retry_of) if r.retry_of else None
        n = 1 if parent is None or depth > len(replicas) else number(parent, depth + 1) + 1
        numbers[r.id] = n
        return n

    for r in replicas:
        number(r)
    return numbers
