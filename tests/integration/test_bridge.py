"""The sync engine both ways, cycle by cycle under a fake clock: on the in-memory fakes (the ``bridge``
fixture's default), and on both simulators over loopback HTTP where a test needs the wire."""

from __future__ import annotations

import contextlib
import json

from tests.conftest import FAKES, SIMS, on
from zfsync.domain import reference_id

KHANH = "2512007384617209999"
LAN = "9007199254740993123"  # above 2^53: must survive as a string


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def test_history_before_the_first_start_is_not_bridged(bridge):
    assert bridge.customer_messages(KHANH) == []
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="old")  # arrives after the baseline
    bridge.cycle()
    assert texts(bridge.customer_messages(KHANH)) == ["old"]


def test_customer_text_reaches_freshchat_as_a_named_zalo_user(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="Xin chào 😊")
    bridge.cycle()
    assert texts(bridge.customer_messages(KHANH)) == ["Xin chào 😊"]
    user = next(u for u in bridge.fc_state()["users"] if u["reference_id"] == f"zalo-{KHANH}")
    assert user["first_name"] == "Minh Khánh Zalo"
    assert {"name": "external_user_provider", "value": "zalo"} in user["properties"]
    assert {"name": "zalo_user_id", "value": KHANH} in user["properties"]
    assert user["avatar"]["url"].endswith(f"{KHANH}.jpg")


def test_agent_reply_reaches_zalo_and_is_not_echoed(bridge):
    bridge.zalo.add_customer_message(LAN, "Lan", text="Giờ mở cửa?")
    bridge.cycle()
    bridge.fc.add_agent_message(bridge.conversation_of(LAN), "8:00 - 21:00")
    bridge.settle()
    assert bridge.sent_to(LAN) == ["8:00 - 21:00"]
    # Our own send shows in Zalo's listings with src=0; it must not come back into FreshChat.
    assert texts(bridge.customer_messages(LAN)) == ["Giờ mở cửa?"]
    assert bridge.notes() == []


def test_private_notes_and_our_own_posts_never_reach_the_customer(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hello")
    bridge.cycle()
    conversation = bridge.conversation_of(KHANH)
    bridge.fc.add_agent_message(conversation, "internal: VIP customer", message_type="private")
    bridge.fc.add_agent_message(conversation, "a bot says hi", actor_type="bot")
    bridge.settle()
    assert bridge.sent_to(KHANH) == []


def test_messages_of_one_user_arrive_in_order_across_many_pages(bridge):
    for i in range(35):
        bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"m{i}")
    bridge.zalo.add_customer_message(LAN, "Lan", text="between")
    bridge.cycle()
    assert texts(bridge.customer_messages(KHANH)) == [f"m{i}" for i in range(35)]
    assert texts(bridge.customer_messages(LAN)) == ["between"]


def test_burst_beyond_the_page_cap_is_caught_up_per_user(bridge, tmp_path):
    from dataclasses import replace

    settings = replace(bridge.settings, zalo=replace(bridge.settings.zalo, feed_page_cap=2))
    bridge.settings = settings
    bridge.restart()
    bridge.zalo.add_customer_message(LAN, "Lan", text="before the burst")
    for i in range(45):
        bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"b{i}")
    bridge.cycle()
    assert texts(bridge.customer_messages(KHANH)) == [f"b{i}" for i in range(45)]
    # Lan's message lies deeper than the two pages read; it must not be lost for good.
    bridge.zalo.add_customer_message(LAN, "Lan", text="after")
    bridge.settle(rounds=3)
    assert texts(bridge.customer_messages(LAN)) == ["before the burst", "after"]


def test_restart_sends_nothing_twice(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="one")
    bridge.cycle()
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "reply one")
    bridge.settle()
    bridge.restart()
    bridge.settle()
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="two")
    bridge.settle()
    assert texts(bridge.customer_messages(KHANH)) == ["one", "two"]
    assert bridge.sent_to(KHANH) == ["reply one"]


def test_crash_after_zalo_accepted_a_send_is_reconciled_not_resent(bridge, monkeypatch):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    bridge.cycle()
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "sent once")
    store = bridge.store
    real_finish = store.finish_sent

    def crash(*args, **kwargs):
        raise SystemExit("killed between the send and its record")

    monkeypatch.setattr(store, "finish_sent", crash)
    with contextlib.suppress(SystemExit):
        bridge.cycle()
    monkeypatch.setattr(store, "finish_sent", real_finish)
    assert bridge.sent_to(KHANH) == ["sent once"]
    bridge.restart()
    bridge.settle()
    assert bridge.sent_to(KHANH) == ["sent once"]
    Message = bridge.store.tables.Message
    row = Message.get(Message.direction == "f2z")
    assert row.status == "sent" and row.dest_id == bridge.zalo.sent[0]["message_id"]
    # ... and the reconciled send is still recognised as our echo, not as OA staff typing.
    assert bridge.notes() == []


def test_crash_after_freshchat_accepted_a_post_is_reconciled_not_reposted(bridge, monkeypatch):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="first")
    bridge.cycle()
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="second")
    monkeypatch.setattr(bridge.store, "finish_sent", lambda *a, **k: (_ for _ in ()).throw(SystemExit()))
    with contextlib.suppress(SystemExit):
        bridge.drive.zalo()
    monkeypatch.undo()
    bridge.restart()
    bridge.settle()
    assert texts(bridge.customer_messages(KHANH)) == ["first", "second"]


def test_minus_213_becomes_one_private_note_and_a_failed_row(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    bridge.cycle()
    bridge.zalo.faults.append(_fault("/v3.0/oa/message/cs", "zalo_error", code=-213, count=1))
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "are you there?")
    bridge.settle()
    notes = bridge.notes()
    assert len(notes) == 1
    note = texts(notes)[0]
    assert "are you there?" in note and "followed the OA" in note and "QR code" in note
    assert notes[0]["actor_type"] == "agent"
    failed = bridge.store.failed_rows()
    assert [(r.error_code, r.direction) for r in failed] == [("-213", "f2z")]


def test_transient_zalo_failures_retry_with_backoff_then_deliver(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    bridge.cycle()
    bridge.zalo.faults.append(_fault("/v3.0/oa/message/cs", "status", code=503, count=2))
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "after the outage")
    bridge.settle(rounds=10, step=30)
    assert bridge.sent_to(KHANH) == ["after the outage"]
    assert bridge.notes() == []


def test_reply_outside_the_seven_day_window_is_not_attempted(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    bridge.cycle()
    bridge.clock.advance(8 * 86_400)
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), "sorry for the delay")
    bridge.settle(rounds=3, step=4000)
    assert bridge.sent_to(KHANH) == []
    assert "7 days" in texts(bridge.notes())[0]
    assert bridge.zalo.requests.get("/v3.0/oa/message/cs", 0) == 0


def test_long_reply_is_split_into_ordered_messages(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    bridge.cycle()
    paragraph = "Cửa hàng mở cửa từ 8:00 đến 21:00 mỗi ngày. " * 30
    long_text = "\n\n".join([paragraph.strip()] * 4)
    bridge.fc.add_agent_message(bridge.conversation_of(KHANH), long_text)
    bridge.settle()
    # Two paragraphs (about 1,350 characters each) do not fit in 2,000: one message per paragraph.
    assert bridge.sent_to(KHANH) == [paragraph.strip()] * 4


def test_resolve_sends_the_notice_once(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="thanks")
    bridge.cycle()
    bridge.fc.set_resolved(bridge.conversation_of(KHANH), True)
    bridge.settle()
    bridge.restart()
    bridge.settle()
    assert bridge.sent_to(KHANH) == [bridge.settings.sync.resolve_notice]


def test_oa_staff_messages_become_private_notes(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    bridge.cycle()
    bridge.zalo.add_oa_message(KHANH, "Staff here, typed in OA Manager")
    bridge.settle()
    notes = texts(bridge.notes())
    assert len(notes) == 1 and "OA Manager" in notes[0] and "Staff here" in notes[0]


@on(FAKES, SIMS)
def test_new_conversation_in_freshchat_is_adopted_after_not_the_latest(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="first")
    bridge.cycle()
    old = bridge.conversation_of(KHANH)
    newer = bridge.fc.start_conversation(KHANH)
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="second")
    bridge.settle()
    assert texts(bridge.conversation(old)["messages"]) == ["first"]
    assert texts(bridge.conversation(newer)["messages"]) == ["second"]


def test_unknown_zalo_types_arrive_as_readable_placeholders(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="business_card", text="", card={"phone": "0901"})
    bridge.zalo.add_customer_message(
        KHANH, "Minh Khánh", type="location", location=json.dumps({"latitude": "10.77", "longitude": "106.70"})
    )
    bridge.cycle()
    shown = texts(bridge.customer_messages(KHANH))
    assert "business_card" in shown[0] and "0901" in shown[0]
    assert "latitude 10.77, longitude 106.7" in shown[1] and "maps" in shown[1]


def test_reference_id_is_stable():
    assert reference_id("123") == "zalo-123"


def _fault(path: str, kind: str, **kwargs):
    from zfsync.sim.base import Fault

    return Fault(path=path, kind=kind, **kwargs)
