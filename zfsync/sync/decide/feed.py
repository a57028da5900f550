"""What one cycle of reading Zalo's feed means, decided with no I/O: from where reading stood (the cursor)
and the scans read, which rows are each user's, who must be taken from their own conversation, whether the
users who interacted must be asked for, and where the mark and the resume point move.

`zfsync.sync.read.zalo_reader` fetches the scans, asks `plan_feed`, and carries the plan out; the table of
cases is tests/unit/test_feed.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from zfsync.domain import Baseline, FeedCursor, Mark, Resume, ZaloMessage
from zfsync.sync.decide.pages import CAPPED, ENDED, REACHED

TIME_SLACK_MS = 600_000  # how far Zalo's clocks may disagree: a recorded row older than the mark by more ends a
# scan whose mark rows vanished, and user/getlist is asked from this long before the mark


@dataclass(frozen=True)
class Scan:
    """What a scan of the feed read, from one offset down to a mark."""

    rows: list[ZaloMessage]  # newest first, each message once
    outcome: str  # REACHED the mark, the feed ENDED first, or the page cap was hit (CAPPED)
    next_offset: int  # where a later scan would read on
    first_page: list[ZaloMessage]  # the page at the scan's start offset, as read
    aligned: bool = True  # False: rows arrived faster than we paged, and the order across a seam is unknown

    @property
    def first_page_ids(self) -> frozenset[str]:
        return frozenset(r.message_id for r in self.first_page)


@dataclass(frozen=True)
class FeedPlan:
    by_user: dict[str, list[ZaloMessage]]  # each user's feed rows, newest first, each once
    catch_up: frozenset[str]  # users to take from their own conversation, down to what was recorded
    ask_interacted: bool  # the feed ended short of a known row: users who wrote only deeper are not in it
    mark: Mark  # where the mark stands once every row above it is recorded
    resume: Resume | None  # where the next cycle reads on, when a scan stopped at its page cap
    moves: bool  # whether the cursor changes, catch-up aside (an idle cycle writes nothing)

    def owed(self, catch_up: frozenset[str]) -> frozenset[str]:
        """Who a cycle cut short during ``catch_up`` would leave unrecorded: the next one finishes them."""
        return catch_up | frozenset(self.by_user)


def below_mark(row: ZaloMessage, mark: Mark, recorded: set[str], baseline: Baseline) -> bool:
    """Whether a feed row was handled by an earlier complete cycle: a row of the mark, history, or (should
    the mark's rows be gone) a recorded row older than the mark by more than clocks disagree."""
    old_and_recorded = row.message_id in recorded and 0 <= row.time_ms < mark.time_ms - TIME_SLACK_MS
    return row.message_id in mark.ids or old_and_recorded or baseline.holds(row)


def plan_feed(cursor: FeedCursor, mark: Mark, top: Scan, deep: Scan | None) -> FeedPlan:
    """``top``: the scan from the newest row down to ``mark`` (the cursor's); ``deep``: the scan an
    earlier capped cycle left to resume (from ``cursor.resume``), if any."""
    resume = cursor.resume
    rows = list(top.rows)
    outcomes = {top.outcome}
    next_resume: Resume | None = None
    if deep is not None and resume is not None:
        # Offsets only grow as messages arrive: resuming at the saved offset may re-read rows, never skip one.
        rows += deep.rows
        outcomes.add(deep.outcome)
        if deep.outcome == CAPPED:
            next_resume = Resume(deep.next_offset, resume.floor)
    if top.outcome == CAPPED:
        # The older mark is the deeper one: one resume reads down to it.
        floor = next_resume.floor if next_resume else mark
        next_resume = Resume(min(top.next_offset, next_resume.offset if next_resume else top.next_offset), floor)
    by_user: dict[str, dict[str, ZaloMessage]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, {}).setdefault(row.message_id, row)
    catch_up = set(cursor.owed)
    if top.outcome != REACHED or resume is not None or not top.aligned:
        # Some rows above the known ones may be unread, or their order across pages unknown: take each
        # user seen from their own conversation, down to what we recorded, so what we queue for them is
        # complete and in order.
        catch_up |= set(by_user)
    # Every row above the new mark gets recorded (or is known, or history) by the end of this cycle.
    first_ids = top.first_page_ids
    new_mark = Mark(max([mark.time_ms, *(r.time_ms for r in top.first_page)]), first_ids) if first_ids else mark
    return FeedPlan(
        by_user={user: list(found.values()) for user, found in by_user.items()},
        catch_up=frozenset(catch_up),
        ask_interacted=ENDED in outcomes,
        mark=new_mark,
        resume=next_resume,
        moves=new_mark != mark or resume is not None or next_resume is not None,
    )
