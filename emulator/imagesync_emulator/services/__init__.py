"""The registry of emulated services: service name -> version, actions, rate limits.

An action handler has the signature ``handler(ctx: CallContext, p: Params) -> dict`` and returns the Response
members except RequestId; it raises ApiError for an error answer. Handlers run with ``ctx.world.lock`` held.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..accounts import Account
from ..params import Params
from ..world import World

DEFAULT_RATE = 20  # requests per second per account and action, unless the action says otherwise


@dataclass
class CallContext:
    """What a handler knows about the call."""

    world: World
    account: Account
    region: str | None
    now: float  # emulated epoch seconds
    request_id: str
    service: str
    action: str


Handler = Callable[[CallContext, Params], dict]


@dataclass
class Action:
    name: str
    handler: Handler
    params: frozenset[str]
    rate: int = DEFAULT_RATE
    needs_region: bool = True
    audited: bool = False  # CloudAudit records every call (see audit.py); drained by admin.drain_audit_events()
    locked: bool = True  # run under the world lock (False: the handler takes it itself, e.g. scf Invoke)


@dataclass
class Service:
    """One product API at one version."""

    name: str
    version: str
    actions: dict[str, Action] = field(default_factory=dict)

    def action(
        self,
        name: str,
        params: set[str] | frozenset[str],
        *,
        rate: int = DEFAULT_RATE,
        needs_region: bool = True,
        audited: bool = False,
        locked: bool = True,
    ) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.actions[name] = Action(name, fn, frozenset(params), rate, needs_region, audited, locked)
            return fn

        return register


def all_services() -> dict[str, Service]:
    """Every emulated service, by its signing name (the credential scope's service)."""
    from . import cbs, cvm, eb, region, scf, sts, tag, tdmq

    return {
        s.name: s
        for s in (
            cvm.SERVICE,
            tag.SERVICE,
            tdmq.SERVICE,
            eb.SERVICE,
            region.SERVICE,
            scf.SERVICE,
            sts.SERVICE,
            cbs.SERVICE,
        )
    }
