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


# A fleet's Zalo feeds share their app's budget (docs/fleet.md): the feed polls may take this much of it
# (the rest is for sends and catch-up), and the quiet feeds at most this much of that. A poll costs two
# requests: the recent-chat listing and the user list.
FLEET_FEED_SHARE = 0.6
QUIET_SHARE = 0.5
REQUESTS_PER_POLL = 2


def shared_feed_intervals(
    limit: int, configured: float, active: int, quiet: int, quiet_interval: float
) -> tuple[float, float]:
    """Seconds between two polls of an active and of a quiet Zalo feed, when ``active`` + ``quiet`` feeds
    share ``limit`` requests a minute: a quiet feed every ``quiet_interval`` seconds, or less often when
    that would take more than the quiet feeds' part; an active one as often as what is left allows, and
    never more often than ``configured``."""
    feed = limit * FLEET_FEED_SHARE / REQUESTS_PER_POLL  # polls a minute
    quiet_wait = max(quiet_interval, 60.0 * quiet / (feed * QUIET_SHARE)) if quiet else quiet_interval
    left = feed - (60.0 * quiet / quiet_wait if quiet else 0.0)
    active_wait = max(configured, 60.0 * max(1, active) / max(left, 1.0))
    return round(active_wait, 1), round(quiet_wait, 1)


def daemon_ceiling(
    limit: int, members: int, fleet: tuple[int, int], mine: tuple[int, int], configured: float, quiet_interval: float
) -> int:
    """One daemon's part of a Zalo app's budget, when ``members`` daemons serve the app's feeds: the requests
    its own feeds (``mine``: active, quiet) take at the app-wide intervals (``fleet``: every daemon's), and
    an even part of what the feeds leave to sends. The parts add up to at most ``limit``, and a daemon
    holding the busy feeds gets what they need rather than an even half."""
    active_wait, quiet_wait = shared_feed_intervals(limit, configured, *fleet, quiet_interval)
    feeds = REQUESTS_PER_POLL * 60.0 * (mine[0] / active_wait + mine[1] / quiet_wait)
    return max(1, int(feeds + limit * (1 - FLEET_FEED_SHARE) / max(1, members)))
