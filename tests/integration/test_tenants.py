"""Tenants on one store: two desks whose Zalo user ids and FreshChat ids are the same stay apart.

Both engines run on one database, each through the store as its tenant sees it (`Store.for_tenant`), on
sides of their own that hand out the same ids (the fakes number users and conversations alike). Every
statement either engine sends to the database is recorded: each one that reads or writes a desk's table
names the tenant, so no query of one tenant can reach another's rows.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from tests.conftest import FAKES, Bridge, fake_sides, make_engine, make_settings
from zfsync.sim.fakes import FakeClock
from zfsync.store import Store, in_memory

DESK_TABLES = ("contact", "conversation", "message", "state", "token", "health")


def _desk(shared: Store, tenant: int) -> Bridge:
    clock = FakeClock()
    zalo, fc = fake_sides(clock)
    settings = make_settings("http://zalo.fake", "http://freshchat.fake", shared.path, "")
    b = Bridge(
        zalo, fc, "http://zalo.fake", "http://freshchat.fake", settings, clock, shared.for_tenant(tenant), None, FAKES
    )  # type: ignore[arg-type]
    b.engine = make_engine(b)
    b.cycle()
    return b


def _statements(store: Store) -> list[str]:
    seen: list[str] = []
    execute = store.db.execute_sql

    def recording(sql: str, params: object = None, *args: object, **kwargs: object) -> object:
        seen.append(sql)
        return execute(sql, params, *args, **kwargs)

    store.db.execute_sql = recording  # type: ignore[method-assign]
    return seen


def test_two_tenants_with_the_same_ids_never_cross():
    shared = Store.open(Path(in_memory(f"zfsync-tenants-{uuid.uuid4().hex}")))
    try:
        statements = _statements(shared)
        first, second = _desk(shared, 1), _desk(shared, 2)
        for b, word in ((first, "một"), (second, "hai")):
            b.zalo.add_customer_message("u1", "Lan", text=f"xin chào {word}")
            b.settle()
            (conversation,) = [c["conversation_id"] for c in b.fc_state()["conversations"]]
            b.fc.add_agent_message(conversation, f"trả lời {word}")
            b.settle()
        # The same ids on both sides of both desks: user u1, FreshChat's first user and conversation.
        assert first.fc.conversation_of("u1") == second.fc.conversation_of("u1")
        for b, word, other in ((first, "một", "hai"), (second, "hai", "một")):
            texts = [m["message_parts"][0]["text"]["content"] for m in b.customer_messages("u1")]
            assert texts == [f"xin chào {word}"], texts
            assert b.sent_to("u1") == [f"trả lời {word}"]
            assert other not in str(b.fc_state()) and other not in str(b.zalo.sent)
            assert b.store.figures(b.clock()).by_status["z2f"] == {"sent": 1}
            assert b.store.contact("u1") is not None
        # A third tenant's view of the same database holds nothing of theirs.
        third = shared.for_tenant(3)
        assert third.contact("u1") is None and third.figures(0.0).by_status == {}
        assert third.get_state("zalo.feed.baseline") is None
        desk = [s for s in statements if any(re.search(rf'"{t}"', s) for t in DESK_TABLES)]
        assert desk, "the engines ran no statement"
        unconfined = [s for s in desk if '"tenant"' not in s]
        assert unconfined == []
    finally:
        shared.close()


def test_a_tenants_rows_are_changed_through_its_own_view_only():
    shared = Store.open(Path(in_memory(f"zfsync-tenants-{uuid.uuid4().hex}")))
    try:
        one, two = shared.for_tenant(1), shared.for_tenant(2)
        for store in (one, two):
            store.set_state("k", f"tenant {store.tenant}")
        one.delete_state("k")
        assert one.get_state("k") is None and two.get_state("k") == "tenant 2"
        two.set_state("k", "changed")
        assert shared.get_state("k") is None  # tenant 0, the single-OA desk, has none
    finally:
        shared.close()
