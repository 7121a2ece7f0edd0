"""The first look placed from recent copies' durations, and the per-copy look budget (pure; a frozen clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from imagesync.app.first_look import FirstLook
from imagesync.domain.progress import (
    bets_pay,
    durations_for,
    first_look,
    judged_looks,
    next_check,
    pace_verdict,
    paces_agree,
    within_budget,
)

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=timezone.utc)
SEC = timedelta(seconds=1)
MIN = timedelta(minutes=1)
FLOOR, CAP = 60 * SEC, 600 * SEC


def test_first_look_is_a_low_quantile_of_recent_durations_within_floor_and_cap() -> None:
    # copies of 3 minutes: a short first look, learned (0.9 x their 10th percentile)
    three_min = [170.0 + i for i in range(20)]
    assert first_look(three_min, floor=FLOOR, cap=CAP) == timedelta(seconds=0.9 * 171.0)
    # copies of 10-30 minutes: the cap
    assert first_look([600.0 + 60 * i for i in range(21)], floor=FLOOR, cap=CAP) == CAP
    # copies of seconds: the floor
    assert first_look([20.0] * 10, floor=FLOOR, cap=CAP) == FLOOR
    # fewer than 5 durations (or none usable) say nothing: the floor, as configured
    assert first_look([900.0] * 4, floor=FLOOR, cap=CAP) == FLOOR
    assert first_look([0.0, -1.0, 900.0, 900.0, 900.0], floor=FLOOR, cap=CAP) == FLOOR
    assert first_look([], floor=FLOOR, cap=CAP) == FLOOR
    # a cap below the floor never puts the first look before the floor
    assert first_look([900.0] * 10, floor=FLOOR, cap=30 * SEC) == FLOOR


def test_durations_of_the_region_when_it_has_enough_else_of_every_region() -> None:
    samples = [("ap-shanghai", 100.0 + i) for i in range(6)] + [("ap-beijing", 900.0 + i) for i in range(3)]
    assert durations_for(samples, "ap-shanghai") == [100.0 + i for i in range(6)]
    assert durations_for(samples, "ap-beijing") == [d for _, d in samples]  # 3 of its own: all of them
    assert durations_for(samples, "ap-shanghai", limit=2) == [100.0, 101.0]  # the newest first


def test_the_budget_allows_a_look_per_max_check_after_the_first_by_its_next_look() -> None:
    first = T0 + 10 * MIN
    # after the first look, a second at any moment (the check every max_check would look at first + cap)
    assert within_budget(first + 7 * SEC, looks=1, first_look_at=first, cap=CAP) == first + 7 * SEC
    # a third not before first + cap, a fourth not before first + 2 cap
    assert within_budget(first + 8 * SEC, looks=2, first_look_at=first, cap=CAP) == first + CAP
    assert within_budget(first + CAP + 9 * SEC, looks=3, first_look_at=first, cap=CAP) == first + 2 * CAP
    # a look already past its slot is left alone; no look yet (or no record of one): no bound
    assert within_budget(first + 3 * CAP, looks=3, first_look_at=first, cap=CAP) == first + 3 * CAP
    assert within_budget(T0, looks=0, first_look_at=None, cap=CAP) == T0


def test_the_strict_budget_looks_only_at_the_slots_unless_a_look_is_already_ahead_of_them() -> None:
    first = T0 + 10 * MIN
    # strict: look n + 1 not before first + n cap, the check every cap's own moments
    assert within_budget(first + 7 * SEC, looks=1, first_look_at=first, cap=CAP, strict=True, now=first) == first + CAP
    on_slot = first + CAP
    assert within_budget(on_slot + 7 * SEC, looks=2, first_look_at=first, cap=CAP, strict=True, now=on_slot) == (
        first + 2 * CAP
    )
    # a copy a look ahead (a bet made before the budget turned strict): the lenient bound, so its end is still seen
    # within cap of this look (first + 2 cap would be up to two cap away)
    ahead = first + 30 * SEC
    assert within_budget(ahead + 7 * SEC, looks=2, first_look_at=first, cap=CAP, strict=True, now=ahead) == (
        first + CAP
    )


def test_a_copy_is_judged_by_whether_its_looks_ahead_of_the_slots_missed() -> None:
    first = T0 + 10 * MIN
    # a look at the first look, one just after the pinned end, which saw it ended: a bet that paid
    assert judged_looks(2, first, first, first + 7 * MIN, CAP) == 0
    # a bet that missed (look 2 at +7 min saw it in flight), then the end seen at the second slot: one over
    assert judged_looks(3, first, first + 7 * MIN, first + CAP + SEC, CAP) == 1
    # the same copy seen in flight at the second slot too, ended by the third: still a look over for an end right
    # after the second slot (the earliest it can have been), so still a miss
    assert judged_looks(4, first, first + CAP + SEC, first + 2 * CAP + SEC, CAP) == 1
    # only looks on the slots (a strict budget's): nothing to judge; one look, or no first look recorded: neither
    assert judged_looks(3, first, first + CAP, first + 2 * CAP, CAP) is None
    assert judged_looks(1, first, T0, first, CAP) is None
    assert judged_looks(2, None, first, first + MIN, CAP) is None


def test_bets_wait_for_recent_copies_to_say_they_pay() -> None:
    # nothing known of the world: no looks ahead of the slots
    assert not bets_pay([]) and not bets_pay([], [0.0] * 9)
    # 5 or more copies whose looks went ahead decide: at most 20 % missed
    assert bets_pay([0.0] * 8 + [1.0] * 2)  # 20 % missed: at the limit, go on
    assert not bets_pay([0.0] * 7 + [1.0] * 3)
    assert not bets_pay([1.0] * 40, [0.0] * 40)  # the looks ahead themselves outweigh the paces
    # fewer than 5 of them: 10 or more copies' paces decide, at most 5 % changed
    assert bets_pay([1.0] * 4, [0.0] * 10)
    assert bets_pay([], [0.0] * 19 + [1.0])
    assert not bets_pay([], [0.0] * 18 + [1.0] * 2)
    assert not bets_pay([], [0.0] * 9 + [1.0])


def test_two_looks_agree_on_a_steady_copys_end_and_disagree_on_a_stall_or_a_quickening() -> None:
    def at(s: float) -> datetime:
        return T0 + s * SEC

    # a steady copy of 1000 s: 33 % at 333 s and 66 % at 666 s both allow an end at 1000 s
    assert paces_agree(T0, (at(333), 33), at(666), 66)
    # stalled at 99 since 990 s (its end then looked due by 1000 s), seen at 1590 s: the end is later than allowed
    assert paces_agree(T0, (at(990), 99), at(1590), 99) is False
    # a slow start (percent = 100 (t / T)^2 of 1000 s): the end moves earlier from look to look
    assert paces_agree(T0, (at(400), 16), at(800), 64) is False
    # within the slack: 33 % at 333 s, then an end allowed 4 s later than the first look's latest
    assert paces_agree(T0, (at(333), 33), at(674), 67)
    # nothing to compare: no percent (0 or None), or the looks out of order
    assert paces_agree(T0, (at(333), 0), at(666), 66) is None
    assert paces_agree(T0, (at(333), 33), at(666), None) is None
    assert paces_agree(T0, (at(666), 66), at(333), 33) is None
    # the verdict: 0 once two looks agreed, 1 once two disagreed (and then for good), None before
    assert pace_verdict(None, T0, (at(333), 33), at(666), 66) == 0
    assert pace_verdict(0, T0, (at(990), 99), at(1590), 99) == 1
    assert pace_verdict(1, T0, (at(333), 33), at(666), 66) == 1
    assert pace_verdict(None, T0, (at(333), 0), at(666), 66) is None
    assert pace_verdict(None, None, (at(333), 33), at(666), 66) is None


def _follow(curve: object, total: float, first: float, **kw: object) -> tuple[int, float]:
    """(looks, seconds seen late) of one copy of `total` s whose percent at t s is curve(t), first looked at `first`."""
    now, looks, previous = T0 + first * SEC, 0, None
    while True:
        looks += 1
        t = (now - T0).total_seconds()
        if t >= total:
            return looks, t - total
        shown = curve(t)  # type: ignore[operator]
        due = next_check(
            now,
            T0,
            shown,
            interval=10 * SEC,
            cap=CAP,
            settle=45 * SEC,
            previous=previous,
            looks=looks,
            first_look_at=T0 + first * SEC,
        )
        assert due - now <= CAP + SEC
        previous, now = (now, shown), due


def test_a_stall_at_99_costs_at_most_one_look_more_than_a_check_every_max_check() -> None:
    for total in (700.0, 1000.0, 1300.0, 1700.0, 3000.0):
        rise = total - min(900.0, total / 2)

        def stall(t: float, rise: float = rise) -> int:
            return 99 if t >= rise else int(99 * t / rise)

        looks, late = _follow(stall, total, 600.0)
        every_cap = 1 + -(-(total - 600.0) // 600.0)  # a look at 600 s, then one every 600 s until it is ended
        assert looks <= every_cap + 1, (total, looks, every_cap)
        assert late <= 600.0 + 1, (total, late)


def test_a_linear_copy_still_costs_two_looks_and_is_seen_within_the_settle_window() -> None:
    for total in (700.0, 1000.0, 1190.0):  # longer: the cap (600 s) puts a look between
        looks, late = _follow(lambda t, total=total: min(99, int(100 * t / total)), total, 600.0)
        assert looks == 2 and late <= 46.0, (total, looks, late)


@dataclass
class Durations:
    """The CopyDurations port, recording its reads."""

    samples: list[tuple[str, float]]
    reads: list[datetime] = field(default_factory=list)
    fail: bool = False
    judged: list[tuple[str, int | None, int | None]] = field(default_factory=list)
    judged_since: list[datetime] = field(default_factory=list)

    def recent_durations(self, since: datetime, limit: int) -> list[tuple[str, float]]:
        self.reads.append(since)
        if self.fail:
            raise ConnectionError("database away")
        return self.samples[:limit]

    def recent_judged(self, since: datetime, limit: int) -> list[tuple[str, int | None, int | None]]:
        self.judged_since.append(since)
        return self.judged[:limit]


@dataclass
class Frozen:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at


def test_first_look_reads_the_durations_once_per_ttl_and_a_failed_read_means_the_floor() -> None:
    clock = Frozen()
    port = Durations([("ap-shanghai", 180.0)] * 10 + [("ap-beijing", 1500.0)] * 10)
    policy = FirstLook(port, clock, floor_seconds=60, cap_seconds=600)
    assert policy("ap-shanghai") == timedelta(seconds=162)
    assert policy("ap-beijing") == CAP
    assert policy("ap-chengdu") == timedelta(seconds=162)  # none of its own: every region's (10th pct: 180)
    assert port.reads == [T0 - timedelta(days=3)]  # a burst: one read
    clock.at = T0 + 4 * MIN
    policy("ap-shanghai")
    assert len(port.reads) == 1
    clock.at = T0 + 5 * MIN  # the TTL ran out: read again
    port.fail = True
    assert policy("ap-shanghai") == FLOOR  # the copy is still started, first looked at the configured floor
    assert len(port.reads) == 2
    assert FirstLook(None, clock, floor_seconds=60, cap_seconds=600)("ap-shanghai") == FLOOR


def test_bets_are_read_with_the_durations_per_region_and_wait_when_the_read_fails() -> None:
    clock = Frozen()
    port = Durations([("ap-shanghai", 900.0)] * 10)
    port.judged = [("ap-shanghai", 1, None)] * 12 + [("ap-beijing", 0, None)] * 3
    policy = FirstLook(port, clock, floor_seconds=60, cap_seconds=600)
    assert not policy.bets("ap-shanghai")  # its own 12 judged: all missed
    assert not policy.bets("ap-beijing")  # 3 of its own: every region's 15, 12 missed
    port.judged = [("ap-shanghai", 1, None)] * 12 + [("ap-beijing", 0, None)] * 10
    assert not policy.bets("ap-beijing")  # within the TTL: the same read
    assert len(port.reads) == 1 and port.judged_since == [T0 - timedelta(days=1)]
    clock.at = T0 + 5 * MIN
    assert policy.bets("ap-beijing") and not policy.bets("ap-shanghai")
    # no looks went ahead in ap-chengdu (a strict budget's copies): their paces decide, the region's own once 10
    port.judged = [("ap-chengdu", None, 0)] * 10 + [("ap-nanjing", None, 1)] * 2 + [("ap-shanghai", None, 0)] * 8
    clock.at = T0 + 10 * MIN
    assert policy.bets("ap-chengdu")  # its own 10 kept one pace
    assert not policy.bets("ap-nanjing")  # 2 of its own: every region's 20, 2 changed pace (10 %)
    clock.at = T0 + 15 * MIN
    port.fail = True
    assert not policy.bets("ap-chengdu")  # nothing read: nothing known, the strict budget
    assert FirstLook(None, clock, floor_seconds=60, cap_seconds=600).bets("ap-shanghai")  # no store: never judged


# -- the sweep counts its looks, and a new copy's first look comes from the policy ---------------------------------


def test_the_sweep_counts_every_look_and_keeps_a_stalled_copy_to_its_budget() -> None:
    from tests.unit.test_sweep_and_starter import World

    world = World()
    copy = world.copying("img-a", "ap-shanghai", "img-c1", started_at=world.clock.now() - 10 * MIN)
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=99)
    sweep = world.sweep(max_check_seconds=600, settle_seconds=45)
    first = world.clock.now()
    sweep()
    seen = world.replicas.rows[copy.id]
    assert (seen.looks, seen.first_look_at) == (1, first)
    # 99 % ten minutes in: the end is pinned within seconds, one look just after it (look 2 is within budget)
    world.clock.at = seen.next_check_at
    assert seen.next_check_at - first < MIN
    sweep()
    stalled = world.replicas.rows[copy.id]
    assert (stalled.looks, stalled.first_look_at) == (2, first)
    # still 99: look 3 only once a check every 600 s would have looked a second time
    assert stalled.next_check_at == first + CAP
    world.clock.at = stalled.next_check_at
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    sweep()
    ended = world.replicas.rows[copy.id]
    assert ended.state.value == "SUCCEEDED" and ended.looks == 3 and ended.first_look_at == first
    # judged at its end: the look ahead of its slot (look 2) missed, one look over the slots
    assert ended.looks_over == 1


def test_where_bets_miss_the_sweep_looks_only_at_the_slots_and_judges_nothing() -> None:
    from tests.unit.test_sweep_and_starter import World

    world = World()
    asked: list[str] = []

    def bets(region: str) -> bool:
        asked.append(region)
        return False

    copy = world.copying("img-a", "ap-shanghai", "img-c1", started_at=world.clock.now() - 10 * MIN)
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=99)
    sweep = world.sweep(max_check_seconds=600, settle_seconds=45, bets=bets, first_check_seconds=60)
    first = world.clock.now()
    sweep()
    seen = world.replicas.rows[copy.id]
    # 99 % ten minutes in pins the end within seconds, but looks ahead of the slots miss here: the next slot
    assert seen.looks == 1 and seen.next_check_at == first + CAP and asked == ["ap-shanghai"]
    world.clock.at = seen.next_check_at
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    sweep()
    ended = world.replicas.rows[copy.id]
    assert ended.state.value == "SUCCEEDED" and ended.looks == 2 and ended.looks_over is None


def test_a_copy_first_looked_at_the_configured_floor_is_not_judged() -> None:
    from tests.unit.test_sweep_and_starter import World

    world = World()
    copy = world.copying("img-a", "ap-shanghai", "img-c1", started_at=world.clock.now() - MIN)
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=10)
    sweep = world.sweep(max_check_seconds=600, settle_seconds=45, first_check_seconds=60)
    sweep()
    world.clock.at = world.replicas.rows[copy.id].next_check_at
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    sweep()
    ended = world.replicas.rows[copy.id]
    assert ended.state.value == "SUCCEEDED" and ended.looks == 2 and ended.looks_over is None


def test_a_copy_first_looked_at_the_configured_floor_looks_only_at_the_slots() -> None:
    from tests.unit.test_sweep_and_starter import World

    world = World()
    copy = world.copying("img-a", "ap-shanghai", "img-c1", started_at=world.clock.now() - MIN)
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=10)
    # bets pay in this world, but this copy's first look was the configured floor: a look ahead of its slots would
    # only narrow a wide window (10 % at 60 s: an end between 545 and 600 s)
    sweep = world.sweep(max_check_seconds=600, settle_seconds=45, bets=lambda region: True, first_check_seconds=60)
    first = world.clock.now()
    sweep()
    assert world.replicas.rows[copy.id].next_check_at == first + CAP


def test_the_sweep_records_whether_a_copys_percent_keeps_one_pace() -> None:
    from tests.unit.test_sweep_and_starter import World

    world = World()
    steady = world.copying("img-a", "ap-shanghai", "img-c1", started_at=world.clock.now() - 5 * MIN)
    stalled = world.copying("img-b", "ap-shanghai", "img-c2", started_at=world.clock.now() - 5 * MIN)
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=30)  # a copy of 1000 s
    world.images.add("ap-shanghai", "img-c2", state="SYNCING", sync_percent=60)  # 500 s, if it kept that pace
    sweep = world.sweep(max_check_seconds=600, settle_seconds=45, bets=lambda region: False)
    sweep()
    assert [world.replicas.rows[r.id].pace_changed for r in (steady, stalled)] == [None, None]  # one look each
    world.clock.at = world.clock.now() + CAP
    world.images.add("ap-shanghai", "img-c1", state="SYNCING", sync_percent=90)
    world.images.add("ap-shanghai", "img-c2", state="SYNCING", sync_percent=61)
    sweep()
    assert [world.replicas.rows[r.id].pace_changed for r in (steady, stalled)] == [0, 1]
    world.clock.at = world.clock.now() + CAP
    world.images.add("ap-shanghai", "img-c1", state="NORMAL")
    world.images.add("ap-shanghai", "img-c2", state="NORMAL")
    sweep()
    ended = [world.replicas.rows[r.id] for r in (steady, stalled)]
    assert [(r.state.value, r.pace_changed) for r in ended] == [("SUCCEEDED", 0), ("SUCCEEDED", 1)]


def test_a_started_copy_is_first_looked_at_when_the_policy_says() -> None:
    from tests.unit.test_sweep_and_starter import SRC, World

    world = World()
    asked: list[str] = []

    def policy(region: str) -> timedelta:
        asked.append(region)
        return 540 * SEC

    starter = world.starter()
    starter.first_look = policy
    waiting = world.replica("img-a", "ap-shanghai")
    world.images.add(SRC, "img-a", state="NORMAL")
    [started] = starter.start([waiting])
    assert started.state.value == "COPYING" and asked == ["ap-shanghai"]
    assert started.next_check_at == world.clock.now() + 540 * SEC and started.looks == 0
    # an encrypted copy (same region, its own pace, not among the durations): the configured first check
    enc = world.replica("img-b", "ap-shanghai", kms_key_id="kms-1", parent_replica_id=started.id)
    world.images.add("ap-shanghai", "img-b", state="NORMAL")
    [encrypted] = starter.start([enc])
    assert encrypted.state.value == "COPYING" and asked == ["ap-shanghai"]
    assert encrypted.next_check_at == world.clock.now() + 60 * SEC
