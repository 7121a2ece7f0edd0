"""Replica states and the one table of allowed transitions (enforced by the store with compare-and-set)."""

from __future__ import annotations

from enum import Enum


class ReplicaState(str, Enum):
    PENDING = "PENDING"  # recorded; the copy is not yet accepted by SyncImages
    WAITING_SOURCE = "WAITING_SOURCE"  # the source image is not NORMAL yet, or busy with another copy
    COPYING = "COPYING"  # SyncImages accepted it; the destination image id is known
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({ReplicaState.SUCCEEDED, ReplicaState.FAILED, ReplicaState.TIMED_OUT})
ACTIVE = frozenset(set(ReplicaState) - TERMINAL)

S = ReplicaState
#: from-state -> the states it may move to. A self-transition records progress or a retry without a state change.
TRANSITIONS: dict[ReplicaState, frozenset[ReplicaState]] = {
    S.PENDING: frozenset({S.PENDING, S.WAITING_SOURCE, S.COPYING, S.FAILED, S.TIMED_OUT}),
    S.WAITING_SOURCE: frozenset({S.WAITING_SOURCE, S.PENDING, S.COPYING, S.FAILED, S.TIMED_OUT}),
    S.COPYING: frozenset({S.COPYING, S.SUCCEEDED, S.FAILED, S.TIMED_OUT}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.TIMED_OUT: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, old: ReplicaState, new: ReplicaState) -> None:
        super().__init__(f"illegal replica transition {old.value} -> {new.value}")
        self.old, self.new = old, new


def check_transition(old: ReplicaState, new: ReplicaState) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(old, new)
