"""When to poll each FreshChat conversation, and how many requests we may spend.

FreshChat has no account-wide change feed, so each conversation is polled on its own clock: hot (recent
activity) every few seconds, warm less often, cold rarely; a customer outside Zalo's 7-day window can no
longer receive a reply, so their conversation gets only a slow sweep. FreshChat's request budget
(`zfsync.sides.quota`) caps the rate; the most overdue conversations are polled first, so cost follows active
conversations.
"""

from __future__ import annotations

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
