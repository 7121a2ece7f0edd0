"""Use case: advance every copy in flight (the timer's job).

Take the sweepers' lease, read the due replicas -> one DescribeImages per region per 100 ids -> record progress or
the end -> start copies whose source is ready -> publish the outbox. Stops before the invocation's deadline; what
is left stays due for the next tick.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..domain.errors import CloudError
from ..domain.models import InFlight, Replica, new_id
from ..domain.progress import judged_looks, next_check, pace_verdict, within_budget
from ..domain.states import ReplicaState
from ..domain.validation import READY, WAITABLE
from ..ports import AuditLog, Clock, IdempotencyStore, ImageService, LeaseStore, OutboxStore, Queue, ReplicaStore
from ..runtime.deadline import deadline_in, time_left
from ..runtime.failpoints import failpoint
from ..runtime.records import emit
from .accounts import waiting_on_parent
from .start_copies import CopyStarter
from .transitions import move

log = logging.getLogger(__name__)
S = ReplicaState
FAILED_IMAGE_STATES = frozenset({"CREATEFAILED", "IMPORTFAILED"})
#: A copy's image may take a moment to show in DescribeImages after SyncImages returned its id.
MISSING_GRACE = timedelta(minutes=5)


@dataclass
class SweepReport:
    owner: str
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    published: int = 0
    purged: int = 0  # expired idempotency records deleted
    undelivered: int = 0  # ends whose hooks were recorded failed: their completion was never delivered
    reconciled: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False
    #: another sweep held the sweepers' lease: this one looked at no copy (it published and reconciled)
    lease_held_elsewhere: bool = False
    #: transient publish failures retried (each one a call that was sent again)
    publish_retries: int = 0
    #: the last publish failure this sweep gave up on ({code, message, retryable, unsent}); its messages stay in the
    #: outbox for the next sweep
    publish_error: dict[str, Any] | None = None
    #: what the sweep's timer was armed at after this sweep ({"armed": iso or None} or {"error": ...}; app.schedule)
    schedule: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "owner": self.owner,
            "claimed": self.claimed,
            "outcomes": dict(self.outcomes),
            "published": self.published,
            "purged": self.purged,
            "undelivered": self.undelivered,
            "reconciled": self.reconciled,
            "stopped_early": self.stopped_early,
            "lease_held_elsewhere": self.lease_held_elsewhere,
            "publish_retries": self.publish_retries,
            "publish_error": self.publish_error,
            "schedule": self.schedule,
        }


def summary(report: SweepReport, elapsed: float) -> None:
    """The operator's record of one sweep (runtime.records: event sweep_summary). Its absence for longer than a
    few timer periods is the "sweep stopped running" alarm (deploy/cls/)."""
    outcomes = report.outcomes
    emit(
        "sweep_summary",
        logging.WARNING if report.publish_error else logging.INFO,
        "sweep done",
        sweep=report.owner,
        claimed=report.claimed,
        started=outcomes.get("STARTED", 0),
        succeeded=outcomes.get(ReplicaState.SUCCEEDED.value, 0),
        failed=outcomes.get(ReplicaState.FAILED.value, 0),
        timed_out=outcomes.get(ReplicaState.TIMED_OUT.value, 0),
        published=report.published,
        undelivered=report.undelivered,
        stopped_early=report.stopped_early,
        code=(report.publish_error or {}).get("code"),
        duration_s=elapsed,
    )


def is_transient(exc: BaseException) -> bool:
    """A publish failure the same call may get past later: throttling, Tencent's internal errors, a dropped
    connection (CloudError.retryable), or a connection/timeout error raised below the SDK."""
    if isinstance(exc, CloudError):
        return exc.retryable
    return isinstance(exc, (ConnectionError, TimeoutError))


class Sweep:
    """The timer's job. Its state: `replicas` (progress and ends), `leases` (the sweepers' lease, the due replicas),
    `outbox` (completions to publish), `audit` (each end), `idempotency` (expired records purged)."""

    def __init__(
        self,
        replicas: ReplicaStore,
        leases: LeaseStore,
        outbox: OutboxStore,
        idempotency: IdempotencyStore,
        audit: AuditLog,
        images: ImageService,
        clock: Clock,
        starter: CopyStarter,
        queue: Queue,
        *,
        lease_seconds: int,
        batch: int,
        recheck_seconds: int,
        retry_seconds: int,
        safety_seconds: float = 5.0,
        max_rounds: int = 20,
        reconcile: Callable[[], dict[str, Any]] | None = None,
        max_check_seconds: int | None = None,
        publish_attempts: int = 5,
        publish_base_delay: float = 0.2,
        publish_max_delay: float = 3.0,
        sleep: Callable[[float], None] = time.sleep,
        wall: Clock | None = None,
        backstop: Callable[[], int] | None = None,
        follow_work: Callable[[], dict[str, Any]] | None = None,
        settle_seconds: int | None = None,
        ride_along_seconds: int = 0,
        bets: Callable[[str], bool] | None = None,
        first_check_seconds: int = 0,
    ) -> None:
        self.replicas = replicas
        self.leases = leases
        self.outbox = outbox
        self.idempotency = idempotency
        self.audit = audit
        self.images = images
        self.clock = clock
        self.starter = starter
        self.queue = queue
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.recheck = timedelta(seconds=recheck_seconds)
        #: the longest wait between two looks at a copy in flight (ETA scheduling); None = every recheck_seconds
        self.max_check = timedelta(seconds=max_check_seconds) if max_check_seconds else self.recheck
        self.retry = timedelta(seconds=retry_seconds)
        self.safety = safety_seconds
        self.max_rounds = max_rounds
        #: the rules' reconcile pass (finds matching images whose copies are missing); runs after the claims
        self.reconcile = reconcile
        #: a transient publish failure is retried up to this many calls in all, with exponential backoff and jitter,
        #: never sleeping past the invocation's deadline
        self.publish_attempts = publish_attempts
        self.publish_base_delay = publish_base_delay
        self.publish_max_delay = publish_max_delay
        self.sleep = sleep
        #: the real clock: leases (and idempotency purges) are about processes, `clock` may be an emulated one
        self.wall = wall or clock
        #: records the hooks of ends whose completion was never delivered (GiveUpHooks.undelivered)
        self.backstop = backstop
        #: arms the sweep's timer at the next due check, or disarms it at rest (app.schedule.FollowWork); last step
        self.follow_work = follow_work
        #: a check pinned to a window this narrow goes to its latest point (domain.progress.next_check)
        self.settle = timedelta(seconds=settle_seconds) if settle_seconds else None
        #: replicas due within this many seconds are claimed with those due now (their pages are usually shared)
        self.ride_along = timedelta(seconds=ride_along_seconds)
        #: destination region -> whether looks may go ahead of the look budget's slots there (app.first_look
        #: FirstLook.bets, from how recent copies' looks fared); None: always, a copy whose first look was not learned
        #: included (the lenient budget, IMAGESYNC_LOOK_AHEAD=always)
        self.bets = bets
        #: a copy first looked at no later than this after its start was looked at before any end taught its first
        #: look (the configured first check, give or take the timer's lead and one recheck): looks ahead of the
        #: budget's slots would narrow a wide window, each a look over them, so its budget is strict (and its looks
        #: not judged). A world whose copies end within a minute learns no later first look: strict throughout
        self.unlearned = timedelta(seconds=first_check_seconds) + self.recheck if first_check_seconds else timedelta(0)

    def __call__(self) -> SweepReport:
        """One sweep. Its leases last until the invocation's deadline (a sweep never works past it, and SCF ends
        it there); with no deadline (the CLI), the sweep bounds itself to `lease_seconds` and leases that long."""
        began = time.monotonic()
        if time_left() == float("inf"):
            with deadline_in(self.lease_seconds):
                report = self._sweep(self.lease_seconds)
        else:
            report = self._sweep(max(1.0, time_left()))
        summary(report, time.monotonic() - began)
        return report

    def _sweep(self, lease_seconds: float) -> SweepReport:
        report = SweepReport(owner=new_id("swp"))
        # One sweeper at a time works the copies in flight: the sweepers' lease, held until this invocation's
        # deadline on the real clock (a crashed sweeper's runs out). While another sweeper holds it, this one looks
        # at no copy (SCF's hourly safety timer and the one-shot one may fire together) and goes on to publish.
        # The due copies are read, not written: each is written once per sweep, by its progress or its end, a
        # compare-and-set on the version read (so a sweeper that outlived its lease writes nothing the next holder
        # wrote first: docs/state.md, "Leases").
        if not self.leases.acquire(report.owner, self.wall.now(), lease_seconds):
            report.lease_held_elsewhere = True
        else:
            try:
                claimed = self._due(report)
                report.claimed = len(claimed)
                if claimed:
                    self._work(claimed, report)
            finally:
                self.leases.release(report.owner)
        if self.reconcile is not None and time_left() > self.safety:
            report.reconciled = self.reconcile()
        report.published = self.publish_outbox(report=report)
        report.undelivered = self._give_up_undelivered()
        report.purged = self.idempotency.purge_expired(self.wall.now())  # idempotency records are on the real clock
        if self.follow_work is not None:
            report.schedule = self.follow_work()
        return report

    def _due(self, report: SweepReport) -> list[InFlight]:
        """Every due copy (up to `batch` x `max_rounds`, oldest first), read at once and then worked together:
        grouping all of a region's copies into pages of 100 keeps DescribeImages at the floor, sum over regions of
        ceil(in flight / 100), instead of paying a partial page per round of a batch."""
        if time_left() < self.safety:
            report.stopped_early = True
            return []
        return self.leases.due_in_flight(self.clock.now() + self.ride_along, self.batch * self.max_rounds)

    def _give_up_undelivered(self) -> int:
        """The backstop (see app.give_up): ends whose completion the link never delivered get failed hooks."""
        if self.backstop is None or time_left() < 1.0:
            return 0
        try:
            return self.backstop()
        except Exception:  # the sweep's own work is done: report, and try again next tick
            log.exception("recording undelivered completions failed")
            return 0

    def publish_outbox(self, limit: int = 500, *, report: SweepReport | None = None) -> int:
        """Hand every unsent completion message to the link, then mark it sent (a crash in between sends it again:
        at least once). Returns how many were marked sent.

        A link that carries many messages per call (`BatchQueue`: scf async Invoke, EventBridge PutEvents) gets them
        in as few calls as its limits allow; another (the local queue) one by one. Publishing never fails the
        sweep: a transient failure (CloudError.retryable, a dropped connection) is retried with backoff within the
        invocation's deadline; what still fails stays in the outbox for the next sweep and is reported in
        `report.publish_error`. A transient failure that outlasts the retries ends this sweep's publishing (the
        link is down); a permanent one skips that call's messages and goes on with the rest.
        """
        report = report if report is not None else SweepReport(owner="publish")
        sent = 0
        skipped: set[str] = set()  # messages a permanent failure left in the outbox in this run
        while time_left() > 1.0:
            messages = [m for m in self.outbox.pending_outbox(limit + len(skipped)) if m.message_id not in skipped]
            messages = messages[:limit]
            if not messages:
                break
            # looked up once there is something to publish: the link may be built on first use (wiring)
            batches = getattr(self.queue, "batches", None)
            send_batch = getattr(self.queue, "send_batch", None)
            bodies = [m.model_dump_json() for m in messages]
            try:
                groups = batches(bodies) if batches and send_batch else [[i] for i in range(len(bodies))]
            except Exception as exc:  # e.g. one message too large for any call: send the others one by one
                log.warning("publish: cannot group the outbox (%s); sending one message per call", exc)
                groups = [[i] for i in range(len(bodies))]
            for group in groups:
                chunk = [bodies[i] for i in group]
                ok, transient = self._publish(chunk, send_batch, report)
                if not ok:
                    if transient:
                        return sent  # the link is down: the rest waits for the next sweep
                    skipped.update(messages[i].message_id for i in group)
                    continue
                failpoint("after_outbox_publish")
                self.outbox.mark_outbox_sent([messages[i].message_id for i in group])
                sent += len(group)
            if len(messages) < limit:
                break
        return sent

    def _publish(
        self, bodies: Sequence[str], send_batch: Callable[[Sequence[str]], str] | None, report: SweepReport
    ) -> tuple[bool, bool]:
        """Send `bodies` in one call, retrying transient failures within the deadline: (sent, failure transient)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                if send_batch is not None:
                    send_batch(bodies)
                else:
                    for body in bodies:
                        self.queue.send(body)
                return True, False
            except Exception as exc:  # every publish failure is contained: the sweep's report must come back
                transient = is_transient(exc)
                delay = min(self.publish_max_delay, self.publish_base_delay * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)
                if not transient or attempt >= self.publish_attempts or delay >= time_left() - self.safety:
                    code = getattr(exc, "cloud_code", None) or getattr(exc, "code", None) or type(exc).__name__
                    report.publish_error = {
                        "code": str(code),
                        "message": str(exc)[:500],
                        "retryable": transient,
                        "attempts": attempt,
                        "unsent": len(bodies),
                    }
                    log.warning(
                        "publish failed after %d attempt(s) (%s); %d message(s) stay in the outbox",
                        attempt,
                        code,
                        len(bodies),
                        exc_info=not transient,
                    )
                    return False, transient
                report.publish_retries += 1
                log.info("publish failed (%s); retrying in %.2fs (attempt %d)", type(exc).__name__, delay, attempt)
                self.sleep(delay)

    def _save(self, replica: Replica, state: ReplicaState, report: SweepReport, **changes: object) -> None:
        saved = move(self.replicas, self.audit, self.clock, replica, state, **changes)
        if saved is not None and state is not replica.state:
            report.outcomes[state.value] += 1

    def _full(self, claimed: Sequence[InFlight]) -> list[Replica]:
        """The whole replicas of these claimed copies, in one read: what ends (their outbox message) and starts
        write. A row changed since the claim is written against the version and state claimed, so that its
        compare-and-set loses as it would have (move: left to its new owner); a row gone is left out."""
        if not claimed:
            return []
        found = self.replicas.get_replicas([c.id for c in claimed])
        out = []
        for c in claimed:
            replica = found.get(c.id)
            if replica is not None and (replica.version != c.version or replica.state is not c.state):
                replica = replica.model_copy(update={"version": c.version, "state": c.state})
            if replica is not None:
                out.append(replica)
        return out

    def _work(self, claimed: list[InFlight], report: SweepReport) -> None:
        now = self.clock.now()
        live: list[InFlight] = []
        overdue: list[InFlight] = []
        for copy in claimed:
            (overdue if copy.deadline_at <= now else live).append(copy)
        for replica in self._full(overdue):
            self._save(
                replica,
                S.TIMED_OUT,
                report,
                error_code="Copy.TimedOut",
                error_message=f"not ended by its deadline {replica.deadline_at.isoformat()}",
            )
        self._check_copies([r for r in live if r.state is S.COPYING], report)
        self._check_sources(self._full([r for r in live if r.state in (S.PENDING, S.WAITING_SOURCE)]), report)

    def _images_of(self, account: str | None, role: str | None) -> ImageService:
        """Where a copy is checked: the own account, or another one through the role assumed there."""
        if account and role and self.starter.accounts is not None:
            return self.starter.accounts.images(account, role)
        return self.images

    def _check_copies(self, copying: list[InFlight], report: SweepReport) -> None:
        by_region: dict[tuple[str | None, str | None, str], list[InFlight]] = defaultdict(list)
        for replica in copying:
            by_region[(replica.account, replica.role, replica.destination_region)].append(replica)
        for (account, role, region), replicas in by_region.items():
            if time_left() < self.safety:
                report.stopped_early = True
                return
            try:
                found = self._images_of(account, role).describe_progress(
                    region, [r.destination_image_id or "" for r in replicas]
                )
            except CloudError as exc:
                log.warning("DescribeImages in %s failed (%s); retried next tick", region, exc.cloud_code)
                continue
            now = self.clock.now()
            # the look budget is strict unless recent copies say looks ahead of its slots pay (domain.progress)
            strict_here = self.bets is not None and not self.bets(region)
            progress: list[tuple[InFlight, int]] = []  # COPYING -> COPYING, written together below
            ends: list[tuple[InFlight, ReplicaState, dict[str, Any]]] = []  # written below, from the whole replica
            for replica in replicas:
                # this look, counted whatever it found: the look budget (domain.progress.within_budget)
                looks, first = replica.looks + 1, replica.first_look_at or now
                # and strict for a copy first looked at before any end taught the first look: its looks ahead of
                # the slots would narrow a wide window, each a look over them
                unlearned = replica.started_at is not None and first - replica.started_at <= self.unlearned
                strict = strict_here or (unlearned and self.bets is not None)
                image = found.get(replica.destination_image_id or "")
                if image is None:
                    if replica.started_at and now - replica.started_at < MISSING_GRACE:
                        due = within_budget(
                            now + self.recheck,
                            looks=looks,
                            first_look_at=first,
                            cap=self.max_check,
                            strict=strict,
                            now=now,
                        )
                        moved = replica._replace(updated_at=now, next_check_at=due, looks=looks, first_look_at=first)
                        progress.append((moved, replica.version))
                    else:
                        ends.append(
                            (
                                replica,
                                S.FAILED,
                                {
                                    "error_code": "Copy.ImageMissing",
                                    "error_message": (
                                        f"destination image {replica.destination_image_id} no longer exists"
                                    ),
                                    "looks": looks,
                                    "first_look_at": first,
                                },
                            )
                        )
                elif image.state == READY:
                    judged = (
                        judged_looks(looks, replica.first_look_at, replica.updated_at, now, self.max_check)
                        if replica.started_at is not None and not unlearned
                        else None
                    )
                    ends.append(
                        (
                            replica,
                            S.SUCCEEDED,
                            {"sync_percent": 100, "looks": looks, "first_look_at": first, "looks_over": judged},
                        )
                    )
                elif image.state in FAILED_IMAGE_STATES:
                    ends.append(
                        (
                            replica,
                            S.FAILED,
                            {
                                "error_code": "Copy.Failed",
                                "error_message": (
                                    f"destination image {replica.destination_image_id} ended {image.state}"
                                ),
                                "looks": looks,
                                "first_look_at": first,
                            },
                        )
                    )
                else:
                    # look again when the SyncPercent-based ETA says so, not on every tick
                    due = next_check(
                        now,
                        replica.started_at,
                        image.sync_percent,
                        interval=self.recheck,
                        cap=self.max_check,
                        settle=self.settle,
                        previous=(replica.updated_at, replica.sync_percent),
                        looks=looks,
                        first_look_at=first,
                        strict=strict,
                    )
                    # whether its percent keeps one pace: what says looks ahead of the slots would pay, from the looks
                    # a strict budget takes too
                    paced = pace_verdict(
                        replica.pace_changed,
                        replica.started_at,
                        (replica.updated_at, replica.sync_percent),
                        now,
                        image.sync_percent,
                    )
                    moved = replica._replace(
                        updated_at=now,
                        sync_percent=image.sync_percent,
                        next_check_at=due,
                        looks=looks,
                        first_look_at=first,
                        pace_changed=paced,
                    )
                    progress.append((moved, replica.version))
            # the page's ends, from their whole replicas (one read): each end writes its outbox message with it
            if ends:
                whole = {r.id: r for r in self._full([copy for copy, _, _ in ends])}
                for copy, state, changes in ends:
                    if copy.id in whole:
                        self._save(whole[copy.id], state, report, **changes)
            if progress:
                self.replicas.save_progress(progress)

    def _check_sources(self, waiting: list[Replica], report: SweepReport) -> None:
        by_region: dict[str, list[Replica]] = defaultdict(list)
        ready: list[Replica] = []
        for replica in waiting:
            if replica.account and replica.parent_replica_id:
                # a copy in an account's other region: its source is the account's handover copy
                verdict, changes = waiting_on_parent(self.starter, replica)
                if verdict == "start":
                    ready.append(replica)
                elif verdict == "fail":
                    self._save(replica, S.FAILED, report, **changes)
                else:
                    self._save(replica, S.WAITING_SOURCE, report, next_check_at=self.clock.now() + self.retry)
            else:
                by_region[replica.source_region].append(replica)
        for region, replicas in by_region.items():
            if time_left() < self.safety:
                report.stopped_early = True
                break
            try:
                found = self.images.describe_images(region, [r.source_image_id for r in replicas])
            except CloudError as exc:
                log.warning("DescribeImages in %s failed (%s); retried next tick", region, exc.cloud_code)
                continue
            now = self.clock.now()
            for replica in replicas:
                image = found.get(replica.source_image_id)
                if image is None:
                    self._save(
                        replica,
                        S.FAILED,
                        report,
                        error_code="Image.NotFound",
                        error_message=f"source image {replica.source_image_id} no longer exists in {region}",
                    )
                elif image.state == READY:
                    ready.append(replica)
                elif image.state in WAITABLE:
                    self._save(replica, S.WAITING_SOURCE, report, next_check_at=now + self.retry)
                else:
                    self._save(
                        replica,
                        S.FAILED,
                        report,
                        error_code="Image.NotNormal",
                        error_message=f"source image {replica.source_image_id} is {image.state}",
                    )
        if ready and time_left() > self.safety:
            for replica in self.starter.start(ready):
                if replica.state is S.COPYING:
                    report.outcomes["STARTED"] += 1
                elif replica.state.terminal:
                    report.outcomes[replica.state.value] += 1
