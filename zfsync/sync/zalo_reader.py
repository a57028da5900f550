"""Read Zalo: find every message newer than what we recorded, and queue it for FreshChat.

``listrecentchat`` is the change feed: at most 10 rows a call, newest first, OA sends included (research
§1, §8). A cycle pages back until it meets a row at or below the feed's high-water mark. Offsets shift
while we page, so rows repeat: identity is the message id, never the offset. If the scan stops before the
mark (page cap, or the feed ends: its depth is undocumented), each user seen is caught up on their own
through ``conversation`` down to their cursor.

On the very first cycle, what the feed already holds is history: it becomes the baseline, and only later
messages are bridged.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from zfsync.domain import Z2F, ZaloMessage
from zfsync.store import NewRow, Store
from zfsync.sync.ports import ZaloSide

log = structlog.get_logger("zfsync.sync")

PAGE = 10
HWM_KEY = "zalo.feed_hwm"
RESUME_KEY = "zalo.feed_resume"
GAP_FILL_PAGE_CAP = 2000  # one user's backlog; far beyond any realistic downtime
GAP_FILL_WORKERS = 8
REACHED, ENDED, CAPPED = "reached", "ended", "capped"
BASELINE_KEY = "zalo.baseline"


@dataclass(frozen=True)
class Scan:
    rows: list[ZaloMessage]
    outcome: str  # REACHED the floor, the feed ENDED first, or the page cap was hit (CAPPED)
    next_offset: int


def _key_text(key: tuple[int, str]) -> str:
    return f"{key[0]}:{key[1]}"


def _parse_key(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    time_ms, _, message_id = text.partition(":")
    return int(time_ms), message_id


class ZaloReader:
    def __init__(self, zalo: ZaloSide, store: Store, clock: Callable[[], float], page_cap: int):
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.page_cap = page_cap
        self._pool = ThreadPoolExecutor(max_workers=GAP_FILL_WORKERS, thread_name_prefix="gap-fill")

    def poll(self) -> int:
        """One cycle; returns how many new rows were queued."""
        hwm = _parse_key(self.store.get_state(HWM_KEY))
        top = self._scan(0, hwm)
        if hwm is None:
            newest = max((r.key for r in top.rows), default=(0, ""))
            with self.store.atomic():
                self.store.set_state(BASELINE_KEY, _key_text(newest))
                self.store.set_state(HWM_KEY, _key_text(newest))
            log.info("zalo_baseline_set", existing_messages=len(top.rows))
            return 0
        baseline = _parse_key(self.store.get_state(BASELINE_KEY)) or (0, "")
        rows = list(top.rows)
        resume = self._resume()
        next_resume: tuple[int, tuple[int, str]] | None = None
        if resume is not None:
            # An earlier scan stopped at its page cap: read on from there. Offsets only grow as messages
            # arrive, so resuming at the saved offset may re-read rows but never skips one.
            deep = self._scan(resume[0], resume[1])
            rows += deep.rows
            if deep.outcome == CAPPED:
                next_resume = (deep.next_offset, resume[1])
        if top.outcome == CAPPED:
            offset = min(top.next_offset, next_resume[0] if next_resume else top.next_offset)
            floor = min(hwm, next_resume[1] if next_resume else hwm)
            next_resume = (offset, floor)
        by_user: dict[str, dict[str, ZaloMessage]] = {}
        for row in rows:
            by_user.setdefault(row.user_id, {})[row.message_id] = row
        if top.outcome != REACHED or resume is not None:
            # Some rows above the mark may be unread: take each user seen from their own conversation,
            # down to their cursor, so what we queue for them is complete and in order.
            log.info("zalo_feed_catch_up", users=len(by_user), rows=len(rows), resuming=next_resume is not None)
            # Each user's conversation is read on its own, so several are read at once.
            for user_id, found in self._pool.map(lambda u: (u, self._gap_fill(u, baseline)), list(by_user)):
                for row in found:
                    by_user[user_id][row.message_id] = row
        queued = 0
        for user_id, user_rows in by_user.items():
            queued += self._record(user_id, list(user_rows.values()), baseline)
        newest = max((r.key for r in top.rows), default=hwm)
        with self.store.atomic():
            if newest > hwm:
                self.store.set_state(HWM_KEY, _key_text(newest))
            if next_resume is None:
                self.store.delete_state(RESUME_KEY)
            else:
                self.store.set_state(RESUME_KEY, f"{next_resume[0]}|{_key_text(next_resume[1])}")
        return queued

    def _resume(self) -> tuple[int, tuple[int, str]] | None:
        text = self.store.get_state(RESUME_KEY)
        if not text:
            return None
        offset, _, floor = text.partition("|")
        parsed = _parse_key(floor)
        return (int(offset), parsed) if parsed else None

    def _scan(self, start: int, floor: tuple[int, str] | None) -> Scan:
        """Feed rows above ``floor`` from offset ``start``, at most `page_cap` pages."""
        collected: dict[str, ZaloMessage] = {}
        offset = start
        for _ in range(self.page_cap):
            page = self.zalo.recent_messages(offset=offset, count=PAGE)
            offset += PAGE
            reached = False
            for row in page:
                if floor is not None and row.time_ms >= 0 and row.key <= floor:
                    reached = True
                else:
                    collected[row.message_id] = row
            if reached or floor is None or floor == (0, ""):
                if reached or len(page) < PAGE:
                    return Scan(list(collected.values()), REACHED, offset)
            elif len(page) < PAGE:
                return Scan(list(collected.values()), ENDED, offset)  # the feed's depth may be capped
        return Scan(list(collected.values()), CAPPED, offset)

    def _gap_fill(self, user_id: str, baseline: tuple[int, str]) -> list[ZaloMessage]:
        contact = self.store.contact(user_id)
        floor = (contact.cursor_time_ms, contact.cursor_id) if contact else baseline
        found: list[ZaloMessage] = []
        for page_number in range(GAP_FILL_PAGE_CAP):
            page = self.zalo.conversation(user_id, offset=page_number * PAGE, count=PAGE)
            reached = False
            for row in page:
                if row.time_ms >= 0 and row.key <= floor:
                    reached = True
                else:
                    found.append(row)
            if reached or len(page) < PAGE:
                break
        return found

    def _record(self, user_id: str, rows: list[ZaloMessage], baseline: tuple[int, str]) -> int:
        known = self.store.known_zalo_ids(r.message_id for r in rows)
        fresh = sorted(
            (r for r in rows if r.message_id not in known and (r.time_ms < 0 or r.key > baseline)),
            key=lambda r: r.key,
        )
        if not fresh:
            return 0
        new_rows = []
        for row in fresh:
            kind = "oa_note" if row.from_oa else row.type
            source_time = (row.time_ms if row.time_ms >= 0 else int(self.clock() * 1000)) / 1000
            new_rows.append(NewRow(Z2F, row.message_id, kind, row.raw, source_time))
        customer = [r for r in fresh if not r.from_oa]
        named = next((r for r in reversed(customer) if r.user_name), None)
        self.store.record_zalo_messages(
            user_id,
            named.user_name if named else "",
            named.user_avatar if named else "",
            new_rows,
            cursor=max(r.key for r in fresh),
            last_inbound_ms=max((r.time_ms for r in customer), default=0),
            now=self.clock(),
        )
        log.info("zalo_messages_queued", user=user_id, count=len(new_rows))
        return len(new_rows)
