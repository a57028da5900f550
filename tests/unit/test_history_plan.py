"""The history import's decisions: which rows it takes, the days it covers, and where its rows queue."""

from __future__ import annotations

from datetime import datetime

import pytest

from zfsync.domain import CONVERSATION, FEED, Baseline, NewRow, RecordedRow, ZaloContent, ZaloMessage
from zfsync.store import Store
from zfsync.sync.read import history
from zfsync.sync.read.interacted import VIETNAM


def row(message_id: str, time_ms: int, from_oa: bool = False, text: str = "", listing: str = CONVERSATION):
    content = ZaloContent("text", text or message_id)
    return ZaloMessage(message_id, "u1", from_oa, time_ms, content, listing=listing)


BASELINE = Baseline(1_000, frozenset({"b"}))


@pytest.mark.parametrize(
    ("rows", "known", "recorded", "taken"),
    [
        ([row("a", 500), row("b", 1_000)], set(), [], ["a", "b"]),  # history, the baseline's own row included
        ([row("a", 50), row("c", 500)], set(), [], ["c"]),  # older than the first day
        ([row("a", 500), row("n", 1_500)], set(), [], ["a"]),  # above the baseline: the live path's
        ([row("a", 500), row("c", 600)], {"a"}, [], ["c"]),  # recorded already (a run before, or a kill)
        ([row("x", -1)], set(), [], []),  # no time: where it stands is unknown
        # the message the live path recorded under the feed's id, listed here under the conversation's
        (
            [row("a", 500), row("conv-b", 1_000, text="b")],
            set(),
            [RecordedRow("b", FEED, False, ZaloContent("text", "b"), 1_000)],
            ["a"],
        ),
    ],
)
def test_what_the_import_takes(rows, known, recorded, taken):
    assert [r.message_id for r in history.to_import(rows, 100, BASELINE, known, recorded)] == taken


@pytest.mark.parametrize(
    ("rows", "clocks"),
    [
        ([row("a", 1, text="hỏi"), row("b", 2, from_oa=True)], (1, 2)),  # answered by OA staff
        # The customer wrote last: an imported question is history, not a customer waiting now.
        ([row("b", 1, from_oa=True), row("a", 2)], (2, 2)),
        ([row("b", 1, from_oa=True)], (0, 1)),
    ],
)
def test_the_customers_clocks_from_their_history(rows, clocks):
    assert history.clocks(rows) == clocks


def test_days_are_whole_vietnamese_days_today_included():
    now = datetime(2026, 12, 3, 1, 30, tzinfo=VIETNAM).timestamp()  # 01:30 in Hanoi, still 2 Dec in UTC
    job = history.request(2, now)
    assert datetime.fromtimestamp(job.since_ms / 1000, VIETNAM) == datetime(2026, 12, 2, tzinfo=VIETNAM)
    assert job.users is None and job.days == 2


@pytest.mark.parametrize("days", [0, -1, 366])
def test_days_out_of_range_are_refused(days):
    with pytest.raises(ValueError, match="1 to 365 days"):
        history.request(days, 0.0)


def test_imported_rows_queue_behind_every_live_row_the_customers_own_included(tmp_path):
    store = Store.open(tmp_path / "z.db")
    imported = [NewRow("z2f", f"h{i}", "text", ZaloContent("text"), float(i), history=True) for i in range(3)]
    store.record_history("u1", "A", "", imported, (2000, 0), 10.0)
    store.record_history(
        "u2", "B", "", [NewRow("z2f", "k0", "text", ZaloContent("text"), 0.5, history=True)], (500, 0), 10.0
    )
    assert [(r.source_id, r.history) for r in store.due_heads("z2f", 99.0, 10)] == [("h0", True), ("k0", True)]
    # A live message of u1's, and one of a third customer's: both go first; u1's history waits behind it.
    store.record_zalo_messages(
        "u1", "A", "", [NewRow("z2f", "live1", "text", ZaloContent("text"), 50.0)], (50_000, "live1"), 1, 50.0
    )
    store.record_zalo_messages(
        "u3", "C", "", [NewRow("z2f", "live3", "text", ZaloContent("text"), 60.0)], (60_000, "live3"), 1, 60.0
    )
    assert [r.source_id for r in store.due_heads("z2f", 99.0, 10)] == ["live1", "live3", "k0"]
    assert store.history_waiting() == 4
    # Nor does it count as a live message waiting long.
    oldest = store.oldest_open("z2f")
    assert oldest is not None and oldest.id != 0 and store.row(oldest.id).source_id == "live1"
    store.close()


def test_the_import_state_survives_a_reopen(tmp_path):
    store = Store.open(tmp_path / "z.db")
    job = history.request(7, 1_800_000_000.0)
    store.save_history_import(job)
    store.close()
    store = Store.open(tmp_path / "z.db")
    assert store.history_import() == job
    store.save_history_import(None)
    assert store.history_import() is None
    store.close()


def test_an_import_asked_for_meanwhile_is_not_overwritten_by_the_one_running(tmp_path):
    store = Store.open(tmp_path / "z.db")
    running = history.request(7, 1_800_000_000.0)
    store.save_history_import(running)
    newer = history.request(30, 1_800_000_060.0)  # `zfsync import-history --days 30` while it runs
    store.save_history_import(newer)
    assert not store.advance_history_import(running.requested_at, running)
    assert not store.advance_history_import(running.requested_at, None)
    assert store.history_import() == newer
    assert store.advance_history_import(newer.requested_at, None) and store.history_import() is None
    store.close()
