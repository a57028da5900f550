"""The sync engine on the in-memory fakes of both sides (`zfsync.sim.fakes`) and an in-memory store (the
``bridge`` fixture's default): what a fake lets a test do that a simulator cannot, such as a send that
reaches Zalo and then kills the process. The simulators keep the end-to-end tests."""

from __future__ import annotations

import pytest

from zfsync.domain import Kind
from zfsync.domain.errors import PermanentError

KHANH, LAN = "2512007384617209999", "2512007384617200001"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def test_customer_messages_cross_in_order_once_across_restarts(bridge):
    for n in range(25):
        bridge.zalo.add_customer_message(KHANH if n % 3 else LAN, "Minh Khánh", text=f"tin {n}")
    bridge.cycle()
    bridge.restart()
    bridge.settle(2)
    assert texts(bridge.customer_messages(KHANH)) == [f"tin {n}" for n in range(25) if n % 3]
    assert texts(bridge.customer_messages(LAN)) == [f"tin {n}" for n in range(25) if not n % 3]


def test_an_agent_reply_crosses_once_and_its_echo_is_not_bridged_back(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="xin chào")
    bridge.cycle()
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "Dạ, em chào anh")
    bridge.settle(3)
    assert bridge.sent_to(KHANH) == ["Dạ, em chào anh"]
    assert texts(bridge.customer_messages(KHANH)) == ["xin chào"]  # the OA's send in Zalo's feed is ours: not mirrored
    assert bridge.notes() == []


def test_a_long_reply_is_split_and_order_kept(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hỏi")
    bridge.cycle()
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "Câu một. " * 500)
    bridge.settle(3)
    sent = bridge.sent_to(KHANH)
    assert len(sent) == 3 and all(len(t) <= 2000 for t in sent)
    assert " ".join(sent).split() == ("Câu một. " * 500).split()


def test_a_reply_zalo_refuses_for_good_becomes_one_note_for_the_agent(bridge, monkeypatch):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hỏi")
    bridge.cycle()

    def refuse(user_id: str, text: str) -> str:
        raise PermanentError("User has not followed OA", side="zalo", endpoint="/v3.0/oa/message/cs", code=-213)

    monkeypatch.setattr(bridge.zalo, "send_text", refuse)
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "Dạ")
    bridge.settle(3)
    (note,) = texts(bridge.notes())
    assert "could not deliver this reply" in note and '"Dạ"' in note
    assert [w.kind for w in bridge.store.failed_rows()] == [Kind.TEXT]


def test_a_reply_past_the_window_is_refused_without_a_request(bridge, monkeypatch):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hỏi")
    bridge.cycle()
    bridge.clock.advance(8 * 86_400)  # the customer's last message is over 7 days old
    sends: list[str] = []
    monkeypatch.setattr(bridge.zalo, "send_text", lambda user_id, text: sends.append(text) or "x")
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "Dạ, muộn rồi")
    bridge.settle(3)
    assert sends == []
    (note,) = texts(bridge.notes())
    assert "over 7 days old" in note


def test_a_crash_after_zalo_accepted_a_send_is_reconciled_not_resent(bridge, monkeypatch):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hỏi")
    bridge.cycle()
    real_send = bridge.zalo.send_text

    class Killed(BaseException):
        pass

    def dying_send(user_id: str, text: str) -> str:
        real_send(user_id, text)
        raise Killed  # the send reached Zalo; the process died before the store recorded it

    monkeypatch.setattr(bridge.zalo, "send_text", dying_send)
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "chỉ một lần")
    bridge.clock.advance(bridge.settings.freshchat.hot_interval)
    bridge.drive.steps.freshchat()
    with pytest.raises(Killed):
        bridge.drive.deliver("f2z")
    monkeypatch.setattr(bridge.zalo, "send_text", real_send)
    bridge.restart()
    bridge.settle(3)
    assert bridge.sent_to(KHANH) == ["chỉ một lần"]
