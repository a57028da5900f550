"""One request budget per API side, shared by every call to it, with priorities.

Each side allows so many requests a minute (Zalo: 4,000 per app documented, as low as 100 on some OA
packages; FreshChat: undocumented). A `Quota` counts the requests of the last minute against the limit,
which is the configured ceiling until the side's ``X-RateLimit-*`` headers tell the real one, and it
never plans beyond what the side last said remains. Work is spent in priority order:

- `Priority.SEND`: agent replies and customer messages, their uploads, the token refresh;
- `Priority.FEED`: Zalo's change feed, FreshChat's conversation polls;
- `Priority.CATCHUP`: a user's own history read after a gap;
- `Priority.PROFILE`: name and avatar refreshes;
- `Priority.HISTORY`: an imported history (`zfsync import-history`), its reads and its posts.

Each priority below `SEND` leaves a few requests of the window to those above it, so a low-priority call
waits while a higher one goes at once: nobody queues behind anybody. Below `SEND`, spending is also paced
by a token bucket (about two seconds' worth saved up, refilled so that the saved-up requests plus a
minute's refill never fill the window), so polls are spread evenly and never burn a minute's budget in
one burst and then starve for the rest of it; the sends of the last minute slow the refill down, so the
lower priorities yield to them. One exception keeps a backlog from blinding the bridge: sends leave the
change feed a floor of the window (`admission.FEED_FLOOR`), which the feed may spend, spread over the minute,
however slow the refill. Without it, a catch-up of thousands of customer messages filled FreshChat's window
minute after minute, and no agent reply was found until the last of them was posted. Likewise an imported
history, last of all, is guaranteed `admission.HISTORY_SHARE` of the window while it has work (the sends, the polls,
the catch-up and the profiles leave it that, spread over the minute): under a busy desk whose traffic would
take every request, an import of 200 messages still ends, where it once waited hours for a bucket half full.

The sync core names the purpose of its work with `purpose(...)`, and how long a call may wait for room
with `patience(...)` (a poll would rather stop and come back than hold its job); the clients ask the
quota before every request and tell it what the side answered. A refusal (Zalo's -32, HTTP 429) holds
every call of the side until the window resets.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from zfsync.domain.errors import NoRoom, RateLimited, Stopping
from zfsync.sides.admission import WINDOW, Admission, reserve_of
from zfsync.sides.priority import Priority, current_patience, current_purpose, holding

MIN_LEARNED = 10  # a refusal after fewer requests than this in the minute teaches no limit (a server hiccup)
REFUSAL_MEMORY = 900.0  # seconds a limit taught by a refusal (not by headers) is kept

_sent_at: ContextVar[float | None] = ContextVar("zfsync_sent_at", default=None)  # of the request being answered


def next_minute(wall: float) -> float:
    """Seconds from ``wall`` to the next minute boundary: when Zalo's per-minute window resets."""
    return WINDOW - wall % WINDOW


@dataclass(frozen=True)
class Snapshot:
    """What `zfsync status` and the metrics show of a side's quota."""

    limit: int
    learned: bool  # the limit comes from the side's headers, not from the configuration
    used: int  # requests in the last minute
    remaining: int | None  # what the side last said remains, while that window lasts
    refusals: int  # rate-limit refusals since the daemon started
    waits: int  # calls that had to wait for room since the daemon started


class Quota:
    def __init__(
        self,
        side: str,
        ceiling: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        minute_windows: bool = False,
    ):
        """``ceiling``: requests a minute at most, whatever the headers say; ``minute_windows``: the side's
        window resets at each wall-clock minute (Zalo), so a count it reported lapses there."""
        self.side = side
        self.ceiling = ceiling
        self.clock = clock
        self.wall = wall
        self.minute_windows = minute_windows
        self._learned: int | None = None  # from the headers
        self._refusal_limit: int | None = None  # from a refusal without headers ...
        self._refusal_limit_until = 0.0  # ... kept until then (clock)
        self._admission = Admission(ceiling, clock())  # who may go now: the window's counts, shares, pacing
        self._remaining: int | None = None  # the side's last word on what remains ...
        self._remaining_until = 0.0  # ... valid until then (clock)
        self._blocked_until = 0.0  # after a refusal, nobody calls before then (clock)
        self._refusals = 0
        self._burst = 0  # refusals of the requests in flight when the side first refused ...
        self._burst_since = -math.inf  # ... which it did then (clock) ...
        self._burst_made = 0  # ... after so many requests in the minute before (the refused ones included)
        self._waits = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._sleep = sleep or self._nap
        self._stopping = False

    # --- planning ------------------------------------------------------------------------------------

    @property
    def learned_limit(self) -> int | None:
        """The side's own limit as its headers last said it (for Zalo, the app's, whoever else uses it)."""
        return self._learned

    @property
    def limit(self) -> int:
        limit = min(self.ceiling, self._learned) if self._learned else self.ceiling
        if self._refusal_limit and self.clock() < self._refusal_limit_until:
            limit = min(limit, self._refusal_limit)
        return limit

    def reserve(self, priority: Priority) -> int:
        """Requests of the window a call of ``priority`` leaves to the priorities above it."""
        return reserve_of(self.limit, priority)

    def available(self, priority: Priority | None = None) -> int:
        """How many requests of ``priority`` may be made now without waiting."""
        priority = current_purpose() if priority is None else priority
        with self._lock:
            now = self.clock()
            self._admission.wants(priority, now)
            if now < self._blocked_until:
                return 0
            return max(0, math.floor(min(self._admit(now).allowance(priority, now))))

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = self.clock()
            self._admission.forget(now)
            remaining = self._remaining if now < self._remaining_until else None
            used = len(self._admission.recent)
            return Snapshot(self.limit, self._learned is not None, used, remaining, self._refusals, self._waits)

    # --- spending ------------------------------------------------------------------------------------

    def acquire(self, priority: Priority | None = None) -> float:
        """Wait until a request of ``priority`` (default: the current purpose) may be made, and count it.
        Returns when (clock) it was counted."""
        priority = current_purpose() if priority is None else priority
        waited = False
        give_up_at = math.inf
        while True:
            if self._stopping:
                raise Stopping(f"{self.side}: zfsync is stopping; the call waiting for the quota is not made")
            with self._lock:
                now = self.clock()
                wait = self._take(priority, now)
                if wait <= 0:
                    return now
                if not waited:
                    self._waits += 1
                    waited = True
                    give_up_at = now + current_patience()
                if now + wait > give_up_at:
                    raise NoRoom(f"{self.side}: no room in the quota within {current_patience():g} s")
            self._sleep(wait)

    @contextmanager
    def request(self, priority: Priority | None = None) -> Iterator[None]:
        """One request to the side: waits for room and counts it; if the side refuses it for the rate, holds
        the side (see `refused`) and sets the error's ``retry_after`` to the wait."""
        sent_at = self.acquire(priority)
        try:
            with holding(_sent_at, sent_at):
                yield
        except RateLimited as exc:
            exc.retry_after = self.refused(exc.retry_after, explicit=exc.explicit_wait, sent_at=sent_at)
            raise

    def stop(self) -> None:
        """The daemon is stopping: every call waiting for room gives up now (`Stopping`), so a stop never
        waits out a long paced poll; a call that has its room goes on."""
        self._stopping = True
        self._wake.set()

    def observe(self, limit: int | None, remaining: int | None, reset_in: float | None = None) -> None:
        """What the side's headers said with an answer: its limit, what remains, when the window resets.

        Inside `request`, what remains is taken to exclude the requests made after this one: they may not
        have reached the side when it answered, and each will be counted there (a few too many counted
        costs a few requests; too few, a burst of refusals)."""
        with self._lock:
            now = self.clock()
            if limit is not None and limit > 0:
                self._learned = limit
            if remaining is not None:
                sent_at = _sent_at.get()
                recent = self._admission.recent
                later = len(recent) - bisect.bisect_right(recent, sent_at) if sent_at is not None else 0
                self._remaining = max(0, remaining - later)
                self._remaining_until = now + self._window_left(reset_in)
        self._wake.set()

    def refused(self, retry_after: float, *, explicit: bool = True, sent_at: float | None = None) -> float:
        """The side refused a call for its rate: hold every call until the window resets. Returns the
        seconds to wait: ``retry_after`` when the side said it (``explicit``), else the minute's end for a
        side whose windows are wall-clock minutes, else ``retry_after`` as the caller's default.

        A side that sends no headers still taught something: it allows fewer requests a minute than were
        made in the last one, so the limit comes down to that for a while and the refusal is not repeated
        (unless so few were made that the refusal says more about the server than about the quota).
        ``sent_at`` (from `acquire`) tells the requests that were in flight together apart: the side
        refuses them together, and none of them counted for it."""
        with self._lock:
            now = self.clock()
            self._admission.forget(now)
            in_flight = sent_at <= self._burst_since if sent_at is not None else now < self._blocked_until
            if self._burst and in_flight:
                self._burst += 1
            else:
                self._burst, self._burst_since, self._burst_made = 1, now, len(self._admission.recent)
            made = self._burst_made - self._burst
            if self._learned is None and MIN_LEARNED <= made < self.limit:
                self._refusal_limit, self._refusal_limit_until = made, now + REFUSAL_MEMORY
            if not explicit and self.minute_windows:
                retry_after = next_minute(self.wall())
            self._blocked_until = max(self._blocked_until, now + retry_after)
            self._remaining, self._remaining_until = 0, now + retry_after
            self._refusals += 1
            return retry_after

    # --- inside the lock -----------------------------------------------------------------------------

    def _take(self, priority: Priority, now: float) -> float:
        """0 if a request is counted now, else the seconds to wait before asking again."""
        self._admission.wants(priority, now)
        if now < self._blocked_until:
            return self._blocked_until - now
        wait = self._admit(now).take(priority, now)
        if wait <= 0 and self._remaining is not None and now < self._remaining_until:
            self._remaining -= 1
        return wait

    def _admit(self, now: float) -> Admission:
        """The admission, told the limit and what the side said remains, as they stand ``now``."""
        remaining = self._remaining if now < self._remaining_until else None
        self._admission.sees(self.limit, remaining, self._remaining_until)
        return self._admission

    def _window_left(self, reset_in: float | None) -> float:
        if reset_in is not None:
            return max(0.0, min(WINDOW, reset_in))
        return next_minute(self.wall()) if self.minute_windows else WINDOW

    def _nap(self, seconds: float) -> None:
        # Woken early by a header or a refusal: room may have changed.
        self._wake.wait(min(seconds, 1.0))
        self._wake.clear()
