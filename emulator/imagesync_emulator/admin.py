"""The admin handle: observe and steer the emulated cloud (call log, clock, faults, world state).

The same methods are served over HTTP: ``GET|POST /_emulator/<method>`` with keyword arguments as a JSON object
body (or query parameters), answering ``{"result": ...}`` (HTTP 200) or ``{"error": "..."}`` (HTTP 400/404).
"""

from __future__ import annotations

import inspect
from typing import Any

from . import progress
from .calllog import CallLog
from .clock import Clock
from .faults import FaultInjector, FaultRule
from .ratelimit import RateLimiter
from .scf.runtime import ScfRuntime
from .world import TRANSITIONAL, Image, World

PUBLIC_METHODS = (
    "calls",
    "clear_calls",
    "counters",
    "dump",
    "image",
    "now",
    "advance",
    "set_time_scale",
    "set_fault",
    "script_fault",
    "clear_faults",
    "set_rate_limits",
    "set_copy_failure_rate",
    "set_copy_duration",
    "approve_cross_border",
    "accounts",
    "temporary_credentials",
    "drain_messages",
    "drain_events",
    "add_image",
    "set_image_state",
    "drain_audit_events",
    "set_audit_include_image_id",
    "set_image_quota",
    "set_progress_curve",
    "add_role",
    "roles",
    "snapshots",
    "scf_functions",
    "scf_invocations",
    "scf_workers",
    "scf_kill_worker",
    "scf_dead_letters",
    "scf_pending",
)


class Admin:
    def __init__(
        self, world: World, calllog: CallLog, faults: FaultInjector, limiter: RateLimiter, scf: ScfRuntime | None = None
    ) -> None:
        self._scf = scf
        self._world = world
        self._log = calllog
        self._faults = faults
        self._limiter = limiter

    @property
    def _clock(self) -> Clock:
        return self._world.clock

    # ---- call log ------------------------------------------------------------------------------------------
    def calls(self, action: str | None = None, service: str | None = None) -> list[dict]:
        """The call log, oldest first, optionally only one action and/or service."""
        return self._log.calls(action, service)

    def clear_calls(self) -> None:
        self._log.clear()

    def counters(self) -> dict[str, dict[str, int]]:
        """Per action: {"ok": n, "<ErrorCode>": n, ...} since the emulator started."""
        return self._log.counters()

    # ---- world state ---------------------------------------------------------------------------------------
    def dump(self) -> dict:
        with self._world.lock:
            return self._world.dump()

    def image(self, image_id: str) -> dict | None:
        """The image as DescribeImages shows it to its owner now, plus Region, OwnerUin and SharedWith."""
        with self._world.lock:
            img = self._world.find_image(image_id)
            return None if img is None else self._world.admin_image_view(img, self._clock.now())

    def add_image(self, region: str, **fields: Any) -> str:
        """Seed one image; returns its id. Fields: image_id, owner (uin or account name; default "default"),
        name, image_type, size, state, tags (dict), shared_with (list), description, platform, os_name,
        encrypted, ready_after (emulated seconds until a CREATING/SYNCING image becomes final_state)."""
        with self._world.lock:
            w = self._world
            if not w.regions.exists(region):
                raise ValueError(f"unknown region {region!r}")
            owner_ref = str(fields.pop("owner", "default"))
            image_type = fields.pop("image_type", "PRIVATE_IMAGE")
            owner = None
            if image_type != "PUBLIC_IMAGE":
                acct = w.accounts.get(owner_ref) or w.account_by_name(owner_ref)
                if acct is None:
                    raise ValueError(f"unknown account {owner_ref!r}")
                owner = acct.uin
            image_id = str(fields.pop("image_id", None) or w.new_id("img-"))
            if w.find_image(image_id, region) is not None:
                raise ValueError(f"image {image_id} already exists in {region}")
            tags = fields.pop("tags", None) or {}
            shared = fields.pop("shared_with", None) or []
            ready_after = fields.pop("ready_after", None)
            final_state = fields.pop("final_state", "NORMAL")
            now = self._clock.now()
            img = Image(
                image_id=image_id,
                region=region,
                owner=owner,
                name=str(fields.pop("name", image_id)),
                image_type=image_type,
                size=int(fields.pop("size", 20)),
                created_at=float(fields.pop("created_at", now)),
                **fields,
            )
            if not img.snapshot_ids:
                img.snapshot_ids = [w.new_id("snap-")]
            if ready_after is not None and img.state in TRANSITIONAL:
                img.started_at, img.ready_at, img.final_state = now, now + float(ready_after), final_state
            w.add_image(img)
            for ref in shared:
                acct = w.accounts.get(str(ref)) or w.account_by_name(str(ref))
                if acct is None:
                    raise ValueError(f"unknown account {ref!r}")
                img.shared_with[acct.uin] = now
            if tags and owner:
                w.tags[w.resource_name(img)] = {str(k): str(v) for k, v in tags.items()}
            return image_id

    def set_image_state(self, image_id: str, state: str) -> None:
        """Force an image (every region holding this id) into ``state`` now, ending any transition."""
        with self._world.lock:
            found = [img for img in self._world.images.values() if img.image_id == image_id]
            if not found:
                raise KeyError(f"no image {image_id}")
            for img in found:
                self._world.settle(img, state)

    def accounts(self) -> list[dict]:
        with self._world.lock:
            return [a.public() for a in self._world.accounts.values()]

    def temporary_credentials(self, uin: str | None = None) -> dict:
        """A new temporary key (needs X-TC-Token) for ``uin`` (default: the default account)."""
        with self._world.lock:
            acct = (
                self._world.accounts.get(uin)
                if uin
                else (self._world.account_by_name("default") or next(iter(self._world.accounts.values())))
            )
            if acct is None:
                raise KeyError(f"no account {uin}")
        return self._world.credentials.issue_temporary(acct)

    def approve_cross_border(self, uin: str, approved: bool = True) -> None:
        with self._world.lock:
            acct = self._world.accounts.get(str(uin)) or self._world.account_by_name(str(uin))
            if acct is None:
                raise KeyError(f"no account {uin}")
            acct.cross_border_approved = bool(approved)

    def drain_messages(self, name: str | None = None) -> list[dict]:
        """Remove and return CMQ messages (all, or those of queue/topic ``name``)."""
        with self._world.lock:
            out = self._world.outbox
            taken = [m for m in out if name is None or name in (m.get("queue"), m.get("topic"))]
            self._world.outbox = [m for m in out if m not in taken]
            return taken

    def drain_events(self) -> list[dict]:
        with self._world.lock:
            taken, self._world.events = self._world.events, []
            return taken

    def drain_audit_events(self) -> list[dict]:
        """Remove and return the CloudAudit CloudEvents recorded so far (oldest first): one per CreateImage call
        the server processed, successful or not, shaped as EventBridge delivers them to a function."""
        with self._world.lock:
            taken, self._world.audit_events = self._world.audit_events, []
            return taken

    def set_audit_include_image_id(self, enabled: bool) -> None:
        """Whether CreateImage audit records name the new image in ``resources``/``resourceName`` (default: no,
        as the real record carries no response)."""
        with self._world.lock:
            self._world.settings.audit_include_image_id = bool(enabled)

    def set_image_quota(self, quota: int, region: str | None = None, uin: str | None = None) -> None:
        """Set the custom image quota of account ``uin`` (uin or name; default: the default account): in
        ``region`` only, or with ``region=None`` in every region (dropping per-region settings). DescribeImageQuota
        reports it; CreateImage and SyncImages refuse with ImageQuotaLimitExceeded past it. Images already over
        it stay."""
        quota = int(quota)
        if quota < 0:
            raise ValueError("a quota is >= 0")
        with self._world.lock:
            w = self._world
            if region is not None and not w.regions.exists(region):
                raise ValueError(f"unknown region {region!r}")
            acct = (
                (w.accounts.get(str(uin)) or w.account_by_name(str(uin)))
                if uin
                else (w.account_by_name("default") or next(iter(w.accounts.values())))
            )
            if acct is None:
                raise KeyError(f"no account {uin}")
            if region is None:
                acct.image_quota = quota
                acct.region_image_quotas.clear()
            else:
                acct.region_image_quotas[region] = quota

    def set_progress_curve(self, curve: str, image_id: str | None = None) -> None:
        """How SyncPercent rises (progress.py; docs/emulator.md "Progress curves"): with ``image_id``, for that copy
        (every region holding the id; it may be in flight: its percent follows the new curve from now on); without,
        for every copy started from now on (``mixed``: each draws a curve, deterministic under the seed). A curve
        never moves a copy's end."""
        progress.check_name(curve)
        with self._world.lock:
            if image_id is None:
                self._world.settings.progress_curve = curve
                return
            copies = [img for img in self._world.images.values() if img.image_id == image_id and img.is_copy]
            if not copies:
                raise KeyError(f"no copy {image_id} (a curve shapes the SyncPercent of copies only)")
            for img in copies:
                img.progress_curve = progress.resolve(curve, self._world.progress_rng)

    def add_role(self, uin: str, name: str, trusted: list[str] | None = None) -> dict:
        """Create role ``name`` in account ``uin`` (uin or account name), or replace its trust policy: the accounts
        (uins or names) in ``trusted`` may assume it with sts AssumeRole. Returns the role (arn, role_id...)."""
        with self._world.lock:
            w = self._world
            owner = self._account(uin)
            trusted_uins = [self._account(t).uin for t in trusted or []]
            role = w.add_role(owner.uin, str(name), trusted_uins)
            return {
                "uin": role.uin,
                "name": role.name,
                "role_id": role.role_id,
                "arn": role.arn,
                "trusted": list(role.trusted),
            }

    def roles(self) -> list[dict]:
        """Every role: uin, name, role_id, arn, trusted (uins)."""
        with self._world.lock:
            return self._world.dump()["roles"]

    def snapshots(self, uin: str | None = None, region: str | None = None) -> list[dict]:
        """The snapshots images are made of (all, or one account's / one region's): snapshot_id, region, owner,
        size, created_at, disk_usage, image_ids (empty: the images are gone and the snapshot was left behind)."""
        with self._world.lock:
            owner = self._account(uin).uin if uin else None
            return [
                {**vars(s), "image_ids": list(s.image_ids)}
                for s in self._world.snapshots.values()
                if (owner is None or s.owner == owner) and (region is None or s.region == region)
            ]

    def _account(self, ref: str) -> Any:
        acct = self._world.accounts.get(str(ref)) or self._world.account_by_name(str(ref))
        if acct is None:
            raise KeyError(f"no account {ref}")
        return acct

    # ---- clock ---------------------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock.now()

    def advance(self, seconds: float) -> float:
        return self._clock.advance(float(seconds))

    def set_time_scale(self, x: float) -> None:
        self._clock.set_scale(float(x))

    # ---- behaviour -----------------------------------------------------------------------------------------
    def set_fault(
        self,
        action: str,
        *,
        code: str | None = None,
        rate: float = 0.0,
        latency: float = 0.0,
        drop_rate: float = 0.0,
        http_status_rate: float = 0.0,
        http_status: int = 502,
        service: str | None = None,
        drop_after_rate: float = 0.0,
    ) -> None:
        """Per-action random faults (replacing earlier ones for that action), deterministic under the seed.
        ``drop_after_rate``: the call runs to its end, then the connection closes without the answer."""
        self._faults.set_fault(
            action,
            FaultRule(
                code,
                float(rate),
                float(latency),
                float(drop_rate),
                float(http_status_rate),
                int(http_status),
                service,
                float(drop_after_rate),
            ),
        )

    def script_fault(self, action: str, count: int, *, code: str = "InternalError", kind: str = "error") -> None:
        """The next ``count`` calls of ``action`` fail: kind "error" (answer ``code``), "drop" (no answer, nothing
        done), "http5xx" (502), or "drop_after" (the call runs fully, then the connection closes unanswered)."""
        self._faults.script(action, int(count), code, kind)

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_rate_limits(self, enabled: bool) -> None:
        self._limiter.set_enabled(bool(enabled))

    def set_copy_failure_rate(self, p: float) -> None:
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError("a probability is in [0, 1]")
        with self._world.lock:
            self._world.settings.copy_failure_rate = float(p)

    def set_copy_duration(self, min_s: float, max_s: float) -> None:
        if not 0 <= float(min_s) <= float(max_s):
            raise ValueError("need 0 <= min_s <= max_s")
        with self._world.lock:
            self._world.settings.copy_duration = (float(min_s), float(max_s))

    # ---- the emulated SCF ----------------------------------------------------------------------------------
    def _runtime(self) -> ScfRuntime:
        if self._scf is None:
            raise ValueError("this emulator has no SCF runtime")
        return self._scf

    def scf_functions(self) -> list[dict]:
        """Every deployed function: name, namespace, handler, runtime, memory, timeout, triggers (with URLs; a
        timer's ``skipped``: slots dropped because its previous firing had not started yet)."""
        rt = self._runtime()
        with rt.lock:
            return [
                {
                    "name": s.name,
                    "namespace": s.namespace,
                    "handler": s.handler,
                    "runtime": s.runtime,
                    "memory_mb": s.memory_mb,
                    "timeout_s": s.timeout_s,
                    "retry_num": s.retry_num,
                    "msg_ttl_s": s.msg_ttl_s,
                    "dead_letter": s.dead_letter,
                    "triggers": [
                        {**t.info(), "skipped": t.skipped}
                        for t in rt.triggers
                        if t.function == s.name and t.namespace == s.namespace
                    ],
                }
                for s in rt.functions.values()
            ]

    def scf_invocations(self, function: str | None = None, namespace: str = "default") -> list[dict]:
        """Invocation attempts, oldest first: request_id, function, invocation_type, source (api, timer, http,
        eventbridge), attempt, cold, worker_pid, started_at (emulated), duration_ms (real), outcome (ok, error,
        timeout, killed, running), error, result, log (the attempt's stdout and stderr)."""
        return self._runtime().invocations(function, namespace)

    def scf_workers(self, function: str, namespace: str = "default") -> dict:
        """The function's instances: {"idle": [pid...], "busy": [pid...]}."""
        return self._runtime().workers(function, namespace)

    def scf_kill_worker(self, function: str, namespace: str = "default") -> int | None:
        """Kill one instance of ``function`` that is running an invocation (SIGKILL); returns its pid, or None
        when none is busy. The invocation ends as "killed" (an async one is retried)."""
        return self._runtime().kill_worker(function, namespace)

    def scf_dead_letters(self) -> list[dict]:
        """Async events that failed their last attempt: function, request_id, attempts, outcome, error, event,
        dead_letter (the function's DeadLetterConfig), delivered (sent to its CMQ queue/topic), message."""
        with self._runtime().lock:
            return [dict(d) for d in self._runtime().dead_letters]

    def scf_pending(self) -> list[dict]:
        """Async events queued or running (retries included)."""
        return self._runtime().pending()

    # ---- HTTP ----------------------------------------------------------------------------------------------
    def http(self, method: str, name: str, kwargs: dict) -> tuple[int, object]:
        """Serve ``/_emulator/<name>``: (HTTP status, JSON-able body)."""
        if name not in PUBLIC_METHODS:
            return 404, {"error": f"no admin method {name!r}", "methods": list(PUBLIC_METHODS)}
        fn = getattr(self, name)
        kwargs = {k: {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
        try:
            inspect.signature(fn).bind(**kwargs)
            return 200, {"result": fn(**kwargs)}
        except (TypeError, ValueError, KeyError) as exc:
            return 400, {"error": str(exc)}
