"""Delivery lanes on a real store, with a writer whose sends the test holds and releases: work-conserving,
per-contact order, the attachment cap, waking, sleeping until the next due row, side trouble."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from zfsync.domain import Z2F, OutboxRow, ZaloContent
from zfsync.domain.errors import NoRoom, RateLimited
from zfsync.store import NewRow, Store
from zfsync.sync.write import lanes
from zfsync.sync.write.delivery import Deliverer, Sent
from zfsync.sync.write.lanes import HISTORY_WORKERS, RECHECK, Lane, Quiet

WAIT = 10.0  # seconds a test waits for a thread to get somewhere: far beyond what it takes


@dataclass
class HeldSend:
    """One row's send: it starts, then waits until the test releases it."""

    row: OutboxRow
    writer: Writer

    def reconcile(self) -> Sent | None:
        return None

    def send(self) -> Sent:
        writer = self.writer
        with writer.lock:
            writer.started.append(self.row.source_id)
            writer.in_flight.add(self.row.contact_id)
            writer.most_in_flight = max(writer.most_in_flight, len(writer.in_flight))
            gate = writer.gates.setdefault(self.row.source_id, threading.Event())
            writer.changed.notify_all()
        if self.row.source_id in writer.held:
            assert gate.wait(WAIT), f"{self.row.source_id} was never released"
        if self.row.source_id in writer.refuse:
            raise RateLimited("rate limited", retry_after=30, side="freshchat", endpoint="/v2/x")
        if self.row.source_id in writer.no_room:
            raise NoRoom("freshchat: no room in the quota within 1 s")
        with writer.lock:
            writer.in_flight.discard(self.row.contact_id)
            writer.done.append(self.row.source_id)
            writer.changed.notify_all()
        return Sent(f"dest-{self.row.source_id}")

    def gave_up(self, error, now) -> None:  # pragma: no cover - no send here fails for good
        raise AssertionError(error)


@dataclass
class Writer:
    held: set[str] = field(default_factory=set)  # source ids whose send waits for `release`
    refuse: set[str] = field(default_factory=set)  # source ids answered "rate limited"
    no_room: set[str] = field(default_factory=set)  # source ids whose budget had no room in time
    started: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    in_flight: set[int] = field(default_factory=set)
    most_in_flight: int = 0
    gates: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def action(self, row: OutboxRow) -> HeldSend:
        return HeldSend(row, self)

    def heavy(self, row: OutboxRow) -> bool:
        return row.kind == "photo"

    def release(self, source_id: str) -> None:
        with self.lock:
            self.gates.setdefault(source_id, threading.Event()).set()

    def wait_for(self, condition) -> None:
        with self.lock:
            assert self.changed.wait_for(condition, WAIT), f"started {self.started}, done {self.done}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "zfsync.db")
    yield store
    store.close()


def queue(store: Store, user: str, *messages: tuple[str, str], at: float = 0.0) -> None:
    rows = [
        NewRow(Z2F, source_id, kind, ZaloContent("text", source_id), at + i)
        for i, (source_id, kind) in enumerate(messages)
    ]
    store.record_zalo_messages(user, user, "", rows, cursor=(1, messages[-1][0]), last_inbound_ms=1, now=at)


def lane_of(store: Store, writer: Writer, clock: Clock, **kwargs) -> tuple[Lane, list[Exception]]:
    troubles: list[Exception] = []
    paused = [0.0]

    def trouble(exc: Exception) -> None:
        troubles.append(exc)
        paused[0] = 30.0

    lane = Lane(Z2F, store, Deliverer(store, clock, 5), writer, clock, trouble, lambda: paused[0], **kwargs)
    return lane, troubles


def delivered(lane: Lane) -> int:
    """The lane's turns until one starts nothing (the daemon's `serve` takes the same, with threads);
    returns the sends made."""
    before = lane.sent
    while lane.turn().begun:
        pass
    return lane.sent - before


def serving(lane: Lane) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=lane.serve, args=(stop,), daemon=True).start()
    return stop


def test_a_held_send_keeps_no_other_contact_waiting_and_its_own_contact_in_order(store):
    writer, clock = Writer(held={"a1"}), Clock()
    queue(store, "a", ("a1", "text"), ("a2", "text"))
    queue(store, "b", ("b1", "text"), ("b2", "text"), ("b3", "text"))
    lane, _ = lane_of(store, writer, clock)
    stop = serving(lane)
    # One after another, while a1 is held (its worker may be slower to begin than b's three sends).
    writer.wait_for(lambda: writer.done == ["b1", "b2", "b3"] and "a1" in writer.started)
    assert sorted(writer.started) == ["a1", "b1", "b2", "b3"]
    assert "a2" not in writer.started  # behind its own contact's head, never beside it
    queue(store, "c", ("c1", "text"), at=5.0)
    lane.wake()
    writer.wait_for(lambda: "c1" in writer.done)
    writer.release("a1")
    writer.wait_for(lambda: writer.done[-2:] == ["a1", "a2"])
    stop.set()
    lane.close()
    assert writer.most_in_flight <= 2  # one send per contact at a time


def test_attachments_hold_at_most_their_share_of_the_workers_and_texts_still_go(store):
    writer, clock = Writer(held={f"p{n}" for n in range(4)}), Clock()
    for n in range(4):
        queue(store, f"photo{n}", (f"p{n}", "photo"))
    queue(store, "texter", ("t1", "text"), ("t2", "text"), at=10.0)
    lane, _ = lane_of(store, writer, clock, workers=4, heavy_workers=2)
    stop = serving(lane)
    # The texts pass the held photos; the second photo's worker may reach its send after they are done.
    writer.wait_for(lambda: writer.done == ["t1", "t2"] and sum(s.startswith("p") for s in writer.started) >= 2)
    assert sorted(s for s in writer.started if s.startswith("p")) == ["p0", "p1"]  # two of four workers
    writer.release("p0")
    writer.wait_for(lambda: "p2" in writer.started)  # a freed attachment worker takes the next photo at once
    for n in range(1, 4):
        writer.release(f"p{n}")
    writer.wait_for(lambda: len(writer.done) == 6)
    stop.set()
    lane.close()


def test_turns_deliver_what_is_due_and_stop_at_what_is_not(store):
    writer, clock = Writer(), Clock()
    for n in range(20):
        queue(store, f"u{n}", (f"m{n}a", "text"), (f"m{n}b", "text"))
    queue(store, "later", ("l1", "text"), at=clock.now + 60)
    store.postpone(store.due_heads(Z2F, 2000.0, 100)[-1].id, clock.now + 60, "", "", outcome_unknown=False)
    lane, _ = lane_of(store, writer, clock, threads=False)
    assert delivered(lane) == 40
    assert len(writer.done) == 40 and lane.flights() == []


def test_a_side_refusing_pauses_the_lane_and_the_rows_wait(store):
    writer, clock = Writer(refuse={"a1"}), Clock()
    queue(store, "a", ("a1", "text"))
    queue(store, "b", ("b1", "text"), at=100.0)
    lane, troubles = lane_of(store, writer, clock, workers=1, threads=False)
    delivered(lane)
    assert [type(t) for t in troubles] == [RateLimited]
    assert writer.started == ["a1"]  # paused: b1 waits with the rest until the side takes requests again
    # a1 is put back, to be tried again once the side's wait is over
    assert [r.source_id for r in store.due_heads(Z2F, clock.now, 10)] == ["b1"]
    assert sorted(r.source_id for r in store.due_heads(Z2F, clock.now + 31, 10)) == ["a1", "b1"]


def test_an_idle_lane_sleeps_until_the_next_row_falls_due(store):
    writer, clock = Writer(), Clock()
    lane, _ = lane_of(store, writer, clock, threads=False)
    turn = lane.turn()
    wait, quiet = turn.wait, turn.quiet
    assert wait == RECHECK  # nothing waits: look again now and then (rows another process queued)
    assert quiet is not None and quiet.holds(store.outbox_mark(), clock.now)
    queue(store, "a", ("a1", "text"))
    assert not quiet.holds(store.outbox_mark(), clock.now)  # a row queued, by whoever: look at the queue
    (head,) = store.due_heads(Z2F, clock.now, 10)
    store.postpone(head.id, clock.now + 3.0, "busy", "", outcome_unknown=False)
    turn = lane.turn()
    wait, quiet = turn.wait, turn.quiet
    assert wait == pytest.approx(3.0) and quiet is not None
    assert quiet.holds(store.outbox_mark(), clock.now + 2.9)
    assert not quiet.holds(store.outbox_mark(), clock.now + 3.0)  # the row falls due
    store.requeue_open([head.id])  # an operator's `zfsync requeue`, from another process
    assert not quiet.holds(store.outbox_mark(), clock.now)
    assert delivered(lane) == 1


@pytest.mark.parametrize(
    ("mark", "due", "now", "holds", "wait"),
    [
        ((7, ""), None, 100.0, True, RECHECK),
        ((8, ""), None, 100.0, False, RECHECK),  # a newer row
        ((7, "1796306220.1"), None, 100.0, False, RECHECK),  # rows put back in line
        ((7, ""), 102.0, 100.0, True, 2.0),
        ((7, ""), 100.0, 100.0, False, 0.0),  # due now
        ((7, ""), 200.0, 100.0, True, RECHECK),  # far off: the mark is still looked at now and then
    ],
)
def test_a_quiet_look_holds_until_the_outbox_moves_or_a_row_falls_due(mark, due, now, holds, wait):
    quiet = Quiet((7, ""), due)
    assert quiet.holds(mark, now) is holds
    assert quiet.wait(now) == pytest.approx(wait)


def test_a_crash_of_the_writer_rests_the_lane_instead_of_spinning(store):
    class Broken(Writer):
        def action(self, row):
            raise OSError("disk I/O error")

    clock = Clock()
    queue(store, "a", ("a1", "text"))
    lane, _ = lane_of(store, Broken(), clock, threads=False)
    assert lane.turn().begun == 1
    rest = lane.turn()
    assert rest.begun == 0 and rest.wait > 0  # the lane waits a while, and the row stays claimed, to be reconciled
    assert store.due_heads(Z2F, clock.now, 10)[0].status == "sending"


def imported(store: Store, user: str, *source_ids: str) -> None:
    rows = [
        NewRow(Z2F, source_id, "text", ZaloContent("text", source_id), float(i), history=True)
        for i, source_id in enumerate(source_ids)
    ]
    store.record_history(user, user, "", rows, (1, 0), 0.0)


def test_imported_history_holds_at_most_its_workers_and_live_messages_pass_it(store):
    history = [f"h{n}" for n in range(5)]
    writer, clock = Writer(held=set(history)), Clock()
    for source_id in history:
        imported(store, f"user-{source_id}", source_id)
    lane, _ = lane_of(store, writer, clock)
    stop = serving(lane)
    writer.wait_for(lambda: len(writer.started) == HISTORY_WORKERS)
    queue(store, "live", ("l1", "text"), ("l2", "text"), at=5.0)
    lane.wake()
    writer.wait_for(lambda: writer.done == ["l1", "l2"])  # past the import's held sends, one after another
    assert len(writer.started) == HISTORY_WORKERS + 2  # no third history send began meanwhile
    for source_id in history:
        writer.release(source_id)
    writer.wait_for(lambda: sorted(writer.done) == sorted(["l1", "l2", *history]))
    stop.set()
    lane.close()


def test_a_history_send_without_room_goes_back_in_line_uncounted(store):
    writer, clock = Writer(no_room={"k0"}), Clock()
    imported(store, "u", "k0", "k1")
    lane, troubles = lane_of(store, writer, clock, threads=False)
    assert delivered(lane) == 0
    row = next(r for r in store.open_rows() if r.last_error)  # k0; k1 waits behind it
    assert (row.status, row.attempts, troubles) == ("pending", 0, [])
    assert "waiting for room" in row.last_error
    assert store.due_heads(Z2F, clock(), 10) == []  # it comes back in two seconds, not at once
    writer.no_room.clear()
    clock.now += 2.0
    assert delivered(lane) == 2 and writer.done == ["k0", "k1"]


def test_a_serving_lane_with_nothing_due_reads_the_mark_not_the_queue(store, monkeypatch):
    monkeypatch.setattr(lanes, "RECHECK", 0.001)  # looks come at once: the count, not the time, is checked
    writer, clock = Writer(), Clock()
    lane, _ = lane_of(store, writer, clock)
    looks = {"queue": 0, "mark": 0}
    enough = threading.Event()
    read_queue, read_mark = store.due_heads, store.outbox_mark

    def due_heads(*args, **kwargs):
        looks["queue"] += 1
        return read_queue(*args, **kwargs)

    def outbox_mark():
        looks["mark"] += 1
        if looks["mark"] >= 20:
            enough.set()
        return read_mark()

    monkeypatch.setattr(store, "due_heads", due_heads)
    monkeypatch.setattr(store, "outbox_mark", outbox_mark)
    stop = serving(lane)
    assert enough.wait(WAIT)
    assert looks["queue"] == 1  # the first look found nothing; since then only the mark was read
    queue(store, "b", ("b1", "text"))  # as reminders or another process queue: nobody wakes the lane
    writer.wait_for(lambda: "b1" in writer.done)
    stop.set()
    lane.close()
    assert looks["queue"] >= 2


def test_desks_sharing_a_bound_on_sends_in_flight_keep_to_it_and_wake_each_other(tmp_path):
    """A fleet's daemon: lanes of two desks share `Slots`. A desk whose sends hang holds at most its own
    workers; the other desk's sends go on while the bound has room, and wait for a slot when it has none."""
    first, second = Store.open(tmp_path / "a.db"), Store.open(tmp_path / "b.db")
    try:
        slow, calm, clock = Writer(held={"a1", "a2", "a3"}), Writer(held={"b2"}), Clock()
        for n in (1, 2, 3):
            queue(first, f"a{n}", (f"a{n}", "text"))
        queue(second, "b1", ("b1", "text"))
        slots = lanes.Slots(3)
        lane_a, _ = lane_of(first, slow, clock, workers=2, slots=slots)
        lane_b, _ = lane_of(second, calm, clock, slots=slots)
        stops = [serving(lane_a), serving(lane_b)]
        slow.wait_for(lambda: len(slow.started) == 2)  # its cap, not the bound
        calm.wait_for(lambda: calm.done == ["b1"])  # the third slot: the calm desk is not held up
        queue(second, "b2", ("b2", "text"), at=5.0)
        lane_b.wake()
        calm.wait_for(lambda: calm.started == ["b1", "b2"])  # b2 hangs: now every slot is taken
        queue(second, "b3", ("b3", "text"), at=6.0)  # another customer's: it waits for a slot, not for b2
        lane_b.wake()
        assert _soon(lambda: lane_b in slots._waiting)  # the lane looked, found the bound reached
        assert slots.taken == 3 and calm.started == ["b1", "b2"]
        calm.release("b2")
        calm.wait_for(lambda: calm.done == ["b1", "b2", "b3"])  # woken by the slot b2 gave back
        slow.release("a1")
        slow.wait_for(lambda: "a3" in slow.started)  # a freed slot and worker: the slow desk's next
        for source in ("a2", "a3"):
            slow.release(source)
        slow.wait_for(lambda: len(slow.done) == 3)
        for stop in stops:
            stop.set()
        lane_a.close()
        lane_b.close()
        assert slots.taken == 0
    finally:
        first.close()
        second.close()


def _soon(condition) -> bool:
    """Whether ``condition`` holds within `WAIT` (for a state no condition variable announces)."""
    pause = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return True
        pause.wait(0.01)
    return False
