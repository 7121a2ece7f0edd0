"""The call log and per-action outcome counters (thread-safe)."""

from __future__ import annotations

import copy
import threading
import time
from collections import defaultdict


class CallLog:
    """Every API call the emulator answered (or dropped), in arrival order.

    A record: {"seq", "service", "action", "region", "account" (uin or None before authentication), "params",
    "outcome" ("ok", an error code, "ConnectionDropped" or "HTTP<status>"), "request_id", "emulated_time",
    "real_time", "answer_lost"}. ``answer_lost`` is True when the call ran (its ``outcome`` is what it did) and the
    connection was then closed without sending the answer (the "drop_after" fault).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict] = []
        self._seq = 0
        self._counters: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def record(
        self,
        *,
        service: str | None,
        action: str | None,
        region: str | None,
        account: str | None,
        params: dict,
        outcome: str,
        request_id: str,
        emulated_time: float,
        answer_lost: bool = False,
    ) -> None:
        with self._lock:
            self._seq += 1
            self._calls.append(
                {
                    "seq": self._seq,
                    "service": service,
                    "action": action,
                    "region": region,
                    "account": account,
                    "params": params,
                    "outcome": outcome,
                    "request_id": request_id,
                    "emulated_time": emulated_time,
                    "real_time": time.time(),
                    "answer_lost": answer_lost,
                }
            )
            self._counters[action or "<none>"][outcome] += 1

    def calls(self, action: str | None = None, service: str | None = None) -> list[dict]:
        with self._lock:
            return [
                copy.deepcopy(c)
                for c in self._calls
                if (action is None or c["action"] == action) and (service is None or c["service"] == service)
            ]

    def clear(self) -> None:
        """Forget the calls (the counters keep counting)."""
        with self._lock:
            self._calls.clear()

    def counters(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {a: dict(c) for a, c in self._counters.items()}
