from __future__ import annotations

import dataclasses
import os
import stat

import pytest

from zfsync.domain import ZaloContent
from zfsync.domain.errors import StoreError
from zfsync.store import NewRow, Store
from zfsync.store.migrations import LATEST


def test_fresh_store_is_private_and_at_the_latest_schema(tmp_path):
    store = Store.open(tmp_path / "sub" / "z.db")
    assert stat.S_IMODE(os.stat(tmp_path / "sub" / "z.db").st_mode) == 0o600
    assert store.tables.SchemaVersion.get().version == LATEST
    assert store.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    store.close()


def test_a_newer_schema_is_refused(tmp_path):
    store = Store.open(tmp_path / "z.db")
    store.tables.SchemaVersion.update(version=LATEST + 1).execute()
    store.close()
    with pytest.raises(StoreError, match="upgrade zfsync"):
        Store.open(tmp_path / "z.db")


def test_rows_are_unique_per_source_and_heads_keep_order(tmp_path):
    store = Store.open(tmp_path / "z.db")
    rows = [NewRow("z2f", f"m{i}", "text", ZaloContent("text"), 10.0 + i) for i in range(3)]
    contact = store.record_zalo_messages("u", "U", "", rows, (13000, "m2"), 13000, now=20.0)
    assert store.insert_rows(contact.id, rows, 21.0) == 0  # seen again: nothing new
    (head,) = store.due_heads("z2f", 100.0, 10)
    assert head.source_id == "m0"
    store.postpone(head.id, 200.0, "later", "", outcome_unknown=False)
    assert store.due_heads("z2f", 100.0, 10) == []  # the stuck head holds back its own contact only
    other = store.record_zalo_messages(
        "v", "V", "", [NewRow("z2f", "x", "text", ZaloContent("text"), 11.0)], (1, "x"), 1, 20.0
    )
    assert [r.contact_id for r in store.due_heads("z2f", 100.0, 10)] == [other.id]
    store.close()


def test_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "z.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be used"):
        Store.open(path)


CLOCK_COLUMNS = (
    "last_interaction_ms",
    "free_replies_left",
    "warned_window_ms",
    "warned_free_ms",
    "quota_checked_at",
    "shown_profile",
    "answered_ms",
    "assign_checked_at",
)


def test_a_version_1_store_is_migrated_and_keeps_its_rows(tmp_path):
    store = Store.open(tmp_path / "z.db")
    store.insert_rows(_contact(store), [NewRow("z2f", "m1", "text", ZaloContent("text"), 1.0)], 1.0)
    store.set_state("feed.cursor", "kept")
    store.set_health("zalo", "ok", 1.0)
    # Make it what version 1 wrote: no tenant, no echo_id, listing or alias_id column, version 1 recorded.
    _before_tenants(store)
    for column in ("echo_id", "alias_id"):
        store.db.execute_sql(f"DROP INDEX IF EXISTS message_{column}")
        store.db.execute_sql(f"ALTER TABLE message DROP COLUMN {column}")
    store.db.execute_sql("ALTER TABLE message DROP COLUMN listing")
    store.db.execute_sql("ALTER TABLE message DROP COLUMN history")
    for column in CLOCK_COLUMNS:
        store.db.execute_sql(f"ALTER TABLE contact DROP COLUMN {column}")
    store.db.execute_sql("ALTER TABLE conversation DROP COLUMN resolved_at")
    store.tables.SchemaVersion.update(version=1).execute()
    store.close()
    store = Store.open(tmp_path / "z.db")
    assert store.tables.SchemaVersion.get().version == LATEST == 10
    columns = [c.name for c in store.db.get_columns("message")]
    assert {"echo_id", "listing", "alias_id", "history"} <= set(columns)
    assert set(CLOCK_COLUMNS) <= {c.name for c in store.db.get_columns("contact")}
    assert "resolved_at" in {c.name for c in store.db.get_columns("conversation")}
    assert store.contact("u1").free_replies_left is None
    assert store.known_zalo_ids(["m1"]) == {"m1"}
    assert [r.history for r in store.due_heads("z2f", 9.0, 10)] == [False]
    assert store.get_state("feed.cursor") == "kept" and store.health()["zalo"]["state"] == "ok"
    store.close()


def _before_tenants(store: Store) -> None:
    """Undo schema step 10 on a SQLite store: keys without a tenant, no fleet tables."""
    db = store.db
    for table, unique in (
        ("contact", "zalo_user_id"),
        ("conversation", "fc_conversation_id"),
        ("message", "direction, source_id, part"),
    ):
        db.execute_sql(f"DROP INDEX {table}_tenant_{unique.replace(', ', '_')}")
        db.execute_sql(f"ALTER TABLE {table} DROP COLUMN tenant")
        db.execute_sql(f"CREATE UNIQUE INDEX {table}_{unique.replace(', ', '_')} ON {table} ({unique})")
    for table, shape in (
        ("state", "key VARCHAR(255) NOT NULL PRIMARY KEY, value TEXT NOT NULL"),
        (
            "token",
            "provider VARCHAR(255) NOT NULL PRIMARY KEY, access_token TEXT NOT NULL, refresh_token TEXT NOT NULL,"
            " expires_at REAL NOT NULL, updated_at REAL NOT NULL, dead_reason TEXT NOT NULL",
        ),
        (
            "health",
            "side VARCHAR(255) NOT NULL PRIMARY KEY, state VARCHAR(255) NOT NULL, last_ok_at REAL,"
            " last_error_at REAL, last_error TEXT NOT NULL, updated_at REAL NOT NULL",
        ),
    ):
        columns = ", ".join(part.split()[0] for part in shape.split(", "))
        db.execute_sql(f"ALTER TABLE {table} RENAME TO {table}_now")
        db.execute_sql(f"CREATE TABLE {table} ({shape})")
        db.execute_sql(f"INSERT INTO {table} SELECT {columns} FROM {table}_now")
        db.execute_sql(f"DROP TABLE {table}_now")
    db.execute_sql("DROP TABLE tenant")
    db.execute_sql("DROP TABLE member")


def _contact(store: Store) -> int:
    contact = store.record_zalo_messages("u1", "A", "", [], cursor=(1, "x"), last_inbound_ms=1, now=1.0)
    return contact.id


def test_two_stores_in_one_process_stay_apart(tmp_path):
    first = Store.open(tmp_path / "a.db")
    second = Store.open(tmp_path / "b.db")
    first.set_state("where", "a")  # through the first store, opened before the second
    second.set_state("where", "b")
    assert first.get_state("where") == "a" and second.get_state("where") == "b"
    contact = first.record_zalo_messages(
        "u", "U", "", [NewRow("z2f", "m", "text", ZaloContent("text"), 1.0)], (1, "m"), 1, 2.0
    )
    assert [r.source_id for r in first.due_heads("z2f", 9.0, 10)] == ["m"]
    assert second.due_heads("z2f", 9.0, 10) == [] and second.contact("u") is None
    second.close()
    assert first.contact_by_id(contact.id).zalo_user_id == "u"  # closing one leaves the other open
    first.close()


def test_the_store_hands_out_frozen_values_with_the_content_typed(tmp_path):
    store = Store.open(tmp_path / "z.db")
    contact = store.record_zalo_messages(
        "u", "U", "", [NewRow("z2f", "m", "text", ZaloContent("text", "chào"), 1.0)], (1, "m"), 1, 2.0
    )
    (row,) = store.due_heads("z2f", 9.0, 10)
    assert row.content == ZaloContent("text", "chào")
    with pytest.raises(dataclasses.FrozenInstanceError):
        contact.display_name = "other"  # type: ignore[misc]
    store.close()


def test_the_feed_cursor_is_typed_and_reads_what_every_version_wrote(tmp_path):
    from zfsync.domain import Baseline, Mark, Resume

    store = Store.open(tmp_path / "z.db")
    assert store.feed_cursor().mark is None  # before the first start
    store.start_feed(Baseline(5, frozenset({"a", "b"})), Mark(9, frozenset({"c"})))
    store.move_feed(Mark(12, frozenset({"d", "e"})), Resume(40, Mark(9, frozenset({"c"}))))
    cursor = store.feed_cursor()
    assert cursor.baseline == Baseline(5, frozenset({"a", "b"}))
    assert cursor.mark == Mark(12, frozenset({"d", "e"}))
    assert cursor.resume == Resume(40, Mark(9, frozenset({"c"})))
    store.move_feed(Mark(13, frozenset({"f"})), None)
    assert store.feed_cursor().resume is None
    store.set_state("zalo.feed_hwm", "77:m1")  # zfsync 0.1's form
    assert store.feed_cursor().mark == Mark(77, frozenset({"m1"}))
    store.close()


def test_a_failing_store_is_said_once_then_once_a_minute_and_the_beacon_tells_status(tmp_path):
    import io
    import json
    import sqlite3

    from zfsync import log
    from zfsync.runtime import status
    from zfsync.store.health import Beacon, StoreWatch

    out = io.StringIO()
    log.setup("info", "json", out)
    store = Store.open(tmp_path / "z.db")
    beacon = Beacon(tmp_path / "z.db")
    beacon.open()
    clock = [1000.0]
    watch = StoreWatch(beacon, clock=lambda: clock[0], monotonic=lambda: clock[0])
    full = sqlite3.OperationalError("database or disk is full")
    for _ in range(6000):  # ten minutes of failing writes, ten a second
        watch.failed(full, "zalo")
        clock[0] += 0.1
    store.set_state(status.HEARTBEAT_KEY, str(clock[0]))
    report = status.collect(store, now=clock[0])
    assert report["store"]["up"] is False and report["exit_code"] == status.DOWN
    assert "free disk space" in report["store"]["fix"] and "database or disk is full" in report["store"]["error"]
    watch.worked()
    assert status.collect(store, now=clock[0])["store"]["up"] is True
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == ["store_failing", *["store_still_failing"] * 9, "store_recovered"]
    assert (tmp_path / "z.db.status").stat().st_size == 4096  # written in place, never grown
    store.close()


@pytest.mark.parametrize(
    ("active", "quiet", "limit", "taken"),
    [
        (6, 6, 8, ("a0", "a1", "a2", "a3", "a4", "a5", "q0", "q1")),  # the active ones take three quarters
        (2, 6, 8, ("a0", "a1", "q0", "q1", "q2", "q3", "q4", "q5")),  # the quiet ones take what is left
        (9, 0, 8, ("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7")),  # all of it when none else waits
        (0, 9, 8, ("q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7")),
        (3, 3, 3, ("a0", "a1", "a2")),  # below four, a quarter is nothing
        (3, 3, 0, ()),
    ],
)
def test_the_conversations_due_put_the_active_first_but_never_starve_the_quiet(tmp_path, active, quiet, limit, taken):
    store = Store.open(tmp_path / "zfsync.db")
    for prefix, count, activity in (("a", active, 900.0), ("q", quiet, 100.0)):
        for n in range(count):
            user = f"{prefix}{n}"
            contact = store.record_zalo_messages(user, "A", "", [], cursor=(1, "x"), last_inbound_ms=1, now=1.0)
            conversation = store.add_conversation(contact.id, user, 1000.0, active_at=activity)
            store.set_next_poll(conversation.id, 10.0 + n)
    due = store.conversations_due(now=50.0, limit=limit, active_since=500.0)
    assert tuple(c.fc_conversation_id for c in due) == taken
    store.close()
