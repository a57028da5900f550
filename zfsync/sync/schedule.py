"""When to poll each FreshChat conversation, and how many requests we may spend.

FreshChat has no account-wide change feed, so each conversation is polled on its own clock: hot (recent
activity) every few seconds, warm less often, cold rarely; a customer outside Zalo's 7-day window can no
longer receive a reply, so their conversation gets only a slow sweep. A token bucket caps the request
rate; the most overdue conversations are polled first, so cost follows active conversations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

HOT_FOR = 300.0  # seconds of quiet after activity during which a conversation stays hot
WARM_FOR = 3600.0
ZALO_WINDOW = 7 * 86_400.0
SWEEP_INTERVAL = 6 * 3600.0  # a reply there can only fail; the note may wait


@dataclass(frozen=True)
class Intervals:
    hot: float
    warm: float
    cold: float


def next_poll_at(now: float, last_activity_at: float, last_inbound_s: float, intervals: Intervals) -> float:
    quiet = now - last_activity_at
    if last_inbound_s and now - last_inbound_s > ZALO_WINDOW and quiet > WARM_FOR:
        return now + max(intervals.cold, SWEEP_INTERVAL)
    if quiet < HOT_FOR:
        return now + intervals.hot
    if quiet < WARM_FOR:
        return now + intervals.warm
    return now + intervals.cold


class RequestBudget:
    """A token bucket: ``per_minute`` requests a minute, with at most a minute's worth saved up. It runs on
    its own (monotonic) clock and is shared by threads, so every change is made under a lock."""

    def __init__(self, per_minute: int, clock: Callable[[], float]):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.tokens = float(per_minute)
        self.clock = clock
        self.stamp = clock()
        self._lock = threading.Lock()

    def available(self) -> int:
        with self._lock:
            self._refill()
            return max(0, int(self.tokens))

    def spend(self, count: int = 1) -> None:
        """Record requests made; sends spend too, so polling yields to real traffic under load."""
        with self._lock:
            self._refill()
            self.tokens -= count

    def _refill(self) -> None:
        now = self.clock()
        # A clock that went back (a fake one in tests can) refills nothing, and does not stall later refills.
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now
