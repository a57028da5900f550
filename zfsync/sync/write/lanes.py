"""Delivery lanes: each direction's sends kept going, with no customer waiting for another.

A lane keeps up to `WORKERS` sends in flight, each to a different contact: only a contact's head row is
offered, and never while one of its rows is in flight, so per-contact order holds. A worker that finishes
takes the next due head at once (there is no batch to wait for), so a slow download or upload holds one
worker, never the others. Attachment work (a download, then an upload) may hold at most `HEAVY_WORKERS`
of them: texts never queue behind media. Imported history (`zfsync.sync.read.history`) holds at most
`HISTORY_WORKERS`, spent at the budget's lowest priority: live messages never queue behind it.

The daemon runs a lane with `serve`: one `turn` after another (a look at the queue that starts what is
due), sleeping in between until a row falls due, a poll queues rows (`wake`) or a send ends. Tests and
benchmarks call the same `turn` on a lane without threads (``threads=False``), whose sends run in the
caller's thread: what is due is delivered when the turn returns.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from zfsync import i18n
from zfsync.domain import OutboxRow
from zfsync.domain.errors import AuthError, RateLimited, RemoteError, Stopping
from zfsync.sides.priority import Priority, patience, purpose
from zfsync.sync.seams import Outbox
from zfsync.sync.write.delivery import Deliverer, Writer

log = structlog.get_logger("zfsync.sync")

WORKERS = 8  # sends in flight at once per direction, each to a different contact
HEAVY_WORKERS = 4  # of them, at most this many copying attachments
HISTORY_WORKERS = 2  # and at most this many posting imported history ...
HISTORY_PATIENCE = 6.0  # ... each waiting at most this long for room (its share comes every 60 / (10 % of the limit) s)
# Seconds at most between two looks at what is due when nothing woke the lane: rows this daemon queues wake
# it at once, so this bounds only what another process did (`zfsync retry`, `requeue`...). Each look is a
# statement; a fleet's daemon makes it for every tenant, two lanes and a FreshChat loop each.
RECHECK = 15.0
CRASH_PAUSE = 5.0  # seconds a lane rests after an error nobody classified (a bug, a failing store)
SLOW = 60.0  # seconds in flight after which a delivery is shown in `zfsync status`


@dataclass(frozen=True)
class Turn:
    """What one look at the queue did: ``begun`` sends started (done, on a lane without threads); with
    none, ``wait`` seconds until another look is worth it, and what this one found (``quiet``)."""

    begun: int
    wait: float = 0.0
    quiet: Quiet | None = None


@dataclass(frozen=True)
class Flight:
    """One send in flight, as `zfsync status` shows a slow one."""

    row_id: int
    contact_id: int
    kind: str
    heavy: bool
    started: float  # monotonic
    history: bool = False


class Slots:
    """Sends in flight across many desks' lanes (a fleet's daemon): at most ``limit`` at once. Each lane
    keeps its own workers as its cap, so one desk's slow sends hold at most its own share; the bound
    keeps a daemon of many desks within its threads and connections. A lane that found none free is woken
    when one is given back."""

    def __init__(self, limit: int):
        self.limit = limit
        self._taken = 0
        self._waiting: set[Lane] = set()
        self._lock = threading.Lock()

    def take(self, lane: Lane) -> bool:
        with self._lock:
            if self._taken < self.limit:
                self._taken += 1
                self._waiting.discard(lane)
                return True
            self._waiting.add(lane)
            return False

    def give(self) -> None:
        with self._lock:
            self._taken -= 1
            waiting, self._waiting = self._waiting, set()
        for lane in waiting:
            lane.wake()

    @property
    def taken(self) -> int:
        return self._taken


class Lane:
    def __init__(
        self,
        direction: str,
        queue: Outbox,
        deliverer: Deliverer,
        writer: Writer,
        clock: Callable[[], float],
        on_trouble: Callable[[RemoteError], None],
        paused_for: Callable[[], float],
        workers: int = WORKERS,
        heavy_workers: int = HEAVY_WORKERS,
        monotonic: Callable[[], float] = time.monotonic,
        on_done: Callable[[], None] | None = None,
        on_crash: Callable[[Exception], float] | None = None,
        threads: bool = True,
        slots: Slots | None = None,
    ):
        """``paused_for()``: seconds the lane's side is still left alone (after a refusal); ``on_trouble``
        is told of a refusal that concerns the whole side; ``on_done`` after each send ends (the engine
        wakes the others); ``on_crash`` of an error nobody classified (a bug, a failing store), and returns
        the seconds to rest; ``threads``: sends run on the lane's workers (the daemon), or in the thread
        that takes the turn (tests, benchmarks); ``slots``: the sends in flight it shares with other
        desks' lanes (a fleet's daemon)."""
        self.slots = slots
        self.direction = direction
        self.deliverer = deliverer
        self.queue = queue  # the rows to send, and the mark that says the outbox moved
        self.writer = writer
        self.clock = clock
        self.on_trouble = on_trouble
        self.paused_for = paused_for
        self.workers = workers
        self.heavy_workers = min(heavy_workers, workers)
        self.monotonic = monotonic
        self.threads = threads
        self.on_done = on_done or (lambda: None)
        self.on_crash = on_crash or self._crashed
        # The workers speak the language of the thread that made the lane: a fleet's desk's, not the process's.
        self._pool = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix=f"deliver-{direction}",
            initializer=i18n.use_here,
            initargs=(i18n.current(),),
        )
        self._flights: dict[int, Flight] = {}  # contact id -> its send in flight
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._rest_until = 0.0  # monotonic: after a crash, the lane rests until then
        self.sent = 0  # sends made: what a benchmark counts
        self._fatal: BaseException | None = None  # not an Exception (a test's simulated kill): ends the turn

    def wake(self) -> None:
        """Rows may have been queued: look at what is due now."""
        self._changed.set()

    def flights(self) -> list[Flight]:
        with self._lock:
            return list(self._flights.values())

    # --- running -----------------------------------------------------------------------------------

    def turn(self, quiet: Quiet | None = None) -> Turn:
        """One look at the queue: start the due heads that free workers may take. After a look that found
        nothing due (``quiet``), the queue is read again only once the outbox's mark moved (rows queued by
        a part of the daemon that does not wake the lane, or by another process) or its next row fell due;
        the mark costs two index lookups, the queue a grouped pass over the open rows."""
        if quiet is not None and quiet.holds(self.queue.outbox_mark(), self.clock()):
            return Turn(0, quiet.wait(self.clock()), quiet)
        begun, blocked = self._dispatch()
        fatal, self._fatal = self._fatal, None
        if fatal is not None and not self.threads:
            raise fatal  # what stands for the process dying (a test's kill) ends the turn too
        if begun:
            return Turn(begun)
        if blocked:
            return Turn(0, RECHECK)
        wait, found = self._idle_look()
        return Turn(0, wait, found)

    def serve(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set: one `turn` after another, sleeping while nothing is due."""
        quiet: Quiet | None = None
        while not stop.is_set():
            self._changed.clear()
            try:
                turn = self.turn(quiet)
                if turn.begun:
                    quiet = None
                    continue
                wait, quiet = turn.wait, turn.quiet
            except Exception as exc:
                quiet = None
                wait = self.on_crash(exc)
                self._rest_until = self.monotonic() + wait
            if self._changed.wait(wait):
                quiet = None  # woken: rows were queued, or a send ended

    def close(self, wait: bool = True) -> None:
        self._changed.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # --- dispatching -------------------------------------------------------------------------------

    def _resting(self) -> float:
        return max(self.paused_for(), self._rest_until - self.monotonic(), 0.0)

    def _dispatch(self) -> tuple[int, bool]:
        """Start the due heads that free workers may take; returns how many began, and whether a due head
        had to wait for a worker (it starts when a send ends, which wakes the lane)."""
        if self._resting() > 0:
            return 0, False
        with self._lock:
            busy = dict(self._flights)
        free = self.workers - len(busy)
        if free <= 0:
            return 0, True
        heavy_free = self.heavy_workers - sum(f.heavy for f in busy.values())
        history_free = HISTORY_WORKERS - sum(f.history for f in busy.values())
        # More heads than free workers: some may be attachments while the attachment workers are all taken.
        heads = self.queue.due_heads(self.direction, self.clock(), limit=free + WORKERS, exclude=busy)
        begun, blocked = 0, False
        for row in heads:
            if begun >= free:
                return begun, True
            if row.history and history_free <= 0:
                blocked = True  # live rows are listed first; the rest of the history waits for its workers
                continue
            heavy = self.writer.heavy(row)
            if heavy and heavy_free <= 0:
                blocked = True
                continue
            if self.slots is not None and not self.slots.take(self):
                return begun, True  # the daemon's bound: woken when another desk's send ends
            heavy_free -= heavy
            history_free -= row.history
            self._start(row, heavy)
            begun += 1
        return begun, blocked

    def _start(self, row: OutboxRow, heavy: bool) -> None:
        flight = Flight(row.id, row.contact_id, row.kind, heavy, self.monotonic(), row.history)
        with self._lock:
            self._flights[row.contact_id] = flight
        if not self.threads:
            self._fly(row)
            return
        try:
            self._pool.submit(self._fly, row)
        except RuntimeError:  # the pool is shut down: the daemon is stopping
            with self._lock:
                self._flights.pop(row.contact_id, None)
            if self.slots is not None:
                self.slots.give()

    def _fly(self, row: OutboxRow) -> None:
        try:
            # Messages go first in both sides' budgets; imported history after everything else, and it does
            # not hold a worker while it waits for what the rest leaves it.
            with (
                purpose(Priority.HISTORY if row.history else Priority.SEND),
                patience(HISTORY_PATIENCE) if row.history else contextlib.nullcontext(),
            ):
                sent = self.deliverer.deliver(self.direction, row, self.writer)
            with self._lock:
                self.sent += sent
        except (RateLimited, AuthError) as exc:
            self.on_trouble(exc)  # the whole side's trouble: it is paused, and this row waits with the rest
        except Stopping:
            log.info("delivery_interrupted", direction=self.direction, row=row.id)  # reconciled at the next start
        except Exception as exc:
            # A bug or a failing store: the row stays claimed, so it is reconciled before any new attempt.
            self._rest_until = self.monotonic() + self.on_crash(exc)
        except BaseException as exc:
            self._fatal = exc
        finally:
            with self._lock:
                self._flights.pop(row.contact_id, None)
            if self.slots is not None:
                self.slots.give()
            self._changed.set()
            self.on_done()

    def _crashed(self, exc: Exception) -> float:
        log.error("delivery_crashed", direction=self.direction, exc_info=exc)
        return CRASH_PAUSE

    def _idle_look(self) -> tuple[float, Quiet | None]:
        """How long to sleep when nothing could start, and what this look found (None while resting)."""
        resting = self._resting()
        if resting > 0:
            return min(resting, RECHECK), None
        with self._lock:
            busy: Collection[int] = list(self._flights)
        mark = self.queue.outbox_mark()  # read first: a row queued after it moves it
        quiet = Quiet(mark, self.queue.next_due_head(self.direction, exclude=busy))
        return quiet.wait(self.clock()), quiet


@dataclass(frozen=True)
class Quiet:
    """What a look that started nothing found: the outbox at ``mark``, and its next head due at ``due``
    (None: no open row)."""

    mark: tuple[int, str]
    due: float | None

    def holds(self, mark: tuple[int, str], now: float) -> bool:
        return mark == self.mark and (self.due is None or self.due > now)

    def wait(self, now: float) -> float:
        return RECHECK if self.due is None else min(RECHECK, max(0.0, self.due - now))
