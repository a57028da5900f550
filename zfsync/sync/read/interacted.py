"""Who interacted with the OA since a moment, through ``user/getlist``: what catch-up reads when the feed
ended short of the last known row, so no customer is missed whatever the feed's depth. Zalo counts in
whole Vietnamese days and lets 10,000 of a period's users be read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

import structlog

from zfsync.domain.errors import PermanentError
from zfsync.log import Throttle
from zfsync.sync.ports import ZaloSide

log = structlog.get_logger("zfsync.sync")

GETLIST_PAGE = 50  # user/getlist's documented maximum count
GETLIST_MAX_OFFSET = 9951  # and maximum offset
GETLIST_READABLE = 10_000  # so the most of one period's users it lets be read
VIETNAM = timezone(timedelta(hours=7))  # Zalo's days (last_interaction_period) are Vietnamese days
_said = Throttle()  # warnings that would come with every catch-up that meets the same condition: once an hour


@dataclass(frozen=True)
class Interacted:
    """The users ``user/getlist`` names, and the days it named more of than it lets be read."""

    users: list[str]
    cut: tuple[tuple[str, int], ...] = ()  # (period, how many Zalo counted) for each day read only in part


class CutRecord(Protocol):
    def note_user_list_cut(self, at: float, cut: Sequence[tuple[str, int]]) -> None: ...


def users_since(zalo: ZaloSide, store: CutRecord, since_ms: int, now: float) -> list[str] | None:
    """Every user who interacted since ``since_ms``; a day Zalo named more users of than it lets be read is
    noted for `zfsync status`. None when the app may not list users."""
    found = interacted_since(zalo, since_ms, now)
    if found is None:
        return None
    if found.cut:
        store.note_user_list_cut(now, found.cut)
    return found.users


def interacted_since(zalo: ZaloSide, since_ms: int, now: float) -> Interacted | None:
    """Every user who interacted since ``since_ms`` (Zalo counts in whole Vietnamese days), through
    ``user/getlist``; None if the app may not list users (it lacks the user-management permission).
    Zalo lets 10,000 of a period's users be read (offset ≤ 9951): a longer period is read day by day, and
    a day past that is read in part, said once in the log (``zalo_user_list_cut``)."""
    first = datetime.fromtimestamp(since_ms / 1000, UTC).astimezone(VIETNAM).date()
    today = datetime.fromtimestamp(now, VIETNAM).date()
    try:
        users, cut = _users_of(zalo, first, max(first, today))
    except PermanentError as exc:
        # Without the permission, catch-up rests on the feed alone.
        if _said.first(("user_list", exc.code)):
            log.warning("zalo_user_list_unavailable", error=str(exc))
        return None
    log.info("zalo_users_interacted", period=f"{first:%Y_%m_%d}:{max(first, today):%Y_%m_%d}", users=len(users))
    for period, total in cut:
        if _said.first(("user_list_cut", period)):
            log.warning("zalo_user_list_cut", period=period, total=total, read=GETLIST_READABLE)
    return Interacted(list(dict.fromkeys(users)), tuple(cut))


def _users_of(zalo: ZaloSide, first: date, last: date) -> tuple[list[str], list[tuple[str, int]]]:
    period = f"{first:%Y_%m_%d}:{last:%Y_%m_%d}"
    users, total = zalo.interacted_users(period, 0, GETLIST_PAGE)
    if total > GETLIST_READABLE and first < last:  # more than Zalo lets be read: each day on its own
        found: list[str] = []
        cut: list[tuple[str, int]] = []
        for day in range((last - first).days + 1):
            more, short = _users_of(zalo, first + timedelta(days=day), first + timedelta(days=day))
            found += more
            cut += short
        return found, cut
    offset = GETLIST_PAGE
    while users and offset < min(total, GETLIST_READABLE) and offset <= GETLIST_MAX_OFFSET:
        found_page, _ = zalo.interacted_users(period, offset, GETLIST_PAGE)
        if not found_page:
            break
        users += found_page
        offset += GETLIST_PAGE
    return users, [(period, total)] if total > GETLIST_READABLE else []
