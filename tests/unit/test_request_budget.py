"""The request budget of one side: its window, its priorities, what the headers teach, refusals."""

from __future__ import annotations

import itertools
import threading

import pytest

from zfsync.domain.errors import NoRoom
from zfsync.sides.priority import Priority, patience, purpose
from zfsync.sides.quota import Quota
from zfsync.sync.engine import zalo_interval


class Time:
    """A monotonic clock and a wall clock that move only when a quota sleeps (or the test says)."""

    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self.now = 0.0
        self.wall0 = wall
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.wall0 + self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def quota(limit: int, t: Time, minute_windows: bool = False) -> Quota:
    return Quota("zalo", limit, t.clock, t.wall, t.sleep, minute_windows=minute_windows)


def spend_until_refused(q: Quota, priority: Priority) -> int:
    spent = 0
    while q.available(priority):
        q.acquire(priority)
        spent += 1
    return spent


def fill(q: Quota, t: Time, priority: Priority) -> int:
    """Spend all ``priority`` may over 59 seconds of one window, second by second."""
    spent = 0
    for second in range(59):
        t.now = float(second)
        spent += spend_until_refused(q, priority)
    return spent


def test_a_window_holds_the_limit_for_a_minute_then_frees_it():
    t = Time()
    q = quota(60, t)
    assert spend_until_refused(q, Priority.SEND) == 54  # sends may spend the window at once, less the feed's floor
    t.now = 59.0
    assert q.available(Priority.SEND) == 0
    t.now = 60.0
    assert q.available(Priority.SEND) == 54
    t.now = 10.0  # a clock that went back blocks nothing
    assert q.available(Priority.SEND) == 54


@pytest.mark.parametrize(
    ("priority", "stops_at"),
    [(Priority.SEND, 90), (Priority.FEED, 91), (Priority.CATCHUP, 90), (Priority.PROFILE, 85)],  # feed: its pace
)
def test_each_priority_leaves_the_last_requests_to_those_above_it(priority, stops_at):
    t = Time()
    q = quota(100, t)
    assert fill(q, t, priority) == stops_at
    for higher in Priority:
        if higher < priority:
            assert q.available(higher) > 0


def test_a_full_window_for_low_priority_still_lets_a_send_through_at_once():
    t = Time()
    q = quota(100, t)
    fill(q, t, Priority.CATCHUP)
    with purpose(Priority.SEND):
        q.acquire()  # the purpose of the work, not an argument, picks the priority
    assert t.slept == []
    q.acquire(Priority.CATCHUP)  # waits for the window to free a request
    assert t.slept and t.now >= 60.0


def test_below_send_spending_is_spread_over_the_minute():
    t = Time()
    q = quota(120, t)
    assert spend_until_refused(q, Priority.FEED) == 3  # two seconds' worth, less a send's share: not 114
    q.acquire(Priority.FEED)
    assert 0 < t.now < 1.0  # then at the rate that spends the rest of a minute's share in 60 s: under 2 a second


def test_paced_work_never_fills_the_window_so_it_never_stalls_at_the_minute_end():
    t = Time()
    q = quota(120, t)
    stamps = [q.acquire(Priority.FEED) for _ in range(600)]  # a poller that always wants more
    per_minute = max(sum(1 for s in stamps if start <= s < start + 60) for start in stamps)
    assert per_minute <= 120
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1.0  # evenly spaced: never a pause until the window frees up


def test_a_burst_of_sends_slows_the_feed_down_instead_of_stalling_it_at_the_window_end():
    t = Time()
    q = quota(200, t)
    for n in range(100):  # a few seconds in, users and conversations made and the first posts, over ten seconds
        t.now = 5 + n / 10
        q.acquire(Priority.SEND)
    stamps = [q.acquire(Priority.FEED) for _ in range(400)]  # a poller that always wants more
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) < 1.0  # polls slow down for the minute the sends stay in the window (it was a 22 s stall)


def test_a_send_never_waits_behind_a_waiting_catch_up():
    t = Time()
    napping, release = threading.Event(), threading.Event()

    def nap(seconds: float) -> None:  # a wait that holds its thread until the test lets it go
        napping.set()
        release.wait(5)

    q = Quota("zalo", 20, t.clock, t.wall, nap)
    spend_until_refused(q, Priority.CATCHUP)
    waiter = threading.Thread(target=q.acquire, args=(Priority.CATCHUP,))
    waiter.start()
    assert napping.wait(5)
    q.acquire(Priority.SEND)  # returns at once while the catch-up call waits
    t.now = 61.0
    release.set()
    waiter.join(5)
    assert not waiter.is_alive()


def test_sends_that_never_stop_still_leave_the_feed_its_floor_every_minute():
    # A backlog of customer messages (sends) must not blind the bridge to agents' replies (the feed).
    t = Time()
    q = quota(200, t)
    feed_per_minute = [0, 0, 0]
    for second in range(180):
        t.now = float(second)
        spend_until_refused(q, Priority.SEND)
        feed_per_minute[second // 60] += spend_until_refused(q, Priority.FEED)
    assert all(spent >= 20 for spent in feed_per_minute)  # 10 % of 200, whatever the sends took of the bucket
    assert spend_until_refused(q, Priority.SEND) == 0  # and the sends had the rest


def test_a_call_with_little_patience_gives_up_instead_of_waiting_out_the_window():
    t = Time()
    q = quota(100, t)
    fill(q, t, Priority.FEED)
    spend_until_refused(q, Priority.SEND)  # the window is full until its first request lapses, at 60 s
    assert t.now == 58.0
    with patience(1.0), pytest.raises(NoRoom, match="within 1 s"):
        q.acquire(Priority.FEED)
    assert t.now == 58.0  # it did not sleep first: room comes in 2 s, beyond its patience
    q.acquire(Priority.FEED)  # without a patience, the call waits for the window
    assert t.now >= 60.0


def test_the_headers_lower_the_limit_and_what_remains_is_never_overspent():
    t = Time(wall=1_800_000_000.0 + 45)  # 45 s into a minute
    q = quota(4000, t, minute_windows=True)
    q.observe(limit=100, remaining=None)
    assert q.limit == 100 and q.snapshot().learned
    q.observe(limit=100, remaining=3)
    assert q.available(Priority.SEND) == 3
    assert q.available(Priority.FEED) == 0  # the last few are for sends
    t.now = 15.0  # Zalo's window resets at the minute
    assert q.available(Priority.SEND) == 90  # the rest of the window is the feed's floor
    q.observe(limit=8000, remaining=None)
    assert q.limit == 4000  # the configuration is a ceiling


def test_what_remains_excludes_the_requests_made_after_the_one_answered():
    t = Time()
    q = quota(100, t)
    with q.request(Priority.SEND):  # a request is on its way ...
        t.now = 1.0
        q.acquire(Priority.SEND)  # ... another leaves before its answer comes back ...
        q.observe(limit=100, remaining=2)  # ... which counted the first one only
    assert q.available(Priority.SEND) == 1  # not 2: the second will be counted too when it arrives


def test_a_refusal_holds_every_call_until_the_minute_ends_not_a_blanket_minute():
    t = Time(wall=1_800_000_000.0 + 50)
    q = quota(100, t, minute_windows=True)
    assert q.refused(60.0, explicit=False) == pytest.approx(10.0)  # not the client's default
    assert q.available(Priority.SEND) == 0
    q.acquire(Priority.SEND)
    assert t.now == pytest.approx(10.0)
    assert q.snapshot().refusals == 1 and q.snapshot().waits == 1
    assert q.refused(3.0) == 3.0  # the side's own Retry-After wins


@pytest.mark.parametrize(
    ("configured", "limit", "interval"),
    [(2.0, 4000, 2.0), (2.0, 100, 2.0), (2.0, 50, 4.0), (2.0, 20, 10.0), (5.0, 100, 5.0)],
)
def test_the_zalo_poll_interval_stretches_when_the_quota_cannot_carry_it(configured, limit, interval):
    assert zalo_interval(configured, limit) == interval


def test_a_refusal_without_headers_teaches_a_limit_for_a_while_unless_it_came_too_early():
    t = Time()
    q = quota(4000, t)
    for _ in range(3):
        q.acquire(Priority.SEND)
    q.refused(1.0)
    assert q.limit == 4000  # refused after 3 requests: the server's trouble, not the quota
    t.now = 2.0
    for _ in range(21):
        q.acquire(Priority.SEND)
    q.refused(1.0)
    assert q.limit == 23  # fewer than the 24 made in the last minute, counting the first three
    t.now = 2.0 + 901
    assert q.limit == 4000  # forgotten after a quarter of an hour


def test_requests_refused_together_teach_one_limit_not_one_each():
    t = Time(wall=1_800_000_000.0 + 30)
    q = quota(4000, t, minute_windows=True)
    sent = [q.acquire(Priority.CATCHUP) for _ in range(20)]  # the side allows 15: 5 were in flight together
    for stamp in sent[15:]:
        q.refused(60.0, explicit=False, sent_at=stamp)  # none of the five counted for the side
        t.now += 40.0  # answers may come back late, after the window has moved on
    assert q.limit == 15
    assert q.snapshot().refusals == 5


def test_an_import_spends_only_from_a_bucket_half_full_so_the_polls_keep_their_bursts():
    t = Time()
    q = quota(400, t)
    capacity = spend_until_refused(q, Priority.FEED)  # what the polls may spend at once
    t.now = 60.0  # a new window, the bucket full again
    imported = spend_until_refused(q, Priority.HISTORY)
    assert 0 < imported <= (capacity + 1) // 2
    assert spend_until_refused(q, Priority.FEED) >= capacity // 2 - 1  # what it left is the polls'


def test_an_import_gets_its_share_every_minute_however_much_the_polls_want():
    # A busy desk: polls, catch-ups and profile checks ask for all they may, second by second.
    t = Time()
    q = quota(400, t)
    imported_per_minute = [0, 0, 0]
    for second in range(180):
        t.now = float(second)
        imported_per_minute[second // 60] += spend_until_refused(q, Priority.HISTORY)
        for priority in (Priority.FEED, Priority.CATCHUP, Priority.PROFILE):
            spend_until_refused(q, priority)
    assert all(spent >= 40 for spent in imported_per_minute)  # 10 % of 400, spread over the minute
    assert spend_until_refused(q, Priority.SEND) > 0  # a send still goes at once


def test_the_polls_leave_the_imports_share_only_while_it_asks_for_room():
    def polled(import_asks_until: float) -> int:
        t = Time()
        q = quota(400, t)
        spent = 0
        for second in range(120):
            t.now = float(second)
            if second < import_asks_until:
                q.available(Priority.HISTORY)  # it asks (and would spend, were there room)
            if second >= 60:
                spent += spend_until_refused(q, Priority.CATCHUP)
        return spent

    alone = polled(import_asks_until=0)
    assert polled(import_asks_until=40) == alone  # its last ask long past: it has no work, nothing is kept
    assert polled(import_asks_until=120) <= alone - 40  # asking all along: its 10 % is left to it


def test_sends_and_an_import_together_still_leave_the_feed_its_floor():
    t = Time()
    q = quota(200, t)
    feed_per_minute, imported_per_minute = [0, 0, 0], [0, 0, 0]
    for second in range(180):
        t.now = float(second)
        spend_until_refused(q, Priority.SEND)
        imported_per_minute[second // 60] += spend_until_refused(q, Priority.HISTORY)
        feed_per_minute[second // 60] += spend_until_refused(q, Priority.FEED)
    # 10 % of 200 each, whatever the sends took: the feed's floor, and the import's share while it has work.
    assert all(spent >= 20 for spent in feed_per_minute) and all(n >= 20 for n in imported_per_minute[1:])
