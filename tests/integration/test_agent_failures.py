"""Each way a reply can fail ends in exactly one private note the agent can act on, and in `zfsync failed`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from zfsync.runtime import status
from zfsync.sim.base import Fault
from zfsync.sync.decide import notes

KHANH = "2512007384617209999"


def started(b) -> str:
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="chào")
    b.cycle()
    return b.conversation_of(KHANH)


def note_texts(b) -> list[str]:
    return [m["message_parts"][0]["text"]["content"] for m in b.notes()]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (-213, "scan the OA's QR code"),
        (-320, "Zalo Cloud Account"),
        (-321, "out of money"),
        (-230, "The customer must write first"),
        (-232, "The customer must write first"),
        (-224, "upgrade the package"),
        (-210, "too large"),
        (-233, "Zalo refused the message: Simulated error (code -233)"),
        (-9999, "Zalo refused the message: Something new (code -9999)"),
    ],
)
def test_each_zalo_refusal_becomes_exactly_one_note_and_a_failed_row(bridge, code, words):
    b = bridge
    conversation = started(b)
    message = "Something new" if code == -9999 else ""
    b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "zalo_error", code=code, message=message, count=1))
    b.fc.add_agent_message(conversation, "Đơn hàng đã gửi")
    b.settle()
    b.settle()
    (note,) = note_texts(b)
    assert words in note and "Đơn hàng đã gửi" in note
    assert b.sent_to(KHANH) == []
    failed = b.store.failed_rows()
    assert [(r.kind, r.error_code) for r in failed] == [("text", str(code))]


def test_transient_failures_retry_then_one_give_up_note(bridge):
    b = bridge
    conversation = started(b)
    b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "status", code=503, count=100))
    b.fc.add_agent_message(conversation, "sẽ không tới")
    b.settle(rounds=40, step=700)
    (note,) = note_texts(b)
    assert "after 10 attempts" in note and "zfsync retry" in note
    assert [row.direction for row in b.store.failed_rows()] == ["f2z"]
    b.zalo.faults.clear()
    # The operator retries it: it is really resent, and nobody is told twice.
    assert b.store.requeue(None) == 1
    b.settle()
    assert b.sent_to(KHANH) == ["sẽ không tới"]
    assert len(note_texts(b)) == 1


def test_resolve_reopen_resolve_sends_one_notice_per_resolution(bridge):
    b = bridge
    conversation = started(b)
    b.fc.set_resolved(conversation, True)
    b.settle()
    b.fc.set_resolved(conversation, False)
    b.settle()
    assert b.store.current_conversation(b.store.contact(KHANH).id).resolved is False
    b.fc.set_resolved(conversation, True)
    b.settle()
    b.restart()
    b.settle()
    assert b.sent_to(KHANH) == [b.settings.sync.resolve_notice] * 2


def test_an_empty_resolve_notice_sends_nothing(bridge):
    b = bridge
    b.reconfigure(resolve_notice="")
    conversation = started(b)
    b.fc.set_resolved(conversation, True)
    b.settle()
    assert b.sent_to(KHANH) == []


def test_bot_messages_are_forwarded_only_when_configured(bridge):
    b = bridge
    conversation = started(b)
    b.fc.add_agent_message(conversation, "bot one", actor_type="bot")
    b.settle()
    assert b.sent_to(KHANH) == []
    b.settings = replace(b.settings, freshchat=replace(b.settings.freshchat, forward_bot_messages=True))
    b.restart()
    b.fc.add_agent_message(conversation, "bot two", actor_type="bot")
    b.settle()
    assert b.sent_to(KHANH) == ["bot two"]


@pytest.mark.parametrize(
    ("setting", "shown"),
    [
        ("all", {"failure", "answer", "info"}),
        ("failures", {"failure", "answer"}),
        ("off", {"answer"}),
    ],
)
def test_every_note_level_keeps_the_failure_itself(bridge, setting, shown):
    b = bridge
    b.reconfigure(agent_notes=setting)
    conversation = started(b)
    # A failure (the customer does not follow the OA), a command's answer, and the bridge's information (as
    # the window warning queues it).
    b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "zalo_error", code=-213, count=1))
    b.fc.add_agent_message(conversation, "Đơn hàng đã gửi")
    b.fc.add_agent_message(conversation, "/zalo help", message_type="private")
    contact = b.store.contact(KHANH)
    assert contact is not None
    b.store.insert_rows(contact.id, [notes.note_row("window:1", "⏳ a notice", conversation, "", b.clock())], b.clock())
    b.settle()
    texts = note_texts(b)
    posted = {
        "failure": any("scan the OA's QR code" in t for t in texts),
        "answer": any("zfsync commands" in t for t in texts),
        "info": "⏳ a notice" in texts,
    }
    assert {level for level, there in posted.items() if there} == shown
    # Whatever the setting, the failure itself stays: in the failed queue and in status.
    assert [r.error_code for r in b.store.failed_rows()] == ["-213"]
    assert status.collect(b.store, b.clock())["failed"] == 1
    assert b.store.open_rows_of(contact.id, "z2f") == 0  # a withheld note is done, not waiting


def late_reply_fails(b, conversation: str, text: str) -> None:
    """Eight days after the customer wrote, a reply: held back by the window, and failed."""
    b.clock.advance(8 * 86_400)
    b.fc.add_agent_message(conversation, text)
    b.settle(rounds=7, step=3600)  # a conversation past the window is swept every 6 hours
    assert [r.error_code for r in b.store.failed_rows()] == ["window"]


def test_a_reply_failed_for_the_window_goes_once_when_the_customer_writes_again(bridge):
    b = bridge
    conversation = started(b)
    late_reply_fails(b, conversation, "Dạ đơn của anh đã giao")
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="shop ơi?")
    b.cycle()
    b.fc.add_agent_message(conversation, "Dạ shop đây ạ")
    b.settle()
    assert b.sent_to(KHANH) == ["Dạ đơn của anh đã giao", "Dạ shop đây ạ"]  # the old one first, once
    assert any("wrote again" in t and "1 earlier replies" in t for t in note_texts(b))
    assert b.store.failed_rows() == []
    # It failed again later (the window again): the next return does not send it a third time.
    late_reply_fails(b, conversation, "Dạ còn hàng ạ")
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="alo")
    b.settle()
    assert b.sent_to(KHANH).count("Dạ đơn của anh đã giao") == 1
    assert b.sent_to(KHANH)[-1] == "Dạ còn hàng ạ"  # the newer failure goes once on this return


def test_zalo_retry_sends_this_conversations_failed_replies_again_once(bridge):
    b = bridge
    b.reconfigure(retry_when_customer_returns=False)
    conversation = started(b)
    b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "zalo_error", code=-230, count=2))
    b.fc.add_agent_message(conversation, "một")
    b.fc.add_agent_message(conversation, "hai")
    b.settle()
    assert [r.error_code for r in b.store.failed_rows()] == ["-230", "-230"]
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="em đây")  # the window is open again
    b.settle()
    assert b.sent_to(KHANH) == []  # the setting is off: nothing goes by itself
    b.fc.add_agent_message(conversation, "/zalo retry last", message_type="private")
    b.settle()
    assert b.sent_to(KHANH) == ["hai"]
    b.fc.add_agent_message(conversation, "/zalo retry", message_type="private")
    b.settle()
    assert b.sent_to(KHANH) == ["hai", "một"]
    assert b.store.failed_rows() == []
    b.fc.add_agent_message(conversation, "/zalo retry", message_type="private")
    b.settle()
    assert b.sent_to(KHANH) == ["hai", "một"]  # nothing left: never a second send
    answers = [t for t in note_texts(b) if t.startswith(("↻", "ℹ️ No failed"))]
    assert len(answers) == 3 and "No failed reply" in answers[-1]
    assert not any("retry" in text for text in b.sent_to(KHANH))
