"""Past the 7-day window: a reply refused for the window names the templates that could carry it; an
agent's `/zalo template NAME key=value` sends a ZNS template to the phone the customer shared, once,
with one note back; each reason it cannot go is said; a process killed mid-send sends nothing twice."""

from __future__ import annotations

import pytest

from tests.conftest import FAKES, SIMS, SIMS_IN_PROCESS, on
from tests.integration.test_agent_failures import late_reply_fails
from tests.integration.test_customer_context import agent_note, our_notes
from zfsync.cli import status_text
from zfsync.runtime import status
from zfsync.sides.zalo.zns import ZnsSending
from zfsync.sim.fakes import FakeZalo

LAN = "9007199254740993123"
TEMPLATES = [
    {"name": "don", "template_id": "231001", "params": {"customer_name": "{customer.name}"}},
    {"name": "hen", "template_id": "231002"},
]


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


def desk(b, phone: object = 84901234567) -> str:
    """A desk with two templates; Lan wrote, sharing ``phone`` (None: nothing shared); her conversation."""
    b.reconfigure(templates=TEMPLATES)
    b.zalo.zns.add_template(
        {
            "template_id": "231001",
            "name": "Xác nhận đơn hàng",
            "params": [{"name": "order_id", "maxLength": 12}, {"name": "customer_name", "maxLength": 30}],
        },
        0,
    )
    b.zalo.zns.add_template({"template_id": "231002", "name": "Lịch hẹn", "status": "PENDING_REVIEW"}, 1)
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    if phone is not None:
        b.zalo.users[LAN]["shared_info"] = {"phone": phone}
    b.cycle()
    return b.conversation_of(LAN)


@on(FAKES, SIMS_IN_PROCESS, SIMS)
def test_a_reply_refused_for_the_window_then_a_template_sent_once_with_one_note(bridge):
    b = bridge
    conversation = desk(b)
    late_reply_fails(b, conversation, "đơn của chị đã giao")
    (refused,) = [t for t in our_notes(b) if "could not deliver" in t]
    assert "/zalo template NAME key=value (templates: don, hen)" in refused
    report = status.collect(b.store, now=b.clock())
    assert report["window_refused_today"] == 1
    assert "1 replies refused today for the 7-day window" in status_text.render(report)
    agent_note(b, LAN, "/zalo template don order_id=A1001")
    (sent,) = b.zalo.zns.sent
    assert sent["phone"] == "84901234567" and sent["template_id"] == "231001"
    assert sent["template_data"] == {"order_id": "A1001", "customer_name": "Lan"}
    assert sent["tracking_id"].startswith("zfsync")
    (done,) = [t for t in our_notes(b) if t.startswith("✅ Template don")]
    assert "ending 4567: order_id: A1001; customer_name: Lan." in done and "ZNS sends left today: 499." in done
    assert done.endswith("What the template looks like: https://account.zalo.cloud/znspreview/231001")
    b.settle(rounds=3)
    assert len(b.zalo.zns.sent) == 1 and len([t for t in our_notes(b) if t.startswith("✅ Template")]) == 1
    zns = status.collect(b.store, now=b.clock())["zns"]
    assert (zns["daily"], zns["remaining"], zns["read_today"]) == (500, 499, True)
    b.clock.advance(86_400)  # a new day: ZNS's quota is whole again
    assert status.collect(b.store, now=b.clock())["zns"]["remaining"] == 500


@pytest.mark.parametrize(
    ("command", "phone", "says"),
    [
        ("/zalo template don order_id=A1", None, "has not shared a phone number"),
        ("/zalo template don order_id=A1", 0, "/zalo info sends them the card"),
        ("/zalo template nope", 84901234567, "The ones configured: don, hen."),
        ("/zalo template hen", 84901234567, "Zalo has not approved this template (Zalo lists it as PENDING_REVIEW)"),
        ("/zalo template don", 84901234567, "needs a value for order_id"),
        ("/zalo template don order_id=A1234567890123", 84901234567, "The value of order_id is too long"),
        ("/zalo template don colour=red", 84901234567, "no parameter colour; its parameters: customer_name, order_id"),
        ('/zalo template don order_id="A1', 84901234567, "a quote is not closed"),
    ],
)
def test_a_template_that_cannot_go_explains_itself_and_nothing_is_sent(bridge, command, phone, says):
    b = bridge
    desk(b, phone)
    agent_note(b, LAN, command)
    assert b.zalo.zns.sent == []
    (failed,) = [t for t in our_notes(b) if "could not do" in t]
    assert says in failed, failed


@on(FAKES, SIMS_IN_PROCESS, SIMS)
def test_a_default_from_the_freshchat_conversations_property(bridge):
    b = bridge
    b.reconfigure(
        templates=[{"name": "don", "template_id": "231001", "params": {"order_id": "{conversation.cf_order_id}"}}]
    )
    b.zalo.zns.add_template({"template_id": "231001", "name": "Đơn", "params": [{"name": "order_id"}]}, 0)
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.zalo.users[LAN]["shared_info"] = {"phone": 84901234567}
    b.cycle()
    conversation = b.conversation_of(LAN)
    held = b.fc.details if isinstance(b.zalo, FakeZalo) else b.fc.conversations
    held[conversation].setdefault("properties", {})["cf_order_id"] = "DH-2291"
    agent_note(b, LAN, "/zalo template don")
    assert [s["template_data"] for s in b.zalo.zns.sent] == [{"order_id": "DH-2291"}]


@on(FAKES, SIMS_IN_PROCESS)
def test_killed_after_zalo_took_the_template_nothing_is_sent_twice_and_the_agent_hears_why(bridge, monkeypatch):
    b = bridge
    desk(b)
    port = FakeZalo if isinstance(b.zalo, FakeZalo) else ZnsSending
    original = port.send_template

    def dying(self, *args, **kwargs):
        original(self, *args, **kwargs)  # ZNS sent it, and charged for it ...
        raise Killed  # ... and the process dies before the answer is recorded

    monkeypatch.setattr(port, "send_template", dying)
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo template don order_id=A7", message_type="private")
    with pytest.raises(Killed):
        b.settle(rounds=3)
    monkeypatch.setattr(port, "send_template", original)
    b.restart()
    b.settle(rounds=4, step=120)
    assert len(b.zalo.zns.sent) == 1
    (unknown,) = [t for t in our_notes(b) if "could not do" in t]
    assert "does not send it again" in unknown


# --- the customer's rating ---------------------------------------------------------------------------

RATING = [*TEMPLATES, {"name": "danh-gia", "template_id": "231009", "params": {"ten": "{customer.name}"}}]


def rating_desk(b) -> str:
    b.reconfigure(templates=RATING, rating_template="danh-gia", rating_property="cf_zalo_rating")
    b.zalo.zns.add_template({"template_id": "231009", "name": "Đánh giá dịch vụ", "params": [{"name": "ten"}]}, 0)
    b.zalo.add_customer_message(LAN, "Lan", text="đơn của em đâu ạ")
    b.zalo.users[LAN]["shared_info"] = {"phone": 84901234567}
    b.cycle()
    return b.conversation_of(LAN)


def rated_after_resolve(b, reply: str) -> tuple[str, dict]:
    """A desk with the rating template; an agent answers Lan and resolves: her conversation, and the
    rating template ZNS sent her."""
    conversation = rating_desk(b)
    b.fc.add_agent_message(conversation, reply)
    b.settle(rounds=3)
    b.fc.set_resolved(conversation, True)
    b.settle(rounds=3)
    (sent,) = b.zalo.zns.sent
    return conversation, sent


def properties(b, conversation: str) -> dict:
    held = b.fc.details if isinstance(b.zalo, FakeZalo) else b.fc.conversations
    return dict(held[conversation].get("properties") or {})


@on(FAKES, SIMS_IN_PROCESS)
def test_a_rating_sent_after_resolve_and_answered_an_hour_later_lands_on_its_conversation(bridge):
    b = bridge
    conversation, sent = rated_after_resolve(b, "đơn đã giao chiều nay ạ")
    assert sent["template_id"] == "231009" and sent["phone"] == "84901234567"
    b.settle(rounds=3)  # resolved once: sent once
    assert len(b.zalo.zns.sent) == 1
    b.clock.advance(3600)  # an hour later the customer answers
    b.zalo.zns.rate(
        {"tracking_id": sent["tracking_id"], "rate": 4, "feedbacks": ["Xử lý nhanh"], "note": "giao hơi trễ"},
        int(b.clock() * 1000),
    )
    b.clock.advance(301)
    b.settle(rounds=2)
    (note,) = [t for t in our_notes(b) if t.startswith("⭐")]
    assert note.startswith("⭐ The customer rated the service 4 of 5 on Zalo. What they ticked: Xử lý nhanh.")
    assert "Their note:" in note and "giao hơi trễ" in note
    assert properties(b, conversation)["cf_zalo_rating"] == "4"
    assert b.store.rating_counts() == ({1: 0, 2: 0, 3: 0, 4: 1, 5: 0}, 4)
    report = status.collect(b.store, now=b.clock())
    assert report["rating_today"] == {"count": 1, "average": 4.0}
    assert "ratings    1 today, average 4.0 of 5" in status_text.render(report)
    b.clock.advance(301)  # read again (a day back): the same rating lands no second time
    b.settle(rounds=2)
    assert len([t for t in our_notes(b) if t.startswith("⭐")]) == 1 and b.store.rating_counts()[1] == 4


@on(FAKES, SIMS_IN_PROCESS)
def test_no_rating_is_sent_for_a_conversation_no_agent_answered(bridge):
    b = bridge
    conversation = rating_desk(b)
    b.fc.set_resolved(conversation, True)
    b.settle(rounds=3)
    assert b.zalo.zns.sent == []


def test_a_rating_template_that_is_not_a_configured_template_is_refused_in_one_line(tmp_path):
    from zfsync.config import from_mapping
    from zfsync.domain.errors import ConfigError

    raw = {
        "zalo": {"app_id": "a"},
        "freshchat": {"api_url": "https://x.freshchat.com", "channel_id": "c"},
        "sync": {"rating_template": "danh-gia"},
    }
    with pytest.raises(ConfigError, match="not the name of a \\[\\[template\\]\\]"):
        from_mapping(raw, {"ZFSYNC_ZALO_APP_SECRET": "s", "ZFSYNC_FRESHCHAT_API_KEY": "k"})


@on(FAKES, SIMS_IN_PROCESS)
def test_killed_while_a_rating_lands_it_lands_once_after_the_restart(bridge, monkeypatch):
    b = bridge
    _, sent = rated_after_resolve(b, "đã xử lý ạ")
    b.zalo.zns.rate({"tracking_id": sent["tracking_id"], "rate": 5}, int(b.clock() * 1000))
    original = type(b.store).record_rating

    def dying(self, *args, **kwargs):
        raise Killed  # the note is queued, the count not yet made

    monkeypatch.setattr(type(b.store), "record_rating", dying)
    b.clock.advance(301)
    with pytest.raises(Killed):
        b.settle(rounds=2)
    monkeypatch.setattr(type(b.store), "record_rating", original)
    b.restart()
    b.clock.advance(301)
    b.settle(rounds=3)
    assert len([t for t in our_notes(b) if t.startswith("⭐")]) == 1
    assert b.store.rating_counts() == ({1: 0, 2: 0, 3: 0, 4: 0, 5: 1}, 5)
