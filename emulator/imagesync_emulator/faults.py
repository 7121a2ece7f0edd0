"""Injected faults: per-action error rates, latency, dropped connections, HTTP 5xx, lost answers; scripted ones.

Deterministic under the seed: each action has its own random stream seeded from (seed, action), so the n-th call
of an action draws the same numbers in every run regardless of what other actions do.

Two kinds of dropped connection: "drop" closes the connection BEFORE the server acts (nothing changes in the
world), "drop_after" closes it AFTER the action ran to its end (the world changed, the caller never hears how).
The second is what a network failure between Tencent's gateway and the client looks like, and the one a client
that retries blindly gets wrong.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass

KINDS = ("error", "drop", "http5xx", "drop_after")


@dataclass
class FaultRule:
    code: str | None = None
    rate: float = 0.0
    latency: float = 0.0
    drop_rate: float = 0.0
    http_status_rate: float = 0.0
    http_status: int = 502
    service: str | None = None
    drop_after_rate: float = 0.0  # the action runs, then the connection closes without an answer


@dataclass(frozen=True)
class Fault:
    """What to do to one call: ``kind`` is "error" (answer ``code``), "drop" (no answer, nothing done),
    "http5xx" (answer ``status``) or "drop_after" (do the call, then no answer)."""

    kind: str
    code: str = "InternalError"
    status: int = 502


class FaultInjector:
    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._rules: dict[str, FaultRule] = {}
        self._scripts: dict[str, deque[Fault]] = {}
        self._rngs: dict[str, random.Random] = {}

    def set_fault(self, action: str, rule: FaultRule) -> None:
        rates = (rule.rate, rule.drop_rate, rule.http_status_rate, rule.drop_after_rate)
        if not all(0.0 <= r <= 1.0 for r in rates):
            raise ValueError("fault rates are probabilities in [0, 1]")
        if rule.rate > 0 and not rule.code:
            rule.code = "InternalError"
        with self._lock:
            self._rules[action] = rule

    def script(
        self, action: str, count: int, code: str = "InternalError", kind: str = "error", status: int = 502
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind is one of {KINDS}")
        with self._lock:
            self._scripts.setdefault(action, deque()).extend(Fault(kind, code, status) for _ in range(count))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._scripts.clear()
            self._rngs.clear()

    def pick(self, service: str, action: str) -> tuple[Fault | None, float]:
        """(the fault for this call or None, extra latency in real seconds)."""
        with self._lock:
            script = self._scripts.get(action)
            if script:
                return script.popleft(), 0.0
            rule = self._rules.get(action)
            if rule is None or (rule.service is not None and rule.service != service):
                return None, 0.0
            rng = self._rngs.setdefault(action, random.Random(f"{self.seed}:{action}"))
            draw_drop, draw_http, draw_err = rng.random(), rng.random(), rng.random()
            # A fourth number only when the rule asks for lost answers: rules without drop_after_rate draw exactly
            # the sequence they drew before the fault existed, so earlier seeded tests keep their outcomes.
            draw_after = rng.random() if rule.drop_after_rate > 0 else 1.0
            if draw_drop < rule.drop_rate:
                return Fault("drop"), rule.latency
            if draw_http < rule.http_status_rate:
                return Fault("http5xx", status=rule.http_status), rule.latency
            if draw_after < rule.drop_after_rate:
                return Fault("drop_after"), rule.latency
            if draw_err < rule.rate:
                return Fault("error", rule.code or "InternalError"), rule.latency
            return None, rule.latency
