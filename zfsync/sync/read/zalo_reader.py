"""Read Zalo: find every message we have not recorded yet, and queue it for FreshChat in Zalo's order.

``listrecentchat`` is the change feed: at most 10 rows a call, newest first, OA sends included (research
§1, §8). A cycle pages back until it meets the *mark*: the rows that stood on the feed's first page when
the last complete cycle ended. The mark moves only after every row above it is recorded, so a crash
halfway through a cycle (one user recorded, the next not) loses nothing; before a long catch-up it moves
early, together with the users still *owed* one, and the next cycle finishes their catch-up first.
Offsets shift while we page, so rows repeat: identity is the message id, never the offset. Times may
tie to the millisecond and Zalo's servers may disagree by seconds, so time never decides what is new or
in which order: the feed's own position does. Time serves only as a fallback should every row of the mark vanish.

If the scan stops before a known row (page cap, or the feed ends: its depth is undocumented, and a deep
offset may even be refused), each user seen is caught up on their own through ``conversation``; if the feed
*ended* short, every user who interacted since the last known row is found through ``user/getlist`` and
caught up the same way, so no customer is missed whatever the feed's depth.

On the very first cycle, what the feed already holds is history: it becomes the baseline, and only later
messages are bridged live (`zfsync.sync.read.history` imports some of it, when asked).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import structlog

from zfsync.domain import Z2F, Baseline, HistoryImport, Kind, Mark, NewRow, RecordedRow, ZaloMessage
from zfsync.domain.errors import PermanentError
from zfsync.log import Throttle
from zfsync.sides.priority import Priority, purpose
from zfsync.sync.decide import aliases, pages
from zfsync.sync.decide.feed import TIME_SLACK_MS, Scan, below_mark, plan_feed
from zfsync.sync.desk.returns import retry_on_return
from zfsync.sync.ports import ZaloSide
from zfsync.sync.read.interacted import users_since
from zfsync.sync.seams import NearRecords, ZaloRecord

log = structlog.get_logger("zfsync.sync")

PAGE = 10
GAP_FILL_PAGE_CAP = 2000  # one user's backlog; far beyond any realistic downtime
GAP_FILL_WORKERS = 8
_said = Throttle()  # warnings that would come with every scan that meets the same condition: once an hour


def message_id(row: ZaloMessage) -> str:
    return row.message_id


def unique(rows: list[ZaloMessage]) -> list[ZaloMessage]:
    """Each row once, where first listed: offsets shift as messages arrive, so a row may be on two pages."""
    first: dict[str, ZaloMessage] = {}
    for row in rows:
        first.setdefault(row.message_id, row)
    return list(first.values())


def feed_order(
    feed_rows: list[ZaloMessage], own_rows: list[ZaloMessage] | None
) -> tuple[list[ZaloMessage], dict[str, str]]:
    """One user's rows oldest first, and the feed's ids of the conversation's rows it showed under another
    id (conversation id -> feed id). Both lists are newest first, as Zalo listed them; the user's own
    conversation, when read, is the complete order. A feed row it lacks (written after it was read) goes
    after the last row that is not newer than it."""
    if own_rows is None:
        return feed_rows[::-1], {}
    merged = own_rows[::-1]
    ids = {r.message_id for r in merged}
    unmatched = [aliases.as_recorded(r) for r in feed_rows if r.message_id not in ids]
    twins = aliases.pair(unmatched, [aliases.as_recorded(r) for r in own_rows])  # feed id -> conversation id
    for row in feed_rows[::-1]:
        if row.message_id in ids or row.message_id in twins:
            continue
        at = len(merged)
        while at > 0 and merged[at - 1].time_ms > row.time_ms >= 0:
            at -= 1
        merged.insert(at, row)
        ids.add(row.message_id)
    return merged, {own: feed for feed, own in twins.items()}


class ZaloReader:
    def __init__(
        self,
        zalo: ZaloSide,
        store: ZaloRecord,
        clock: Callable[[], float],
        page_cap: int,
        first_history: Callable[[], HistoryImport | None] = lambda: None,
        retry_on_return: bool = True,
    ):
        """``first_history()``: the history import to ask for with the baseline (``sync.import_history_days``)."""
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.page_cap = page_cap
        self.first_history = first_history
        self.retry_on_return = retry_on_return  # sync.retry_when_customer_returns
        self._pool = ThreadPoolExecutor(max_workers=GAP_FILL_WORKERS, thread_name_prefix="gap-fill")

    def poll(self) -> int:
        """One cycle; returns how many new rows were queued."""
        cursor = self.store.feed_cursor()
        mark, baseline = cursor.mark, cursor.baseline
        if mark is None:
            return self._set_baseline()
        top = self._scan(0, mark, baseline)
        # An earlier scan stopped at its page cap: read on from there, down to the mark of its time.
        deep = self._scan(cursor.resume.offset, cursor.resume.floor, baseline) if cursor.resume else None
        plan = plan_feed(cursor, mark, top, deep)
        catch_up = set(plan.catch_up)
        if plan.ask_interacted:
            with purpose(Priority.CATCHUP):
                catch_up |= set(users_since(self.zalo, self.store, mark.time_ms - TIME_SLACK_MS, self.clock()) or ())
        own: dict[str, list[ZaloMessage]] = {}
        seen_twins: dict[str, dict[str, str]] = {}  # user -> recorded id -> the other listing's id for it
        if catch_up:
            rows = sum(len(r) for r in plan.by_user.values())
            log.info("zalo_feed_catch_up", users=len(catch_up), rows=rows, ended=plan.ask_interacted)
            # A catch-up is long (a conversation read per user): the mark moves first, with every user
            # this cycle may leave unrecorded owed a catch-up, so a cycle cut short (a crash, a kill, a
            # refused read) leaves the next one that list to finish, not this whole scan to do again.
            owed = plan.owed(frozenset(catch_up))
            if (plan.mark, plan.resume, owed) != (mark, cursor.resume, cursor.owed):
                self.store.move_feed(plan.mark, plan.resume, owed)
            stop = threading.Event()  # one read refused (the rate, the token): the others stop too
            # Each user's conversation is read on its own, so several are read at once.
            read = dict(self._pool.map(lambda u: (u, self._own_rows(u, baseline, stop)), sorted(catch_up)))
            own = {user: rows for user, (rows, _) in read.items()}
            seen_twins = {user: twins for user, (_, twins) in read.items()}
        queued = 0
        for user_id in sorted(set(plan.by_user) | set(own)):
            ordered, within = feed_order(plan.by_user.get(user_id, []), own.get(user_id))
            queued += self._record(user_id, ordered, baseline, within, seen_twins.get(user_id, {}))
        if catch_up or plan.moves:
            self.store.move_feed(plan.mark, plan.resume)  # an idle cycle writes nothing
        return queued

    def _set_baseline(self) -> int:
        page = self.zalo.recent_messages(offset=0, count=PAGE)
        times = [r.time_ms for r in page if r.time_ms >= 0]
        if times:
            newest = max(times)
            baseline = Baseline(newest, frozenset(r.message_id for r in page if r.time_ms == newest))
        else:
            newest, baseline = int(self.clock() * 1000), Baseline(0, frozenset())
        history = self.first_history()
        self.store.start_feed(baseline, Mark(newest, frozenset(r.message_id for r in page)), history)
        log.info("zalo_baseline_set", existing_messages=len(page), history_days=history.days if history else 0)
        return 0

    def _scan(self, start: int, mark: Mark, baseline: Baseline) -> Scan:
        """Feed rows above ``mark`` from offset ``start``, at most `page_cap` pages."""

        def read(offset: int, count: int) -> list[ZaloMessage]:
            try:
                return self.zalo.recent_messages(offset=offset, count=count)
            except PermanentError as exc:
                if offset == 0:
                    raise
                # Zalo refuses offsets past the depth it keeps: the feed ends here; catch-up finds the rest.
                if _said.first(("offset_refused", exc.code)):  # the same depth refuses every deep scan
                    log.warning("zalo_feed_offset_refused", offset=offset, error=str(exc))
                return []

        listing = pages.OffsetPages(read, message_id, start, PAGE)
        first_page: list[ZaloMessage] = []

        def feed() -> Iterator[list[ZaloMessage]]:
            for number, page in enumerate(listing):
                if number == 0:
                    first_page.extend(page)
                yield page

        def below(page: list[ZaloMessage]) -> Callable[[ZaloMessage], bool]:
            recorded = self.store.recorded_zalo_ids(r.message_id for r in page)
            return lambda row: below_mark(row, mark, recorded, baseline)

        walked = pages.walk(feed(), below, self.page_cap)
        if not listing.aligned:
            log.warning("zalo_feed_shifted", offset=start, pages=walked.pages)
        return Scan(unique(walked.items), walked.end, listing.next_offset, first_page, listing.aligned)

    def _own_rows(
        self, user_id: str, baseline: Baseline, stop: threading.Event
    ) -> tuple[list[ZaloMessage], dict[str, str]]:
        """The user's own conversation, newest first, down to the rows already recorded (under the id this
        listing shows, or as their twin recorded from the feed), and the twins met (recorded id -> this
        listing's id)."""
        twins: dict[str, str] = {}

        def read(offset: int, count: int) -> list[ZaloMessage]:
            if stop.is_set():
                return []
            try:
                with purpose(Priority.CATCHUP):  # sends and the feed go first
                    return self.zalo.conversation(user_id, offset=offset, count=count)
            except BaseException:
                stop.set()
                raise

        def recorded(page: list[ZaloMessage]) -> Callable[[ZaloMessage], bool]:
            # A user's rows are recorded together, in one transaction: one recorded row means all older
            # ones are. (Our own sends are known before their rows are recorded, so they are no floor.)
            known = self.store.recorded_zalo_ids(r.message_id for r in page)
            found = self._twins(user_id, [r for r in page if r.message_id not in known])  # this id -> recorded
            twins.update({recorded_id: row_id for row_id, recorded_id in found.items()})
            return lambda row: row.message_id in known or row.message_id in found or baseline.holds(row)

        listing = pages.OffsetPages(read, message_id, 0, PAGE)
        walked = pages.walk(iter(listing), recorded, GAP_FILL_PAGE_CAP)
        if walked.end == pages.ENDED and stop.is_set():
            return [], {}  # the cycle failed already: nothing read here is used
        if not listing.aligned:
            # More than the search covers arrived while we paged, or a row vanished: the order across one
            # seam is unknown. Everything read is kept; it is the best order there is.
            log.warning("zalo_conversation_shifted", user=user_id, pages=walked.pages)
        return unique(walked.items), twins

    def _twins(self, user_id: str, rows: list[ZaloMessage]) -> dict[str, str]:
        """Which of a user's rows are messages recorded under the other listing's id: row id -> recorded id."""
        near = recorded_near(self.store, user_id, rows)
        return aliases.pair([aliases.as_recorded(r) for r in rows], near) if near else {}

    def _record(
        self,
        user_id: str,
        ordered: list[ZaloMessage],
        baseline: Baseline,
        within: dict[str, str] | None = None,
        twins: dict[str, str] | None = None,
    ) -> int:
        """Record a user's rows not recorded yet, oldest first, in one transaction. ``within``: rows of
        this cycle's conversation read -> the feed's id for them; ``twins``: recorded rows -> the id a
        conversation read showed them under."""
        known = self.store.known_zalo_ids(r.message_id for r in ordered)
        unknown = [r for r in ordered if r.message_id not in known and not baseline.holds(r)]
        # A row may be a message recorded before under the other listing's id: it is that message.
        seen_before = self._twins(user_id, unknown)  # row id -> recorded id
        found = {**(twins or {}), **{recorded_id: row_id for row_id, recorded_id in seen_before.items()}}
        fresh = [r for r in unknown if r.message_id not in seen_before]
        if not fresh:
            if found:
                self.store.record_aliases(user_id, found)
            return 0
        now_ms = int(self.clock() * 1000)
        within = within or {}
        new_rows = [
            NewRow(
                Z2F,
                r.message_id,
                Kind.OA_NOTE if r.from_oa else r.type,
                r.content,
                max(r.time_ms, 0) / 1000 or now_ms / 1000,
                listing=r.listing,
                alias_id=within.get(r.message_id),
            )
            for r in fresh
        ]
        customer = [r for r in fresh if not r.from_oa]
        named = next((r for r in reversed(customer) if r.user_name), None)
        contact = self.store.record_zalo_messages(
            user_id,
            named.user_name if named else "",
            named.user_avatar if named else "",
            new_rows,
            cursor=(max(r.time_ms for r in fresh), fresh[-1].message_id),
            last_inbound_ms=max((r.time_ms for r in customer), default=0),
            now=self.clock(),
            aliases=found,
            poll_at=self.clock(),  # a customer who just wrote is likely to get an answer soon: poll them now
        )
        log.info("zalo_messages_queued", user=user_id, count=len(new_rows))
        if customer and self.retry_on_return:
            retry_on_return(self.store, contact, self.clock())
        return len(new_rows)


def recorded_near(store: NearRecords, user_id: str, rows: list[ZaloMessage]) -> list[RecordedRow]:
    """The user's messages recorded near these rows' times whose other listing's id is not known yet:
    what a row listed under another id may be (`sync.aliases` pairs them)."""
    times = [r.time_ms for r in rows if r.time_ms >= 0]
    if not times:
        return []
    return store.recorded_near(user_id, min(times) - aliases.WINDOW_MS, max(times) + aliases.WINDOW_MS)
