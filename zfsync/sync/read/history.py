"""History import: each customer's Zalo messages of the last N days copied into FreshChat, so a desk that
starts with zfsync does not start with empty conversations (`zfsync import-history --days N`, or
``sync.import_history_days`` at the first start).

What is imported is exactly what the live path never copies: the rows that were history when the feed's
baseline was set (`Baseline`), written since the import's start day. A row already recorded (under
either listing's id) is never queued twice, so an import run twice, or killed and run on, doubles nothing.

The import asks Zalo who interacted in those days (``user/getlist``; with no permission for it, the feed
is walked back to the first day instead), then reads each customer's own conversation, a few customers a
step, recording how far it got after each: a kill costs one customer's read at most. Each customer's rows
are queued oldest first behind a private note that says what follows, marked ``history``: the delivery
lanes send them after every live message (`zfsync.store.outbox`), and every request is made at
`Priority.HISTORY`, the budget's lowest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from zfsync.domain import Z2F, Baseline, HistoryImport, Kind, NewRow, RecordedRow, ZaloContent, ZaloMessage
from zfsync.domain.errors import PermanentError
from zfsync.i18n import _
from zfsync.sides.priority import Priority, purpose
from zfsync.sync.decide import aliases, pages
from zfsync.sync.ports import ZaloSide
from zfsync.sync.read.interacted import VIETNAM, users_since
from zfsync.sync.read.zalo_reader import GAP_FILL_PAGE_CAP, PAGE, message_id, recorded_near, unique
from zfsync.sync.seams import HistoryRecord

log = structlog.get_logger("zfsync.sync")

MAX_DAYS = 365
USERS_PER_STEP = 5  # customers read in one step; the state is saved after each
FEED_PAGES = 500  # how far back the feed is walked for customers when user/getlist is not allowed
DAY_MS = 86_400_000


def request(days: int, now: float) -> HistoryImport:
    """An import of the last ``days`` days, counted in whole Vietnamese days (today is the first)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"the history to import must be 1 to {MAX_DAYS} days, not {days}")
    today = datetime.fromtimestamp(now, VIETNAM).replace(hour=0, minute=0, second=0, microsecond=0)
    since_ms = int(today.timestamp() * 1000) - (days - 1) * DAY_MS
    return HistoryImport(days, since_ms, now)


def to_import(
    rows: list[ZaloMessage], since_ms: int, baseline: Baseline, known: set[str], recorded: list[RecordedRow]
) -> list[ZaloMessage]:
    """Which of a customer's rows (oldest first) the import queues: those written since ``since_ms`` that
    the live path left as history (at or below the baseline), neither recorded (``known``) nor a message
    recorded under the other listing's id (``recorded``: the customer's rows recorded near these)."""
    candidates = [
        r for r in rows if r.message_id not in known and since_ms <= r.time_ms <= baseline.time_ms and r.time_ms >= 0
    ]
    twins = aliases.pair([aliases.as_recorded(r) for r in candidates], recorded) if recorded else {}
    return [r for r in candidates if r.message_id not in twins]


def clocks(rows: list[ZaloMessage]) -> tuple[int, int]:
    """The customer's last message among ``rows``, and up to when they count as answered (ms; 0 for none):
    all of it. An imported question is history the desk is shown, not a customer waiting now, so it never
    makes them "unanswered" (a live message after it does, as always)."""
    inbound = max((r.time_ms for r in rows if not r.from_oa), default=0)
    answered = max((r.time_ms for r in rows if r.from_oa), default=0)
    return inbound, max(inbound, answered)


def marker_text(count: int, first_ms: int, last_ms: int) -> str:
    def day(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M")

    return _(
        "🕘 Zalo history: the {count} messages below were written on Zalo from {first} to {last}, before "
        "zfsync connected, and were imported; each shows when it was imported, not when it was written."
    ).format(count=count, first=day(first_ms), last=day(last_ms))


def history_rows(user_id: str, job: HistoryImport, rows: list[ZaloMessage]) -> list[NewRow]:
    """The outbox rows of one customer's import: the marker note, then their messages oldest first."""
    first, last = rows[0].time_ms, rows[-1].time_ms
    marker = NewRow(
        Z2F,
        f"history:{user_id}:{job.since_ms}:{first}",
        Kind.HISTORY_MARKER,
        ZaloContent("text", marker_text(len(rows), first, last)),
        first / 1000,
        history=True,
    )
    return [
        marker,
        *(
            NewRow(
                Z2F,
                r.message_id,
                Kind.OA_NOTE if r.from_oa else r.type,
                r.content,
                r.time_ms / 1000,
                listing=r.listing,
                history=True,
            )
            for r in rows
        ),
    ]


class HistoryImporter:
    def __init__(self, zalo: ZaloSide, store: HistoryRecord, clock: Callable[[], float]):
        self.zalo = zalo
        self.store = store
        self.clock = clock

    def step(self) -> int:
        """Read the next few customers' history and queue it; returns how many rows were queued."""
        job = self.store.history_import()
        if job is None:
            return 0
        cursor = self.store.feed_cursor()
        if cursor.mark is None:
            return 0  # the first poll sets the baseline that says what is history
        asked_at = job.requested_at
        with purpose(Priority.HISTORY):
            if job.users is None:
                users = self._customers(job.since_ms)
                job = replace(job, users=tuple(users), listed=len(users))
                if not self.store.advance_history_import(asked_at, job):
                    return 0  # another import was asked for meanwhile: it starts over at the next step
                log.info("history_import_started", days=job.days, customers=len(users))
            queued = 0
            for user_id in (job.users or ())[:USERS_PER_STEP]:
                count = self._import(user_id, job, cursor.baseline)
                queued += count
                job = replace(job, users=(job.users or ())[1:], queued=job.queued + count)
                # A kill now re-reads this customer alone, whose rows are all known by then.
                if not self.store.advance_history_import(asked_at, job):
                    return queued
        if not job.users and self.store.advance_history_import(asked_at, None):
            log.info("history_import_read", days=job.days, customers=job.listed, messages=job.queued)
        return queued

    def _customers(self, since_ms: int) -> list[str]:
        found = users_since(self.zalo, self.store, since_ms, self.clock())
        if found is not None:
            return found

        # No permission to list users: whoever stands on the feed back to the first day.
        def older(row: ZaloMessage) -> bool:
            return 0 <= row.time_ms < since_ms

        listing = pages.OffsetPages(lambda o, c: self.zalo.recent_messages(o, c), message_id, 0, PAGE)
        walked = pages.walk(iter(listing), pages.from_first(older), FEED_PAGES)
        return list(dict.fromkeys(r.user_id for r in walked.items))

    def _import(self, user_id: str, job: HistoryImport, baseline: Baseline) -> int:
        def older(row: ZaloMessage) -> bool:
            return 0 <= row.time_ms < job.since_ms

        def read(offset: int, count: int) -> list[ZaloMessage]:
            return self.zalo.conversation(user_id, offset=offset, count=count)

        try:
            walked = pages.walk(
                iter(pages.OffsetPages(read, message_id, 0, PAGE)), pages.from_first(older), GAP_FILL_PAGE_CAP
            )
        except PermanentError as exc:  # this customer's conversation cannot be read: the others can
            log.warning("history_import_user_skipped", user=user_id, error=str(exc))
            return 0
        rows = unique(walked.items)[::-1]
        known = self.store.known_zalo_ids(r.message_id for r in rows)
        fresh = to_import(rows, job.since_ms, baseline, known, recorded_near(self.store, user_id, rows))
        if not fresh:
            return 0
        named = next((r for r in reversed(fresh) if r.user_name and not r.from_oa), None)
        new_rows = history_rows(user_id, job, fresh)
        self.store.record_history(
            user_id,
            named.user_name if named else "",
            named.user_avatar if named else "",
            new_rows,
            clocks(fresh),
            self.clock(),
        )
        log.info("history_import_queued", user=user_id, count=len(fresh))
        return len(fresh)
