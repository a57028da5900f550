"""What the agent sees about the customer, and Zalo's clocks, under a fake clock: shared details on the
FreshChat user, the "/zalo" commands, the window warning, the free replies spent, and the resolve notice
that respects the quota (the quota answers' forms played by the simulators)."""

from __future__ import annotations

import pytest

from tests.conftest import SIMS_IN_PROCESS, on
from zfsync.domain import reference_id
from zfsync.sim.base import Fault

LAN = "9007199254740993123"
KHANH = "2512007384617209999"
HOUR = 3600.0
SHARED = {
    "address": "182 Lê Đại Hành",
    "city": "Hồ Chí Minh",
    "district": "Quận 10",
    "phone": 84901234567,  # a number, as the live recording has it
    "name": "Lan",
    "user_dob": "21/04/1990",
}


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def fc_user(b, zalo_user: str) -> dict:
    return next(u for u in b.fc_state()["users"] if u["reference_id"] == reference_id(zalo_user))


def properties(b, zalo_user: str) -> dict[str, str]:
    return {p["name"]: p["value"] for p in fc_user(b, zalo_user)["properties"]}


def our_notes(b) -> list[str]:
    """zfsync's private notes (not the agents' own commands)."""
    return [t for t in texts(b.notes()) if not t.startswith("/zalo")]


def refresh(b) -> None:
    """A minute on: the profile refresh and the reminders run again."""
    b.clock.advance(61)
    b.cycle()


def agent_note(b, zalo_user: str, text: str) -> None:
    b.fc.add_agent_message(b.conversation_of(zalo_user), text, message_type="private")
    b.settle(rounds=3)


def test_what_a_customer_shares_lands_on_their_freshchat_user_and_follows_a_change(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    b.zalo.users[LAN].update(shared_info=dict(SHARED), tags=["VIP", "Quận 1"], notes=["Khách quen, hay mua sỉ"])
    refresh(b)
    user, shown = fc_user(b, LAN), properties(b, LAN)
    assert user["phone"] == "84901234567"
    assert {k: shown[k] for k in ("zalo_address", "zalo_city", "zalo_district", "zalo_dob", "zalo_shared_name")} == {
        "zalo_address": "182 Lê Đại Hành",
        "zalo_city": "Hồ Chí Minh",
        "zalo_district": "Quận 10",
        "zalo_dob": "21/04/1990",
        "zalo_shared_name": "Lan",
    }
    assert (shown["zalo_tags"], shown["zalo_notes"]) == ("VIP, Quận 1", "Khách quen, hay mua sỉ")
    assert shown["zalo_window_closes_at"].endswith("+07:00") and shown["zalo_free_replies_until"]
    # They move and write again: the change is on FreshChat within the hour.
    b.zalo.users[LAN]["shared_info"] = {**SHARED, "city": "Hà Nội", "district": "Ba Đình"}
    b.zalo.users[LAN]["tags"] = []
    b.zalo.add_customer_message(LAN, "Lan", text="em chuyển ra Hà Nội rồi")
    b.clock.advance(HOUR)
    b.cycle()
    shown = properties(b, LAN)
    assert (shown["zalo_city"], shown["zalo_district"], shown["zalo_tags"]) == ("Hà Nội", "Ba Đình", "")


def test_nothing_shared_writes_nothing_and_what_an_agent_typed_stays(bridge):
    b = bridge
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    b.cycle()
    b.fc.edit_user(KHANH, phone="0909 000 111")  # an agent typed it in FreshChat
    puts = b.fc.requests.get(f"/v2/users/{fc_user(b, KHANH)['id']}", 0)
    refresh(b)
    assert fc_user(b, KHANH)["phone"] == "0909 000 111"
    assert not {"zalo_address", "zalo_city", "zalo_tags", "zalo_notes"} & set(properties(b, KHANH))
    # Nothing changed on Zalo: the next check writes nothing at all.
    b.clock.advance(25 * HOUR)
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi again")
    b.cycle()
    writes = b.fc.requests.get(f"/v2/users/{fc_user(b, KHANH)['id']}", 0) - puts
    assert writes == 2  # the first check (the window), and the new message (a new window); never blank


def test_sharing_off_keeps_the_details_on_zalo(bridge):
    b = bridge
    b.reconfigure(share_contact_details=False)
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.zalo.users[LAN].update(shared_info=dict(SHARED), tags=["VIP"])
    b.cycle()  # the user is made, and its profile checked at once (the first run since the start)
    assert "phone" not in fc_user(b, LAN)
    assert "zalo_city" not in properties(b, LAN) and properties(b, LAN)["zalo_tags"] == "VIP"


def test_zalo_info_sends_the_card_and_confirms_and_no_command_reaches_the_customer_as_text(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    agent_note(b, LAN, "/zalo info")
    (card,) = [s["card"] for s in b.zalo.sent if "card" in s]
    assert card["title"] == b.settings.sync.info_card_title and card["image_url"].startswith("https://")
    assert "sent the card" in our_notes(b)[-1]
    agent_note(b, LAN, "/zalo tag VIP")
    agent_note(b, LAN, "/zalo help")
    assert b.zalo.users[LAN]["tags"] == ["VIP"]
    assert "tagged 'VIP'" in our_notes(b)[-2] and "/zalo untag NAME" in our_notes(b)[-1]
    assert not any("/zalo" in text for text in b.sent_to(LAN))
    agent_note(b, LAN, "/zalo untag VIP")
    assert b.zalo.users[LAN]["tags"] == []
    refresh(b)
    assert properties(b, LAN).get("zalo_tags", "") == ""


def test_zalo_info_past_the_window_asks_zalo_before_it_refuses(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    b.clock.advance(8 * 24 * HOUR)
    agent_note(b, LAN, "/zalo info")  # Zalo agrees the window is shut: no card, one note
    assert not [s for s in b.zalo.sent if "card" in s]
    assert "7 days" in [t for t in our_notes(b) if "could not do" in t][-1]
    b.clock.advance(2 * HOUR)
    b.zalo.users[LAN]["last_interaction"] = int(b.clock() * 1000)  # the customer followed, or called
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo info", message_type="private")
    b.settle(rounds=7, step=HOUR)  # a conversation past the window is swept every 6 hours
    # No message came: only quota/message could have told zfsync that the window is open again.
    assert [s for s in b.zalo.sent if "card" in s]
    assert "sent the card" in our_notes(b)[-1]


def test_a_command_zalo_refuses_comes_back_as_a_note_in_words(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    b.zalo.faults.append(
        Fault("/v2.0/oa/tag/tagfollower", "zalo_error", code=-224, message="OA has no permission", count=1)
    )
    agent_note(b, LAN, "/zalo tag VIP")
    (note,) = [t for t in our_notes(b) if "could not do" in t]
    assert "'/zalo tag VIP'" in note
    assert b.zalo.users[LAN].get("tags", []) == []


def test_the_window_warning_comes_once_per_window(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    b.clock.advance(6 * 24 * HOUR + 2 * HOUR)  # 22 hours of the 7 days left
    for _ in range(3):
        refresh(b)
    warnings = [t for t in our_notes(b) if t.startswith("⏳")]
    assert len(warnings) == 1 and "(in 22 h)" in warnings[0]
    b.zalo.add_customer_message(LAN, "Lan", text="còn hàng không?")  # a new window
    b.cycle()
    b.clock.advance(6 * 24 * HOUR + 2 * HOUR)
    refresh(b)
    refresh(b)
    assert len([t for t in our_notes(b) if t.startswith("⏳")]) == 2


@on(SIMS_IN_PROCESS)
def test_the_free_replies_spent_note_comes_once_and_the_paid_resolve_notice_is_skipped(bridge):
    b = bridge
    b.zalo.modes.reply_quota = "counted"  # the docs' policy: eight free replies within 48 h
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    conversation = b.conversation_of(LAN)
    for number in range(10):
        b.fc.add_agent_message(conversation, f"trả lời {number}")
    b.settle()
    assert len(b.sent_to(LAN)) == 10
    spent = [t for t in our_notes(b) if "free replies to this customer are spent" in t]
    assert len(spent) == 1
    b.fc.set_resolved(conversation, True)
    b.settle()
    assert b.settings.sync.resolve_notice not in b.sent_to(LAN)  # it would have been paid
    b.reconfigure(resolve_notice_when="always")
    b.fc.set_resolved(conversation, False)
    b.fc.set_resolved(conversation, True)
    b.settle()
    assert b.sent_to(LAN)[-1] == b.settings.sync.resolve_notice


def test_the_resolve_notice_goes_while_it_is_free_and_not_past_48_hours(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="cảm ơn shop")
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="cảm ơn")
    b.cycle()
    b.fc.set_resolved(b.conversation_of(LAN), True)
    b.settle()
    assert b.sent_to(LAN) == [b.settings.sync.resolve_notice]
    b.clock.advance(49 * HOUR)
    b.fc.set_resolved(b.conversation_of(KHANH), True)
    b.settle()
    assert b.sent_to(KHANH) == []


def test_no_request_per_message_rides_on_any_of_this(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="0")
    b.cycle()
    conversation = b.conversation_of(LAN)
    before = dict(b.zalo.requests)
    for number in range(20):
        b.zalo.add_customer_message(LAN, "Lan", text=f"câu hỏi {number}")
        b.fc.add_agent_message(conversation, f"trả lời {number}")
        b.clock.advance(30)
        b.cycle()
    after = b.zalo.requests
    assert after.get("/v3.0/oa/message/cs", 0) - before.get("/v3.0/oa/message/cs", 0) == 20

    def extra(path: str) -> int:
        return after.get(path, 0) - before.get(path, 0)

    # Ten minutes: the details ride on one profile check, the quota on the send answers; the quota
    # endpoint is asked for nothing but the OA's package (once an hour).
    assert extra("/v3.0/oa/user/detail") <= 1
    assert extra("/v3.0/oa/quota/message") <= 1
    assert extra("/v2.0/oa/tag/tagfollower") == 0


# What Zalo answers a reply within 48 h, by policy (recorded/zalo/message_cs_quota_*.json and
# quota_message_user_*.json): the docs count eight free replies down, then draw on the OA's package, then
# answer a paid message with no `quota`; the 2026 reports make them free, with `remain` fixed at "8", then
# without `remain`, or (not ruled out) without the whole `quota` object and `cs_reply`.
POLICIES = {
    "documented, then the package": ("counted", 2000, True, "0"),
    "documented, no package left": ("counted", 0, True, "0"),
    "2026, remain fixed": ("fixed", 2000, False, "8"),
    "2026, remain dropped": ("uncounted", 2000, False, None),
    "2026, quota dropped": ("absent", 2000, False, None),
    "2026, quota dropped, no package left": ("absent", 0, False, None),
}


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("policy", POLICIES)
def test_free_replies_under_each_policy_and_answer_form(bridge, policy):
    b = bridge
    mode, package, spent, left = POLICIES[policy]
    b.zalo.modes.reply_quota, b.zalo.modes.package_messages = mode, package
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    conversation = b.conversation_of(LAN)
    asked = b.zalo.requests.get("/v3.0/oa/quota/message", 0)
    for number in range(10):
        b.fc.add_agent_message(conversation, f"trả lời {number}")
    b.settle()
    assert len(b.sent_to(LAN)) == 10
    spent_notes = [t for t in our_notes(b) if "free replies to this customer are spent" in t]
    assert len(spent_notes) == (1 if spent else 0)
    refresh(b)
    assert properties(b, LAN).get("zalo_free_replies_left") == left
    # quota/message is asked about the customer at most once an hour (and the package once).
    assert b.zalo.requests.get("/v3.0/oa/quota/message", 0) - asked <= 2
    b.fc.set_resolved(conversation, True)
    b.settle()
    assert (b.settings.sync.resolve_notice in b.sent_to(LAN)) is not spent  # sent only while it is free
    # Past the 48 hours every policy pays: the agent is told once, and no resolve notice goes.
    b.clock.advance(49 * HOUR)
    b.fc.set_resolved(conversation, False)
    b.fc.add_agent_message(conversation, "shop gửi thêm thông tin ạ")
    b.settle()
    assert b.sent_to(LAN)[-1] == "shop gửi thêm thông tin ạ"
    assert len([t for t in our_notes(b) if "free replies to this customer are spent" in t]) == 1
    sent = len(b.sent_to(LAN))
    b.fc.set_resolved(conversation, True)
    b.settle()
    assert len(b.sent_to(LAN)) == sent


def test_a_tag_is_one_plain_line_of_at_most_64_characters(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    agent_note(b, LAN, "/zalo tag Khách\x07   quen")
    assert b.zalo.users[LAN]["tags"] == ["Khách quen"]
    agent_note(b, LAN, "/zalo tag " + "Rất dài " * 25)
    assert b.zalo.users[LAN]["tags"] == ["Khách quen"]
    assert "at most 64 characters" in [t for t in our_notes(b) if "could not do" in t][-1]


@on(SIMS_IN_PROCESS)
def test_zalo_status_tells_the_window_free_replies_tags_details_and_failed_replies(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.zalo.users[LAN].update(shared_info=dict(SHARED), tags=["VIP"])
    b.cycle()
    agent_note(b, LAN, "/zalo status")
    (note,) = [t for t in our_notes(b) if t.startswith("ℹ️ This customer on Zalo:")]
    assert "- reply window: open until " in note and "- free replies: until " in note
    assert "- tags: VIP" in note and "phone: 84901234567" in note and "city: Hồ Chí Minh" in note
    assert "- failed replies to this customer: 0" in note
    # Eight days on, a reply fails (the window): status says the window is closed and counts the failure.
    b.clock.advance(8 * 24 * HOUR)
    b.fc.add_agent_message(b.conversation_of(LAN), "Dạ shop trả lời muộn ạ")
    b.settle(rounds=7, step=HOUR)
    b.zalo.modes.denied = "/v3.0/oa/user/detail"  # and the profile cannot be read now
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo status", message_type="private")
    b.settle(rounds=7, step=HOUR)
    latest = [t for t in our_notes(b) if t.startswith("ℹ️ This customer on Zalo:")][-1]
    assert "- reply window: closed since " in latest and "- failed replies to this customer: 1" in latest
    assert "not readable now" in latest and "Quyền quản lý thông tin OA" in latest
    assert not any("This customer" in text for text in b.sent_to(LAN))  # never reaches the customer


def test_zalo_help_lists_every_command_in_the_desks_language(bridge):
    b = bridge
    b.reconfigure(language="vi")
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    agent_note(b, LAN, "/zalo help")
    (note,) = [t for t in our_notes(b) if "Lệnh của zfsync" in t]
    for command in ("/zalo info", "/zalo tag", "/zalo untag", "/zalo status", "/zalo help"):
        assert command in note
