"""Prepared queries (`zfsync.store.prepared`): built once, filled at each run, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import pgcluster
from devtools.bulk import MappedContact, import_mapped
from zfsync.domain import SideHealth, ZaloContent
from zfsync.store import NewRow, Store
from zfsync.store.prepared import Slot


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        opened = Store.open(request.getfixturevalue("pg_url"), pgcluster.PASSWORD)
    else:
        opened = Store.open(tmp_path / "z.db")
    yield opened
    opened.close()


def mapped(store: Store, count: int, next_poll_at: float = 100.0) -> None:
    import_mapped(store, [MappedContact(f"u{n}", f"fcu{n}", f"c{n}", 50.0 + n, next_poll_at + n) for n in range(count)])


def test_a_slot_takes_the_value_of_each_run_and_the_sql_is_built_once(store: Store) -> None:
    mapped(store, 5)
    Conversation = store.tables.Conversation
    builds = []

    def build():
        builds.append(1)
        return Conversation.select().where(Conversation.next_poll_at <= Slot("now")).order_by(Conversation.id)

    for now, expected in [(99.0, []), (100.0, ["c0"]), (102.5, ["c0", "c1", "c2"]), (1e9, [f"c{n}" for n in range(5)])]:
        rows = store.prepared("test_due", build).rows(now=now)
        built = Conversation.select().where(Conversation.next_poll_at <= now).order_by(Conversation.id)
        assert [r.fc_conversation_id for r in rows] == [r.fc_conversation_id for r in built] == expected
    assert len(builds) == 1


def test_a_slot_goes_through_its_fields_conversion(store: Store) -> None:
    mapped(store, 2)
    Conversation = store.tables.Conversation
    Conversation.update(resolved=True).where(Conversation.fc_conversation_id == "c1").execute()
    query = store.prepared("test_resolved", lambda: Conversation.select().where(Conversation.resolved == Slot("r")))
    assert [r.fc_conversation_id for r in query.rows(r=True)] == ["c1"]
    assert [r.fc_conversation_id for r in query.rows(r=False)] == ["c0"]
    assert all(isinstance(r.resolved, bool) for r in query.rows(r=False))  # rows come back converted too


@pytest.mark.parametrize("given", [{}, {"now": 1.0, "extra": 2}, {"later": 1.0}])
def test_a_run_must_fill_exactly_the_slots(store: Store, given: dict) -> None:
    Conversation = store.tables.Conversation
    query = store.prepared("test_slots", lambda: Conversation.select().where(Conversation.next_poll_at <= Slot("now")))
    with pytest.raises(TypeError, match="slots"):
        query.rows(**given)


@pytest.mark.parametrize("count", [1, 2, 3, 10, 17, 400])
def test_recorded_ids_are_found_by_either_id_whatever_their_count(store: Store, count: int) -> None:
    rows = [
        NewRow("z2f", f"m{i}", "text", ZaloContent("text"), 10.0 + i, alias_id=f"a{i}") for i in range(0, 2 * count, 2)
    ]
    store.record_zalo_messages("u", "U", "", rows, (1, "m0"), 1, now=20.0)
    asked = [f"m{i}" if i % 4 else f"a{i}" for i in range(count)] + ["unknown"]
    expected = {f"m{i}" if i % 4 else f"a{i}" for i in range(0, count, 2)}
    assert store.recorded_zalo_ids(asked) == expected
    assert store.recorded_zalo_ids(asked[:1]) == expected & set(asked[:1])
    assert store.recorded_zalo_ids([]) == set()


def test_a_contact_that_does_not_exist_is_an_error(store: Store) -> None:
    mapped(store, 1)
    assert store.contact_by_id(store.contact("u0").id).fc_user_id == "fcu0"  # type: ignore[union-attr]
    with pytest.raises(store.tables.Contact.DoesNotExist):
        store.contact_by_id(12345)


@pytest.mark.parametrize("cursor", [None, ("fm9", 90.0)])
@pytest.mark.parametrize("activity_at", [None, 80.0])
@pytest.mark.parametrize("resolved", [None, True, False])
def test_a_conversation_read_moves_only_what_it_names(store: Store, cursor, activity_at, resolved) -> None:
    mapped(store, 2)
    first, other = (store.current_conversation(store.contact(u).id) for u in ("u0", "u1"))  # type: ignore[union-attr]
    assert first is not None and other is not None
    store.record_conversation_read(first.id, first.contact_id, [], cursor, 500.0, activity_at, resolved, now=90.0)
    after = store.current_conversation(first.contact_id)
    assert after is not None
    assert after.next_poll_at == 500.0
    assert (after.cursor_id, after.cursor_time) == (cursor or (first.cursor_id, first.cursor_time))
    assert after.last_activity_at == (activity_at or first.last_activity_at)
    assert after.resolved is (first.resolved if resolved is None else resolved)
    assert store.current_conversation(other.contact_id) == other  # only the conversation named


def test_named_state_and_side_health_round_trip(store: Store) -> None:
    assert store.get_state("k", "default") == "default"
    store.set_state("k", "one")
    store.set_state("k", "two")
    assert store.get_state("k") == "two"
    store.set_health("zalo", SideHealth.OK, 10.0)
    store.set_health("zalo", SideHealth.TRANSIENT_ERROR, 20.0, "timed out")
    health = store.health()["zalo"]
    assert (health["state"], health["last_ok_at"], health["last_error_at"], health["last_error"]) == (
        "TRANSIENT_ERROR",
        10.0,
        20.0,
        "timed out",
    )
    store.set_health("zalo", SideHealth.OK, 30.0)  # a good poll: one update, the last error kept
    health = store.health()["zalo"]
    assert (health["state"], health["last_ok_at"], health["last_error_at"], health["last_error"]) == (
        "OK",
        30.0,
        20.0,
        "timed out",
    )
