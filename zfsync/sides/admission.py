"""Who may make a request now, within one side's window: the requests of the last minute (all of them, the
sends, the import's), the floor kept for the change feed and the share kept for an import, spread over
the minute, and the token bucket that paces everything below `Priority.SEND` (`zfsync.sides.quota`
explains the policy). `Quota` holds the lock, and tells the admission the limit and what the side last
said remains before each decision."""

from __future__ import annotations

import math
from collections import deque

from zfsync.sides.priority import Priority

WINDOW = 60.0  # seconds: both sides count requests per minute
PACE = 2.0  # seconds of the limit's rate the bucket may save up for the priorities below SEND ...
MIN_SAVED = 2.0  # ... but at least this many requests, so that a small limit still lets one through
RESERVE_SHARE = 0.05  # of the limit, kept by each priority for those above it
FEED_FLOOR = 0.1  # of the window, never taken by sends: the change feed's, spread over the minute
HISTORY_SHARE = 0.1  # of the window, the import's while it has work, whatever the polls want: spread too
HISTORY_WANTS = 10.0  # seconds an import's last ask for room counts as "it has work"
MIN_WAIT = 0.05  # seconds: the shortest nap of a call that must wait


def reserve_of(limit: int, priority: Priority) -> int:
    """Requests of the window a call of ``priority`` leaves to the priorities above it."""
    return int(priority) * max(1, round(limit * RESERVE_SHARE))


class Admission:
    def __init__(self, limit: int, now: float):
        self.limit = limit
        self.remaining: int | None = None  # what the side last said remains, while that word holds ...
        self.remaining_until = 0.0  # ... until then (clock)
        self.recent: deque[float] = deque()  # when (clock) each request of the last minute was made
        self.sends: deque[float] = deque()  # ... and each one of them made at `Priority.SEND`
        self.history: deque[float] = deque()  # ... and each one of the import's
        self.floor_next = 0.0  # the feed's next request from its floor may go then (clock)
        self.history_next = 0.0  # the import's next request from its share may go then (clock)
        self.history_wants_until = -math.inf  # the import asked for room lately: it has work (clock)
        self.tokens = self._capacity
        self.stamp = now

    def sees(self, limit: int, remaining: int | None, remaining_until: float) -> None:
        """What the quota knows before a decision: the limit, and what the side said remains (None: it
        said nothing that still holds)."""
        self.limit, self.remaining, self.remaining_until = limit, remaining, remaining_until

    def wants(self, priority: Priority, now: float) -> None:
        """A call of ``priority`` asks for room: an import that asks has work."""
        if priority == Priority.HISTORY:
            self.history_wants_until = now + HISTORY_WANTS

    def take(self, priority: Priority, now: float) -> float:
        """0 if a request of ``priority`` is counted now, else the seconds to wait before asking again."""
        room, paced = self.allowance(priority, now)
        if room >= 1 and paced >= 1:
            self.recent.append(now)
            if priority == Priority.SEND:
                self.sends.append(now)
            elif priority == Priority.FEED:
                self.floor_next = now + WINDOW / self._floor
            elif priority == Priority.HISTORY:
                self.history.append(now)
                self.history_next = now + WINDOW / self._history_share
            if priority != Priority.SEND:  # sends slow the refill down instead (`_rate`)
                self.tokens = max(-self._capacity, self.tokens - 1)
            return 0.0
        if room >= 1:
            wait = (1 - paced) / self._rate
            if priority == Priority.FEED and self._floor_left > 0:
                wait = min(wait, self.floor_next - now)
            if priority == Priority.HISTORY and self._history_left > 0:
                wait = min(wait, self.history_next - now)
            return max(MIN_WAIT, wait)
        waits = [self.recent[0] + WINDOW - now] if self.recent else []
        if self.remaining is not None:
            waits.append(self.remaining_until - now)
        return max(MIN_WAIT, min(waits) if waits else MIN_WAIT)

    def allowance(self, priority: Priority, now: float) -> tuple[float, float]:
        """How many requests of ``priority`` the window has room for, and how many the bucket allows."""
        room, paced = self._room(now), self._paced(priority, now)
        if priority == Priority.SEND:
            # Sends leave the feed its floor, and the import its share while it has work.
            kept = self._floor + (self._history_share if now < self.history_wants_until else 0)
            return min(room, self.limit - kept - len(self.sends)), paced
        allowed, floor_left = room - reserve_of(self.limit, priority), self._floor_left
        if priority == Priority.HISTORY and self._history_left > 0:
            # The import's share: its own, reserve or not (but not the feed's unspent floor), spread over the
            # window like the feed's floor.
            allowed = max(allowed, min(room - max(0, floor_left), self._history_left))
            if now >= self.history_next:
                paced = max(paced, 1.0)
        elif priority != Priority.HISTORY and now < self.history_wants_until:
            allowed -= max(0, self._history_left)  # left to the import while it has work
        if priority == Priority.FEED and floor_left > 0:
            # The floor is the feed's whatever the sends took of the bucket, spread over the window, and it
            # keeps no reserve there (sends cannot have it); the last few the side says remain stay the sends'.
            in_window = min(self.limit - len(self.recent), floor_left)
            if self.remaining is not None:
                in_window = min(in_window, self.remaining - reserve_of(self.limit, priority))
            allowed = max(allowed, in_window)
            if now >= self.floor_next:
                paced = max(paced, 1.0)
        return allowed, paced

    @property
    def _rate(self) -> float:
        # What is saved up plus a minute of refill is what the feed may spend in a minute, less what the
        # sends of the last minute took: paced polling never fills the window, so it never stalls until the
        # window's end (where a side that counts fixed minutes would hold every call: the seconds-long gaps
        # of a tight quota), and a burst of sends (the first posts after a start, a catch-up) slows the
        # polls down evenly over the minute that follows instead.
        spare = self.limit - reserve_of(self.limit, Priority.FEED) - self._capacity - len(self.sends)
        return max(1.0, spare) / WINDOW

    @property
    def _floor(self) -> int:
        return max(1, round(self.limit * FEED_FLOOR))

    @property
    def _floor_left(self) -> int:
        """What the feed has not spent of its floor in the window (all but the sends and the import's share
        count: the import's share is its own, not taken from the feed's floor)."""
        return self._floor - (len(self.recent) - len(self.sends) - len(self.history))

    @property
    def _history_share(self) -> int:
        return max(1, round(self.limit * HISTORY_SHARE))

    @property
    def _history_left(self) -> int:
        """What the import has not spent of its share in the window."""
        return self._history_share - len(self.history)

    @property
    def _capacity(self) -> float:
        return max(MIN_SAVED, (self.limit - reserve_of(self.limit, Priority.FEED)) * PACE / (WINDOW + PACE))

    def _paced(self, priority: Priority, now: float) -> float:
        """Requests the bucket lets ``priority`` make now, after its share kept for those above it; sends
        are not paced (they slow the refill down instead, `_rate`), but refill first, at the rate before them."""
        self._refill(now)
        if priority == Priority.SEND:
            return math.inf
        kept = reserve_of(self.limit, priority) * self._rate * PACE / self.limit
        if priority == Priority.HISTORY:
            # An import would otherwise keep the bucket near empty, and the polls' bursts (several
            # conversations due at once) would wait for it: it spends only from a bucket at least half full.
            kept = max(kept, self._capacity / 2)
        return self.tokens - kept

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)  # a clock that went back refills nothing
        self.tokens = min(self._capacity, self.tokens + elapsed * self._rate)
        self.stamp = now

    def _room(self, now: float) -> int:
        self.forget(now)
        room = self.limit - len(self.recent)
        if self.remaining is not None:
            room = min(room, self.remaining)
        return room

    def forget(self, now: float) -> None:
        for recent in (self.recent, self.sends, self.history):
            while recent and recent[0] <= now - WINDOW:
                recent.popleft()
            if recent and recent[-1] > now:
                recent.clear()  # a clock that went back (a fake one in tests can) must not block forever
