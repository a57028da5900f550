"""Read the OA's group chats (``sync.groups``) and queue each member's new messages for FreshChat, in each
group's own order, once.

Each group is a contact (`zfsync.domain.groups`): its messages are recorded as a customer's are, all of a
group's new rows in one transaction, so a crash at any point loses nothing (the next read finds what is not
recorded yet) and doubles nothing (a recorded id is never recorded again). The recent group messages of every
group (``group/listrecentchat``, read at most every `FEED_EVERY` seconds) say which groups have new rows:
those are read at once, down to their last recorded row (``group/conversation``). The feed is shallow and its
depth undocumented, so each enabled group is also read on its own every `sweep_every` seconds (a quiet group
costs one request then), and every group at the first poll after a start: downtime is caught up. The list of
groups is read every `LIST_EVERY` seconds. What the groups' feed held when groups were first read is history
(`Baseline`), never bridged.

A member's mention (``[@user_id]``) is recorded as ``@Name`` where the name is known. The group permission
refused, or an OA without group chats, stops this reader only (asked again hourly, shown by `zfsync status`):
the customers' chats go on. ``sync.import_history_days`` imports each group's last days at the first read of
the groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import structlog

from zfsync.domain import (
    Z2F,
    Baseline,
    GroupBook,
    HistoryImport,
    Kind,
    KnownGroup,
    NewRow,
    ZaloMessage,
    group_id_of,
    group_key,
)
from zfsync.domain.errors import AuthError, PermanentError, PermissionMissing, RateLimited, TransientError
from zfsync.log import Throttle
from zfsync.sides.priority import Priority, purpose
from zfsync.sync.decide import groups, pages
from zfsync.sync.ports import ZaloSide
from zfsync.sync.read import history
from zfsync.sync.seams import GroupRecord

log = structlog.get_logger("zfsync.sync")

LIST_EVERY = 300.0
SWEEP_EVERY = 600.0
REFUSED_RETRY = 3600.0  # the group chats refused as a whole (not verified, no package): asked again hourly
FEED_EVERY = 5.0  # the groups' feed at most this often: a group's message lands within seconds, at 12 requests a minute
FEED_PAGES = 5  # pages of the groups' feed a poll reads at most while every row on them is new
PAGE = 10
CATCH_UP_PAGES = 2000  # one group's backlog: far beyond any downtime
_said = Throttle()


class GroupReader:
    def __init__(
        self,
        zalo: ZaloSide,
        store: GroupRecord,
        clock: Callable[[], float],
        enabled: bool,
        history_days: int = 0,
        sweep_every: float = SWEEP_EVERY,
    ):
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.enabled = enabled  # sync.groups
        self.history_days = history_days  # sync.import_history_days: each group's last days, at the first read
        self.sweep_every = sweep_every
        self._read_at = float("-inf")  # when the groups' feed was last read (this clock)
        self._refused = False  # Zalo refused the group chats as a whole: asked again only hourly
        self._resting: dict[str, float] = {}  # a group Zalo refused to list: not read again until then
        self._started = False  # every group is read once after a start: what came while zfsync was down

    def poll(self) -> int:
        """One cycle; returns how many new rows were queued. Only a refusal that stops every Zalo call
        (the token, the rate) is raised; the group feature's own trouble is logged (a refusal of it is shown
        by `zfsync status`) and read again at the next cycle (a refusal: in an hour)."""
        now = self.clock()
        if not self.enabled or abs(now - self._read_at) < (REFUSED_RETRY if self._refused else FEED_EVERY):
            return 0
        self._read_at = now
        try:
            queued = self._poll()
        except (RateLimited, AuthError):
            raise  # every Zalo call is refused alike: the side's health says so
        except TransientError as exc:  # the groups' own trouble never marks the customers' side unhealthy
            if _said.first(("groups_transient", type(exc).__name__)):
                log.warning("zalo_groups_unread", error=str(exc))
            return 0
        except PermanentError as exc:  # the OA not verified, no group chats in its package, the permission
            if _said.first(("groups_refused", exc.code)):
                log.warning("zalo_groups_refused", code=exc.code, error=str(exc))
            self._refused = True
            if not isinstance(exc, PermissionMissing):  # a permission refused is shown as every one is
                why = f"{exc} (code {exc.code})"
                self.store.change_group_book(lambda book: replace(book, refused=why, refused_at=now))
            return 0
        if self._refused:
            self._refused = False
            self.store.change_group_book(lambda book: replace(book, refused="", refused_at=0.0))
            log.info("zalo_groups_read_again")
        return queued

    def _poll(self) -> int:
        book, now = self.store.group_book(), self.clock()
        baseline = book.baseline
        if baseline is None:
            return self._start(book, now)
        active = self._active(baseline)
        unknown = active - {g.group_id for g in book.groups}  # a group made since the list was read: named now
        if now - book.listed_at >= LIST_EVERY or not book.groups or unknown:
            with purpose(Priority.CATCHUP):
                book = replace(book, groups=groups.listed(book, self.zalo.groups()), listed_at=now)
        sweep = 0.0 if not self._started else self.sweep_every
        queued = 0
        for group_id in groups.due(book, active, now, sweep):
            known = book.group(group_id) or KnownGroup(group_id)
            if (not known.enabled and group_id not in active) or self._resting.get(group_id, 0.0) > now:
                continue
            try:
                queued_here, known = self._read_group(known, baseline, now)
            except PermanentError as exc:  # this group only: disabled, expired, the OA left it
                log.info("zalo_group_unreadable", group=group_id, code=exc.code, error=str(exc))
                self._resting[group_id] = now + self.sweep_every  # its rows on the feed do not ask every 5 s
                known = replace(known, swept_at=now)
                queued_here = 0
            queued += queued_here
            book = replace(book, groups=(*(g for g in book.groups if g.group_id != group_id), known))
        self._started = True
        self.store.change_group_book(lambda now_stored: groups.read_into(now_stored, book))
        return queued

    def _start(self, book: GroupBook, now: float) -> int:
        """The first read: what the groups' feed holds is history, and the groups are listed; with
        ``sync.import_history_days``, each enabled group's last days of it are imported first (a kill
        before the book is written imports them again, each message once: they are recorded by id)."""
        page = self.zalo.group_feed(0, PAGE)
        times = [r.time_ms for r in page if r.time_ms >= 0]
        newest = max(times, default=0)  # an empty feed holds no history (and Zalo's clock is not ours)
        baseline = Baseline(newest, frozenset(r.message_id for r in page if r.time_ms == newest))
        listed = groups.listed(book, self.zalo.groups())
        imported = 0
        if self.history_days and newest:
            job = HistoryImport(self.history_days, newest - self.history_days * 86_400_000, now)
            imported = sum(self._import(g, baseline, job, now) for g in listed if g.enabled)
        self.store.change_group_book(
            lambda _: GroupBook(baseline, tuple(replace(g, swept_at=now) for g in listed), now)
        )
        self._started = True
        log.info("zalo_groups_baseline_set", groups=len(listed), existing_messages=len(page), imported=imported)
        return imported

    def _import(self, group: KnownGroup, baseline: Baseline, job: HistoryImport, now: float) -> int:
        """One group's history since ``job.since_ms``, below every live message (`history.history_rows`)."""
        key = group_key(group.group_id)

        def read(offset: int, count: int) -> list[ZaloMessage]:
            with purpose(Priority.HISTORY):
                return self.zalo.conversation(key, offset=offset, count=count)

        def older(page: list[ZaloMessage]) -> Callable[[ZaloMessage], bool]:
            return lambda row: 0 <= row.time_ms < job.since_ms

        try:
            walked = pages.walk(iter(pages.OffsetPages(read, lambda r: r.message_id, 0, PAGE)), older, CATCH_UP_PAGES)
        except PermanentError as exc:
            log.info("zalo_group_history_unread", group=group.group_id, error=str(exc))
            return 0
        rows = [r for r in walked.items if baseline.holds(r) and r.time_ms >= job.since_ms][::-1]
        if not rows:
            return 0
        names = dict(groups.members_after(group, {r.content.author_id: r.content.author_name for r in rows}))
        rows = [replace(r, content=replace(r.content, text=groups.incoming_mentions(r.text, names))) for r in rows]
        return self.store.record_history(
            key, group.name, group.avatar, history.history_rows(key, job, rows), history.clocks(rows), now
        )

    def _active(self, baseline: Baseline) -> set[str]:
        """The groups the feed shows new rows of (pages on while a whole page is new)."""
        active: set[str] = set()
        for number in range(FEED_PAGES):
            page = self.zalo.group_feed(number * PAGE, PAGE)
            known = self.store.known_zalo_ids(r.message_id for r in page)
            fresh = [r for r in page if r.message_id not in known and not baseline.holds(r)]
            active |= {group_id_of(r.user_id) for r in fresh}
            if len(fresh) < len(page) or len(page) < PAGE:
                break
        return active

    def _read_group(self, known: KnownGroup, baseline: Baseline, now: float) -> tuple[int, KnownGroup]:
        """A group's rows not recorded yet, recorded oldest first in one transaction."""
        key = group_key(known.group_id)

        def read(offset: int, count: int) -> list[ZaloMessage]:
            with purpose(Priority.CATCHUP):  # sends go first
                return self.zalo.conversation(key, offset=offset, count=count)

        def recorded(page: list[ZaloMessage]) -> Callable[[ZaloMessage], bool]:
            found = self.store.recorded_zalo_ids(r.message_id for r in page)
            return lambda row: row.message_id in found or baseline.holds(row)

        listing = pages.OffsetPages(read, lambda r: r.message_id, 0, PAGE)
        walked = pages.walk(iter(listing), recorded, CATCH_UP_PAGES)
        rows = list({r.message_id: r for r in walked.items}.values())[::-1]  # oldest first
        known = replace(known, swept_at=now)
        sent = self.store.known_zalo_ids(r.message_id for r in rows)  # our own sends, listed back
        fresh = [r for r in rows if r.message_id not in sent]
        if not fresh:
            return 0, known
        seen = {r.content.author_id: r.content.author_name for r in fresh if r.content.author_id}
        known = replace(known, members=groups.members_after(known, seen))
        names = dict(known.members)
        new_rows = [
            NewRow(
                Z2F,
                r.message_id,
                Kind.OA_NOTE if r.from_oa else r.type,
                replace(r.content, text=groups.incoming_mentions(r.content.text, names)),
                max(r.time_ms, 0) / 1000 or now,
                listing=r.listing,
            )
            for r in fresh
        ]
        members_rows = [r for r in fresh if not r.from_oa]
        self.store.record_zalo_messages(
            key,
            known.name,
            known.avatar,
            new_rows,
            cursor=(max(r.time_ms for r in fresh), fresh[-1].message_id),
            last_inbound_ms=max((r.time_ms for r in members_rows), default=0),
            now=now,
            poll_at=now,
        )
        log.info("zalo_group_messages_queued", group=known.group_id, count=len(new_rows))
        return len(new_rows), known
