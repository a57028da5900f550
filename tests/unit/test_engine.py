"""The sync engine on the in-memory fakes of both sides (`zfsync.sim.fakes`) and a real store: the core's
behaviour in milliseconds, with no HTTP and no simulator. The simulators keep the end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.drive import Drive
from tests.conftest import make_settings
from zfsync.domain import Kind, TextPart, ZaloTokens
from zfsync.domain.errors import PermanentError
from zfsync.runtime.app import build_engine
from zfsync.sides.quota import Quota
from zfsync.sim.fakes import FakeClock, FakeFreshChat, FakeZalo
from zfsync.store import Store
from zfsync.sync.engine import Engine

KHANH, LAN = "2512007384617209999", "2512007384617200001"


@dataclass
class World:
    zalo: FakeZalo
    fc: FakeFreshChat
    store: Store
    clock: FakeClock
    engine: Engine
    settings: object

    @property
    def drive(self) -> Drive:
        return Drive(self.settings, self.store, self.engine)  # type: ignore[arg-type]

    def cycle(self, times: int = 1) -> None:
        for _ in range(times):
            self.drive.zalo()
            self.clock.advance(2)
            self.drive.freshchat()
            self.clock.advance(3)

    def restart(self) -> None:
        self.store.close()
        self.store = Store.open(self.settings.store_path)  # type: ignore[attr-defined]
        self.engine = build_engine(self.settings, self.store, self.zalo, self.fc, self.clock, lane_threads=False)  # type: ignore[arg-type]

    def customer_texts(self, user_id: str) -> list[str]:
        user = next((u for u in self.fc.users.values() if u.reference_id == f"zalo-{user_id}"), None)
        if user is None:
            return []
        return [
            p.text
            for c, owner in self.fc.owner.items()
            if owner == user.id
            for m in self.fc.conversations[c]
            if m.actor_type == "user"
            for p in m.parts
            if isinstance(p, TextPart)
        ]

    def conversation_of(self, user_id: str) -> str:
        user = next(u for u in self.fc.users.values() if u.reference_id == f"zalo-{user_id}")
        return next(c for c in reversed(self.fc.conversations) if self.fc.owner[c] == user.id)

    def sent_to(self, user_id: str) -> list[str]:
        return [m.text for m in self.zalo.messages if m.from_oa and m.user_id == user_id]

    def notes(self) -> list[str]:
        return [
            p.text
            for messages in self.fc.conversations.values()
            for m in messages
            if m.message_type == "private"
            for p in m.parts
            if isinstance(p, TextPart)
        ]


@pytest.fixture
def world(tmp_path: Path) -> World:
    clock = FakeClock()
    zalo = FakeZalo(clock=clock, quota=Quota("zalo", 100_000, clock, clock, clock.advance, minute_windows=True))
    fc = FakeFreshChat(clock=clock, quota=Quota("freshchat", 100_000, clock, clock, clock.advance))
    settings = make_settings("http://zalo.fake", "http://freshchat.fake", tmp_path / "zfsync.db")
    store = Store.open(settings.store_path)
    store.save_tokens(ZaloTokens("a", "r", 90_000), clock())
    world = World(zalo, fc, store, clock, build_engine(settings, store, zalo, fc, clock, lane_threads=False), settings)  # type: ignore[arg-type]
    world.cycle()  # the first cycle takes what the feed holds as history
    return world


def test_customer_messages_cross_in_order_once_across_restarts(world):
    for n in range(25):
        world.zalo.customer_writes(KHANH if n % 3 else LAN, f"tin {n}", "Minh Khánh")
    world.cycle()
    world.restart()
    world.cycle(2)
    assert world.customer_texts(KHANH) == [f"tin {n}" for n in range(25) if n % 3]
    assert world.customer_texts(LAN) == [f"tin {n}" for n in range(25) if not n % 3]


def test_an_agent_reply_crosses_once_and_its_echo_is_not_bridged_back(world):
    world.zalo.customer_writes(KHANH, "xin chào")
    world.cycle()
    world.fc.agent_writes(world.conversation_of(KHANH), "Dạ, em chào anh")
    world.cycle(3)
    assert world.sent_to(KHANH) == ["Dạ, em chào anh"]
    assert world.customer_texts(KHANH) == ["xin chào"]  # the OA's send in Zalo's feed is ours: not mirrored
    assert world.notes() == []


def test_a_long_reply_is_split_and_order_kept(world):
    world.zalo.customer_writes(KHANH, "hỏi")
    world.cycle()
    world.fc.agent_writes(world.conversation_of(KHANH), "Câu một. " * 500)
    world.cycle(3)
    sent = world.sent_to(KHANH)
    assert len(sent) == 3 and all(len(t) <= 2000 for t in sent)
    assert " ".join(sent).split() == ("Câu một. " * 500).split()


def test_a_reply_zalo_refuses_for_good_becomes_one_note_for_the_agent(world, monkeypatch):
    world.zalo.customer_writes(KHANH, "hỏi")
    world.cycle()

    def refuse(user_id: str, text: str) -> str:
        raise PermanentError("User has not followed OA", side="zalo", endpoint="/v3.0/oa/message/cs", code=-213)

    monkeypatch.setattr(world.zalo, "send_text", refuse)
    world.fc.agent_writes(world.conversation_of(KHANH), "Dạ")
    world.cycle(3)
    (note,) = world.notes()
    assert "could not deliver this reply" in note and '"Dạ"' in note
    assert [w.kind for w in world.store.failed_rows()] == [Kind.TEXT]


def test_a_reply_past_the_window_is_refused_without_a_request(world, monkeypatch):
    world.zalo.customer_writes(KHANH, "hỏi")
    world.cycle()
    world.clock.advance(8 * 86_400)  # the customer's last message is over 7 days old
    sends: list[str] = []
    monkeypatch.setattr(world.zalo, "send_text", lambda user_id, text: sends.append(text) or "x")
    world.fc.agent_writes(world.conversation_of(KHANH), "Dạ, muộn rồi")
    world.cycle(3)
    assert sends == []
    (note,) = world.notes()
    assert "over 7 days old" in note


def test_a_crash_after_zalo_accepted_a_send_is_reconciled_not_resent(world, monkeypatch):
    world.zalo.customer_writes(KHANH, "hỏi")
    world.cycle()
    real_send = world.zalo.send_text

    class Killed(BaseException):
        pass

    def dying_send(user_id: str, text: str) -> str:
        real_send(user_id, text)
        raise Killed  # the send reached Zalo; the process died before the store recorded it

    monkeypatch.setattr(world.zalo, "send_text", dying_send)
    world.fc.agent_writes(world.conversation_of(KHANH), "chỉ một lần")
    world.engine.poll_freshchat()
    with pytest.raises(Killed):
        world.drive.deliver("f2z")
    monkeypatch.setattr(world.zalo, "send_text", real_send)
    world.restart()
    world.cycle(3)
    assert world.sent_to(KHANH) == ["chỉ một lần"]
