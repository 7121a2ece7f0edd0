"""Use cases of the replication rules: a new image (CreateImage event), the reconcile pass, and the plan.

* on_image_created: one CreateImage event -> the rules' copies of that image, once per event (an idempotency
  record keyed by the event id). The image is usually still CREATING: its replicas wait as WAITING_SOURCE and the
  sweep starts them when it turns NORMAL.
* reconcile: in the sweep, lists the custom images of the rules' source regions (DescribeImages, 100 per page)
  and requests every copy a rule wants that has neither a SUCCEEDED nor an active replica (a missed event, an
  outage, a failed copy), at most `limit` copies per run. DescribeImages costs calls, so it runs once per
  `interval_seconds` window across all containers (a claim on the idempotency table keyed by the window), not on
  every one-minute tick.
* plan: what reconcile would request now, copying nothing.

Images imagesync itself copied (a replica's destination image) are never a rule's source: two rules (or one rule
with a destination among its sources) would otherwise copy copies back and forth.

Over 400 lines on purpose: the event path, the reconcile pass and the plan share one notion of "covered" (which
copies a rule still wants) and one precheck; they are kept together so the three cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..domain import errors
from ..domain.destinations import has_keyword, resolve
from ..domain.models import CopyRequest, Origin, SourceImage
from ..domain.rules import PlannedCopy, Resolver, Rule, RuleSet, plan_copies
from ..domain.states import ACTIVE
from ..domain.validation import Limits, check_image, check_shape
from ..ports import Clock, IdempotencyStore, ImageService, ReplicaStore
from ..runtime.deadline import budget, time_left
from .idempotency import Idempotent
from .request_copies import RequestResult

log = logging.getLogger(__name__)

#: Source states the reconcile pass considers (a NORMAL image copies now, a CREATING one waits as WAITING_SOURCE).
RECONCILABLE = frozenset({"NORMAL", "CREATING"})
_ACTIVE = frozenset(s.value for s in ACTIVE)
#: An image's CreatedTime may trail the event's time a little (clocks, eventual consistency).
EVENT_TIME_SLACK = timedelta(minutes=10)


class ImageNotVisibleYet(errors.ImageSyncError):
    """A CreateImage event arrived before DescribeImages shows its image: raised so the platform redelivers."""

    code = "Event.ImageNotVisibleYet"
    kind = "retryable"


@dataclass(frozen=True)
class NewImage:
    """What a CreateImage event tells (docs/facts.md#F-EVT-5): the image id only when the record names it."""

    event_id: str
    region: str
    name: str
    event_time: datetime | None
    image_id: str | None = None
    requested_by: str = "eventbridge"


@dataclass
class Candidate:
    """One planned request with why it is wanted and whether validation would refuse it."""

    planned: PlannedCopy
    retry: bool  # some of these copies failed before (none succeeded, none active)
    refusal: errors.ImageSyncError | None = None

    def view(self) -> dict[str, Any]:
        image = self.planned.image
        return {
            "rule": self.planned.rule,
            "image_id": image.image_id,
            "image_name": image.name,
            "source_region": image.region,
            "state": image.state,
            "destinations": list(self.planned.destinations),
            "copy_name": self.planned.name or image.name,
            "reason": "failed before" if self.retry else "missing",
            "refused": {"code": self.refusal.code, "message": self.refusal.message} if self.refusal else None,
        }


@dataclass
class ReconcileReport:
    listed: int = 0
    candidates: int = 0
    requested: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    deferred: int = 0  # copies left for the next run (the limit was reached)
    skipped: dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "candidates": self.candidates,
            "requested": self.requested,
            "refused": self.refused[:20],
            "refused_count": len(self.refused),
            "deferred": self.deferred,
            "skipped": self.skipped,
            "stopped_early": self.stopped_early,
        }


class RuleEngine:
    def __init__(
        self,
        rules: RuleSet,
        replicas: ReplicaStore,
        records: IdempotencyStore,
        images: ImageService,
        clock: Clock,
        request_copies: Callable[[CopyRequest], RequestResult],
        limits: Limits,
        idempotent: Idempotent,
        *,
        reconcile_limit: int = 20,
        reconcile_interval_seconds: int = 600,
        image_wait_seconds: int = 600,
        list_limit: int = 5000,
        safety_seconds: float = 5.0,
        follow: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.rules = rules
        self.replicas = replicas
        #: the reconcile pass's own claim (one pass per interval across sweepers)
        self.records = records
        self.images = images
        self.clock = clock
        self.request_copies = request_copies
        self.limits = limits
        self.idempotent = idempotent
        self.reconcile_limit = reconcile_limit
        self.interval = reconcile_interval_seconds
        self.image_wait = timedelta(seconds=image_wait_seconds)
        self.list_limit = list_limit
        self.safety = safety_seconds
        #: run with each pass: the copies follow their source's deprecation (app.follow_source)
        self.follow = follow

    def resolver(self) -> Resolver:
        """The rules' destination keywords resolved on the region service's live list (domain.destinations)."""
        available = self.images.available_regions()

        def resolver(source: str, destinations: Sequence[str]) -> list[str]:
            return resolve(
                source, destinations, available=available, cross_border_allowed=self.limits.cross_border_allowed
            ).regions

        return resolver

    # -- CreateImage events --------------------------------------------------------------------------------------

    def on_image_created(self, new: NewImage) -> dict[str, Any]:
        """Request the rules' copies of the new image, once per event id (a redelivery replays the first result).

        Raises ImageNotVisibleYet while the image cannot be found and the event is younger than image_wait_seconds
        (the platform redelivers; after that the event is acknowledged as `image_not_found` and the reconcile
        pass is the safety net). Transient cloud errors raise too (nothing was recorded; a redelivery retries).
        Validation refusals of a rule-made request are results, not errors: the event is acknowledged.
        """
        payload = {"region": new.region, "name": new.name, "image_id": new.image_id}
        result, replayed = self.idempotent.run(f"event:{new.event_id}", payload, lambda: self._apply_event(new))
        if replayed:
            log.info("event %s already handled; redelivery ignored", new.event_id)
        return {**result, "replayed": replayed}

    def _apply_event(self, new: NewImage) -> dict[str, Any]:
        image = self._find_new_image(new) if self.rules.active else None
        base = {"event_id": new.event_id, "region": new.region, "image_name": new.name}
        if not self.rules.active:
            return {**base, "status": "no_rule", "rules": []}
        if image is None:
            age = self.clock.now() - new.event_time if new.event_time else self.image_wait
            if age < self.image_wait:
                raise ImageNotVisibleYet(
                    f"no custom image named {new.name!r} created at/after the event in {new.region} yet",
                    region=new.region,
                    name=new.name,
                )
            log.warning("CreateImage event %s: image %r never found in %s", new.event_id, new.name, new.region)
            return {**base, "status": "image_not_found"}
        base["image_id"] = image.image_id
        matched = [r.name for r in self.rules.matching(image)]
        if not matched:
            log.info("new image %s (%s) matches no rule", image.image_id, image.name)
            return {**base, "status": "no_rule", "rules": []}
        outcomes = [
            self._request(Candidate(p, retry=False), origin=Origin.EVENT, requested_by=new.requested_by, strict=True)
            for p in plan_copies(
                self.rules, image, now=self.clock.now(), covered=self._covered(image), resolver=self.resolver()
            )
        ]
        return {**base, "status": "handled", "rules": matched, "requests": outcomes}

    def _find_new_image(self, new: NewImage) -> SourceImage | None:
        if new.image_id:
            image = self.images.describe_images(new.region, [new.image_id]).get(new.image_id)
            if image is not None and image.name == new.name:
                return image  # else the id the record named was another resource's: look the image up by name
        found = self.images.find_by_name(new.region, new.name)
        if new.event_time is not None:
            since = new.event_time - EVENT_TIME_SLACK
            found = [i for i in found if (i.created_at or new.event_time) >= since]
        found.sort(key=lambda i: i.created_time or "", reverse=True)
        return found[0] if found else None

    def _covered(self, image: SourceImage) -> set[str]:
        states = self.replicas.replica_states(image.region, [image.image_id])
        return {dest for (iid, dest), sts in states.items() if iid == image.image_id and _covers(sts)}

    # -- requests ------------------------------------------------------------------------------------------------

    def _request(self, candidate: Candidate, *, origin: Origin, requested_by: str, strict: bool) -> dict[str, Any]:
        """Make one rule request; a domain refusal is returned with its code (logged), never raised.

        `strict`: a transient cloud error raises (the event is redelivered); else it is returned as a refusal.
        """
        planned = candidate.planned
        rule = self.rules_by_name()[planned.rule]
        out: dict[str, Any] = {
            "rule": planned.rule,
            "image_id": planned.image.image_id,
            "destinations": list(planned.destinations),
        }
        request = CopyRequest(
            source_region=planned.image.region,
            image_ids=[planned.image.image_id],
            destination_regions=list(planned.destinations),
            name=planned.name,
            origin=origin,
            requested_by=requested_by,
            rule=rule.name,
            hooks=_hooks_for(rule, planned.destinations),
            accounts=_accounts_for(rule, planned, origin),
            requested_destinations=list(rule.destinations) if has_keyword(rule.destinations) else None,
        )
        try:
            result = self.request_copies(request)
        except errors.AlreadyInFlight as exc:
            return {**out, "status": "in_flight", "replication_id": exc.replication_id}
        except errors.CloudError as exc:
            if strict and exc.retryable:
                raise
            log.warning("rule %s: %s for %s failed: %s", rule.name, exc.cloud_code, planned.image.image_id, exc)
            return {**out, "status": "refused", "code": exc.cloud_code, "message": exc.message}
        except errors.ImageSyncError as exc:
            log.warning(
                "rule %s refused for %s: %s",
                rule.name,
                planned.image.image_id,
                exc.message,
                extra={"code": exc.code, "rule": rule.name, "image_id": planned.image.image_id},
            )
            return {**out, "status": "refused", "code": exc.code, "message": exc.message}
        replication = result.replication
        return {
            **out,
            "status": "requested",
            "replication_id": replication.id,
            "states": sorted({r.state.value for r in replication.replicas}),
        }

    def rules_by_name(self) -> dict[str, Rule]:
        return {r.name: r for r in self.rules.rules}

    # -- reconcile -----------------------------------------------------------------------------------------------

    def reconcile(self, *, force: bool = False) -> dict[str, Any]:
        """The sweep's reconcile point: at most once per window (all containers), unless `force`."""
        if not self._reconcile_rules().rules:
            return {"ran": False, "reason": "no rules to reconcile"}
        if self.reconcile_limit <= 0 and not force:
            return {"ran": False, "reason": "IMAGESYNC_RECONCILE_LIMIT is 0"}
        key = None
        # the window is a schedule (the domain clock); the record's claim is about this process (the real clock):
        # a pass killed mid-way frees the window at its invocation's deadline, for the next tick to run it
        wall = self.idempotent.clock.now()
        if self.interval > 0 and not force:
            window = int(self.clock.now().timestamp() // self.interval)
            key = f"reconcile:{window}"
            taken = self.records.idempotency_claim(
                key,
                "reconcile",
                now=wall,
                expires_at=wall + timedelta(seconds=2 * self.interval),
                in_progress_until=wall + timedelta(seconds=budget(self.interval)),
            )
            if taken is not None:
                return {"ran": False, "reason": "already ran in this window", "window_seconds": self.interval}
        try:
            report = self._reconcile()
        except BaseException:
            if key is not None:
                self.records.idempotency_release(key)  # a failed pass is tried again at the next tick
            raise
        summary = {"ran": True, **report.as_dict()}
        if self.follow is not None:
            try:
                summary["deprecations"] = self.follow()
            except errors.CloudError as exc:  # the copies requested above stand; the next pass tries again
                log.warning("following deprecations failed: %s", exc.cloud_code)
                summary["deprecations"] = {"error": {"code": exc.cloud_code, "message": exc.message[:500]}}
        if key is not None:
            self.records.idempotency_complete(
                key, {"requested": len(report.requested)}, expires_at=wall + timedelta(seconds=2 * self.interval)
            )
        if report.requested or report.refused:
            log.info("reconcile done", extra={"requested": len(report.requested), "refused": len(report.refused)})
        return summary

    def _reconcile(self) -> ReconcileReport:
        report = ReconcileReport()
        candidates = self.candidates(report)
        budget = max(0, self.reconcile_limit)
        for candidate in candidates:
            if candidate.refusal is not None:
                error = candidate.refusal
                report.refused.append({**candidate.view(), "code": error.code, "message": error.message})
                continue
            if time_left() < self.safety:
                report.stopped_early = True
                report.deferred += len(candidate.planned.destinations)
                continue
            destinations = candidate.planned.destinations
            if budget < len(destinations):
                # One SyncImages per image with all its regions is the cheap way (a second call on the same
                # source waits until the first copies end), so a request is deferred whole -- unless it alone is
                # larger than the limit, which would starve it forever: then it is trimmed to the limit.
                if budget < self.reconcile_limit or budget == 0:
                    report.deferred += len(destinations)
                    continue
                report.deferred += len(destinations) - budget
                candidate = Candidate(
                    candidate.planned.model_copy(update={"destinations": destinations[:budget]}), candidate.retry
                )
            outcome = self._request(
                candidate, origin=Origin.RULE, requested_by=f"rule:{candidate.planned.rule}", strict=False
            )
            if outcome["status"] == "requested":
                budget -= len(candidate.planned.destinations)
                report.requested.append(outcome)
            elif outcome["status"] == "refused":
                report.refused.append(outcome)
            else:
                report.skipped["in_flight"] = report.skipped.get("in_flight", 0) + 1
        return report

    def plan(self) -> dict[str, Any]:
        """What reconcile would request now (ignoring its window), copying nothing; `within_limit` marks what one
        run would do."""
        report = ReconcileReport()
        candidates = self.candidates(report)
        budget = self.reconcile_limit
        rows = []
        for candidate in candidates:
            row = candidate.view()
            if candidate.refusal is None:
                row["within_limit"] = budget >= len(candidate.planned.destinations)
                budget -= len(candidate.planned.destinations)
            else:
                row["within_limit"] = False
            rows.append(row)
        copies = sum(len(c.planned.destinations) for c in candidates if c.refusal is None)
        return {
            "listed": report.listed,
            "copies": copies,
            "limit": self.reconcile_limit,
            "skipped": report.skipped,
            "plan": rows,
        }

    def candidates(self, report: ReconcileReport) -> list[Candidate]:
        """Every request the reconcile rules want now: never-copied first, then earlier failures; each checked by
        the pure validation (so a copy the rules can never make is reported, not retried every run)."""
        rules = self._reconcile_rules()
        now = self.clock.now()
        available = self.images.available_regions()
        resolver = self.resolver()
        wanted: list[Candidate] = []
        for region in rules.source_regions():
            if time_left() < self.safety:
                report.stopped_early = True
                break
            images = self._list(rules, region)
            report.listed += len(images)
            eligible = []
            for image in images:
                if image.state not in RECONCILABLE:
                    _count(report.skipped, f"state_{image.state or 'unknown'}")
                else:
                    eligible.append(image)
            ids = [i.image_id for i in eligible]
            copies = self.replicas.destination_image_ids(region, ids)
            states = self.replicas.replica_states(region, ids)
            for image in eligible:
                if image.image_id in copies:
                    _count(report.skipped, "made_by_imagesync")
                    continue
                covered = {d for (iid, d), sts in states.items() if iid == image.image_id and _covers(sts)}
                failed = {d for (iid, d), sts in states.items() if iid == image.image_id and not _covers(sts)}
                for planned in plan_copies(rules, image, now=now, covered=covered, resolver=resolver):
                    candidate = Candidate(planned, retry=bool(failed & set(planned.destinations)))
                    candidate.refusal = self._precheck(planned, available)
                    wanted.append(candidate)
        report.candidates = len(wanted)
        wanted.sort(key=lambda c: c.retry)  # stable: newest images first within each group
        return wanted

    def _precheck(self, planned: PlannedCopy, available: frozenset[str]) -> errors.ImageSyncError | None:
        request = CopyRequest(
            source_region=planned.image.region,
            image_ids=[planned.image.image_id],
            destination_regions=list(planned.destinations),
            name=planned.name,
            origin=Origin.RULE,
            rule=planned.rule,
        )
        try:
            check_shape(request, self.limits, available)
            check_image(planned.image.image_id, planned.image, planned.image.region, self.limits)
        except errors.ImageSyncError as exc:
            return exc
        return None

    def _list(self, rules: RuleSet, region: str) -> list[SourceImage]:
        """The custom images any reconcile rule could select in `region`, one listing per distinct filter."""
        seen: dict[str, SourceImage] = {}
        done: set[tuple[Any, ...]] = set()
        for rule in rules.rules:
            if region not in rule.selector.source_regions:
                continue
            sel = rule.selector
            key = (tuple(sorted(sel.tags.items())), sel.tag_keys[0] if sel.tag_keys else None)
            if key in done or ((), None) in done:
                continue
            done.add(key)
            for image in self.images.list_custom_images(
                region, tags=sel.tags or None, tag_key=key[1], limit=self.list_limit
            ):
                seen.setdefault(image.image_id, image)
        return sorted(seen.values(), key=lambda i: i.created_time or "", reverse=True)

    def _reconcile_rules(self) -> RuleSet:
        return self.rules.model_copy(update={"rules": [r for r in self.rules.active if r.reconcile]})


def _covers(states: list[str]) -> bool:
    """A copy is taken care of when one of its replicas SUCCEEDED or is still active."""
    return any(s == "SUCCEEDED" or s in _ACTIVE for s in states)


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def _accounts_for(rule: Rule, planned: PlannedCopy, origin: Origin) -> list[Any]:
    """A new image's deliveries into other accounts ride on the rule's first request for it (an event's)."""
    if not rule.accounts or origin is not Origin.EVENT:
        return []
    first = rule.destinations_for(planned.image)[:1]
    return list(rule.accounts) if first and first[0] in planned.destinations else []


def _hooks_for(rule: Rule, destinations: list[str]) -> list[Any]:
    """The rule's hooks; the encrypt hook keeps only the keys of this request's destinations (dropped if none)."""
    out: list[Any] = []
    for hook in rule.all_hooks:
        if getattr(hook, "type", None) == "encrypt":
            keys = {r: k for r, k in hook.kms_key_ids.items() if r in destinations}
            if not keys:
                continue
            hook = hook.model_copy(update={"kms_key_ids": keys})
        out.append(hook)
    return out
