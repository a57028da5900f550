"""The feed planner: what one cycle of reading Zalo's feed means, as a table of cursors, scans and plans.

Each row is a case the integration tests of catch-up, feed depth, overlapping pages and owed catch-ups
exercise through the simulators (tests/integration/test_catchup.py, test_fidelity.py, test_hostile.py)."""

from __future__ import annotations

import pytest

from zfsync.domain import Baseline, FeedCursor, Mark, Resume, ZaloContent, ZaloMessage
from zfsync.sync.decide.feed import TIME_SLACK_MS, FeedPlan, Scan, below_mark, plan_feed
from zfsync.sync.decide.pages import CAPPED, ENDED, REACHED


def row(message_id: str, user: str, time_ms: int) -> ZaloMessage:
    return ZaloMessage(message_id, user, False, time_ms, ZaloContent("text", message_id))


MARK = Mark(1000, frozenset({"m0"}))
OLD = Mark(500, frozenset({"k0"}))  # an older mark, where a capped scan of an earlier cycle was to read down to
HISTORY = Baseline(100, frozenset())
A1, A2, B1 = row("a1", "A", 1100), row("a2", "A", 1200), row("b1", "B", 1150)
KNOWN = row("m0", "A", 1000)


def cursor(resume: Resume | None = None, owed: frozenset[str] = frozenset()) -> FeedCursor:
    return FeedCursor(MARK, HISTORY, resume, owed)


def scan(rows, outcome=REACHED, first_page=None, next_offset=9, aligned=True) -> Scan:
    return Scan(list(rows), outcome, next_offset, list(first_page if first_page is not None else rows), aligned)


def plan(by_user, catch_up=(), ask=False, mark=MARK, resume=None, moves=False) -> FeedPlan:
    return FeedPlan(by_user, frozenset(catch_up), ask, mark, resume, moves)


NEW_MARK = Mark(1200, frozenset({"a2", "b1", "a1", "m0"}))


@pytest.mark.parametrize(
    ("name", "cursor", "top", "deep", "expected"),
    [
        # An idle cycle: the first page is the mark's own row. Nothing to record, nothing written.
        ("idle", cursor(), scan([], first_page=[KNOWN]), None, plan({}, mark=Mark(1000, frozenset({"m0"})))),
        # New rows above the mark, all on the first page: each user's rows, the mark moves to that page.
        (
            "new rows",
            cursor(),
            scan([A2, B1, A1], first_page=[A2, B1, A1, KNOWN]),
            None,
            plan({"A": [A2, A1], "B": [B1]}, mark=NEW_MARK, moves=True),
        ),
        # The page cap came before the mark: everyone seen is taken from their conversation, and the next
        # cycle reads on from where this scan stopped, down to this cycle's mark.
        (
            "capped",
            cursor(),
            scan([A2, B1, A1], CAPPED, first_page=[A2, B1, A1, KNOWN], next_offset=27),
            None,
            plan({"A": [A2, A1], "B": [B1]}, {"A", "B"}, mark=NEW_MARK, resume=Resume(27, MARK), moves=True),
        ),
        # The feed ended before any known row (its depth is undocumented): users who wrote only deeper than
        # it shows must be asked for (user/getlist), and everyone seen is caught up.
        (
            "ended",
            cursor(),
            scan([A1], ENDED, first_page=[A1]),
            None,
            plan({"A": [A1]}, {"A"}, ask=True, mark=Mark(1100, frozenset({"a1"})), moves=True),
        ),
        # Rows arrived faster than we paged (the overlap row was not found again): order across the seam is
        # unknown, so everyone seen is taken from their conversation.
        (
            "shifted",
            cursor(),
            scan([A2, A1], first_page=[A2, A1, KNOWN], aligned=False),
            None,
            plan({"A": [A2, A1]}, {"A"}, mark=Mark(1200, frozenset({"a2", "a1", "m0"})), moves=True),
        ),
        # A resume that reaches its older mark: the resume point is cleared, and what it read is caught up.
        (
            "resume reached",
            cursor(Resume(27, OLD)),
            scan([], first_page=[KNOWN]),
            scan([B1], first_page=[B1]),
            plan({"B": [B1]}, {"B"}, moves=True),
        ),
        # A resume capped again: it reads on next cycle from further down, to the same older mark.
        (
            "resume capped",
            cursor(Resume(27, OLD)),
            scan([], first_page=[KNOWN]),
            scan([B1], CAPPED, next_offset=45),
            plan({"B": [B1]}, {"B"}, resume=Resume(45, OLD), moves=True),
        ),
        # Both capped: one resume, from the nearer offset, down to the deeper (older) mark.
        (
            "both capped",
            cursor(Resume(27, OLD)),
            scan([A1], CAPPED, first_page=[A1], next_offset=18),
            scan([B1], CAPPED, next_offset=45),
            plan(
                {"A": [A1], "B": [B1]},
                {"A", "B"},
                mark=Mark(1100, frozenset({"a1"})),
                resume=Resume(18, OLD),
                moves=True,
            ),
        ),
        # A resume whose deep offset Zalo refused (the feed ends there): the users must be asked for.
        (
            "resume ended",
            cursor(Resume(27, OLD)),
            scan([], first_page=[KNOWN]),
            scan([], ENDED, first_page=[]),
            plan({}, ask=True, moves=True),
        ),
        # A cycle cut short left customers owed a catch-up: this one finishes them, even when idle.
        ("owed", cursor(owed=frozenset({"C"})), scan([], first_page=[KNOWN]), None, plan({}, {"C"})),
        # An empty feed (a new OA): the mark stays; the feed ended, so the users who interacted are asked.
        ("empty feed", cursor(), scan([], ENDED, first_page=[]), None, plan({}, ask=True)),
        # A row listed twice (offsets shift while we page) is each user's once.
        (
            "repeated row",
            cursor(),
            scan([A2, A2, A1], first_page=[A2, A1, KNOWN]),
            None,
            plan({"A": [A2, A1]}, mark=Mark(1200, frozenset({"a2", "a1", "m0"})), moves=True),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_plan_feed(name, cursor, top, deep, expected):
    assert plan_feed(cursor, MARK, top, deep) == expected


def test_owed_users_are_the_catch_up_and_everyone_the_feed_showed():
    planned = plan_feed(cursor(), MARK, scan([A1, B1], CAPPED), None)
    assert planned.owed(frozenset({"A", "Z"})) == {"A", "B", "Z"}


LATE = Mark(10_000_000, frozenset({"m9"}))
OLDER = LATE.time_ms - TIME_SLACK_MS - 1  # older than the mark by more than Zalo's clocks may disagree


@pytest.mark.parametrize(
    ("message", "recorded", "below"),
    [
        (row("m9", "A", LATE.time_ms), set(), True),  # a row of the mark
        (row("h", "A", 50), set(), True),  # history, older than the baseline
        (row("old", "A", OLDER), {"old"}, True),  # recorded, and far older: the mark's own rows vanished
        (row("near", "A", LATE.time_ms - 5), {"near"}, False),  # recorded, but clocks may disagree that much
        (row("new", "A", LATE.time_ms + 1), set(), False),
        (row("unknown time", "A", -1), {"unknown time"}, False),
    ],
)
def test_below_mark(message, recorded, below):
    assert below_mark(message, LATE, recorded, HISTORY) is below
