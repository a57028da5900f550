"""The answers the recorded sources give, or leave open, played by the simulators' modes: resolve markers
shaped as in Freshworks' fixtures, same-millisecond Zalo rows, send ids that differ from listing ids,
a token endpoint that fails for a while, attachments whose url comes late, a new conversation after a
resolve, a feed that refuses deep offsets, and row types the listing docs omit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import SIMS_IN_PROCESS, on
from zfsync.domain import Resume, ZaloTokens
from zfsync.sim.base import Fault
from zfsync.sync.decide.replies import ATTACHMENT_WAIT
from zfsync.sync.engine import BAD_CREDENTIALS, OK, TRANSIENT_ERROR

RECORDED = Path(__file__).parents[1] / "contract" / "recorded"
KHANH = "2512007384617209999"
LAN = "2512007384617200001"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082"
)


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def start_talking(b, user: str = KHANH) -> str:
    b.zalo.add_customer_message(user, "Minh Khánh", text="xin chào")
    b.cycle()
    return b.conversation_of(user)


# --- resolve, reopen and assignment markers ---------------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("markers", ["recorded", "system"])
def test_resolve_markers_send_the_notice_once_and_no_marker_text(bridge, markers):
    b = bridge
    b.fc.modes.markers = markers
    conversation = start_talking(b)
    b.fc.add_agent_message(conversation, "Dạ, em kiểm tra ạ")
    b.settle(rounds=2)
    b.fc.assign(conversation)  # an assignment marker: nothing to send
    b.fc.set_resolved(conversation, True)
    b.settle(rounds=2)
    b.restart()
    b.settle(rounds=2)
    b.fc.set_resolved(conversation, False)  # reopen: nothing to send
    b.fc.set_resolved(conversation, True)  # a second resolution: a second notice
    b.settle(rounds=2)
    notice = b.settings.sync.resolve_notice
    assert b.sent_to(KHANH) == ["Dạ, em kiểm tra ạ", notice, notice]
    with b.fc.lock:
        markers_written = [m for m in b.fc.messages[conversation] if m.get("message_source", "").lower() == "system"]
    assert len(markers_written) == 4
    if markers == "recorded":  # every variant of Freshworks' fixtures was played
        assert {m.get("message_type") for m in markers_written} == {None, "normal"}
        assert {m["message_source"] for m in markers_written} == {"system", "SYSTEM"}


# --- same-millisecond rows ---------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_same_millisecond_messages_arrive_in_feed_order_across_restarts(bridge):
    b = bridge
    b.zalo.modes.ties = True
    # The fake clock stands still: every row below has the very same millisecond.
    written = [f"cùng một mili giây {i}" for i in range(5)]
    for i, text in enumerate(written):
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text=text)
        if i == 2:
            b.zalo.add_customer_message(LAN, "Lan", text="xen giữa")
    rows = [m for m in b.zalo.messages if m["from_id"] == KHANH]
    assert len({m["time"] for m in rows}) == 1
    ids = [m["message_id"] for m in rows]
    assert ids != sorted(ids) and ids != sorted(ids, reverse=True)  # ids say nothing about order
    # The third post fails; the daemon restarts between every cycle, as after a kill.
    b.fc.faults.append(Fault("/v2/conversations/", "status", code=503, count=1))
    for _ in range(6):
        b.drive.zalo()
        b.restart()
        b.clock.advance(5)
    assert texts(b.customer_messages(KHANH)) == written
    assert texts(b.customer_messages(LAN)) == ["xen giữa"]


@on(SIMS_IN_PROCESS)
def test_a_row_tied_with_the_newest_known_one_is_not_hidden(bridge):
    b = bridge
    b.zalo.modes.ties = True
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="first")
    b.cycle()
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="same ms, later")
    b.cycle()
    assert texts(b.customer_messages(KHANH)) == ["first", "same ms, later"]


# --- send ids that the listings never show ---------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_with_send_ids_unlike_listing_ids_100_replies_make_no_oa_note_and_no_double_send(bridge):
    b = bridge
    b.zalo.modes.id_mismatch = True
    conversation = start_talking(b)
    replies = []
    for i in range(100):
        text = "Dạ vâng ạ" if i % 10 == 0 else f"trả lời {i}"  # repeated texts too
        replies.append(text)
        b.fc.add_agent_message(conversation, text)
        if i % 7 == 3:
            # The send leaves but its answer is lost: the row must be reconciled, not sent twice.
            b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "timeout", count=1))
        if i % 5 == 4:
            b.cycle()
            b.clock.advance(3)
    b.zalo.faults.clear()
    b.settle(rounds=12)
    records = b.sent_records(KHANH)
    assert all(r["send_id"] != r["message_id"] for r in records)
    assert [r["text"] for r in records] == replies
    assert b.notes() == []  # no echo came back as an "OA Manager" note
    assert texts(b.customer_messages(KHANH)) == ["xin chào"]


@on(SIMS_IN_PROCESS)
def test_with_send_ids_unlike_listing_ids_staff_messages_still_reach_the_agent(bridge):
    b = bridge
    b.zalo.modes.id_mismatch = True
    conversation = start_talking(b)
    b.fc.add_agent_message(conversation, "Dạ vâng ạ")
    b.settle(rounds=2)
    b.zalo.add_oa_message(KHANH, "Dạ vâng ạ")  # staff in OA Manager, the very same words
    b.zalo.add_oa_message(KHANH, "Nhân viên trực page đây")
    b.settle(rounds=3)
    notes = texts(b.notes())
    assert len(notes) == 2 and "Dạ vâng ạ" in notes[0] and "Nhân viên" in notes[1]
    assert b.sent_to(KHANH) == ["Dạ vâng ạ"]


@on(SIMS_IN_PROCESS)
def test_a_crash_after_a_mismatched_send_is_reconciled_without_a_second_send(bridge):
    b = bridge
    b.zalo.modes.id_mismatch = True
    conversation = start_talking(b)
    b.fc.add_agent_message(conversation, "ok")
    b.settle(rounds=2)
    b.fc.add_agent_message(conversation, "ok")  # the same text again: the first's echo must not count
    b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "timeout", count=1))
    b.settle(rounds=1)
    b.restart()
    b.settle(rounds=4)
    assert b.sent_to(KHANH) == ["ok", "ok"]
    assert b.notes() == []


# --- the token endpoint ----------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("kind", ["status", "timeout", "html", "zalo_error"])
def test_a_token_endpoint_failing_for_a_while_is_transient_and_recovers(bridge, kind):
    b = bridge
    access, refresh = b.zalo.mint_tokens()
    b.store.save_tokens(ZaloTokens(access, refresh, 1.0), b.clock())  # due, and expired a second later
    b.clock.advance(2)
    # -14002 is "invalid app": another code, not a refusal of the refresh token itself.
    b.zalo.faults.append(Fault("/v4/oa/access_token", kind, code=503 if kind == "status" else -14002, count=3))
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="trong lúc lỗi")
    b.cycle()
    assert b.store.health()["zalo"]["state"] == TRANSIENT_ERROR
    assert not b.store.load_tokens().dead_reason
    for _ in range(6):
        b.clock.advance(700)  # past the refresh backoff
        b.cycle()
    assert b.store.health()["zalo"]["state"] == OK
    assert texts(b.customer_messages(KHANH)) == ["trong lúc lỗi"]


@on(SIMS_IN_PROCESS)
def test_a_valid_access_token_keeps_working_while_the_refresh_fails(bridge):
    b = bridge
    access, refresh = b.zalo.mint_tokens()
    b.store.save_tokens(ZaloTokens(access, refresh, 3600.0), b.clock())  # refresh due, token still good
    b.zalo.faults.append(Fault("/v4/oa/access_token", "status", code=502, count=50))
    for i in range(5):
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"m{i}")
        b.cycle()
    assert b.store.health()["zalo"]["state"] == OK
    assert texts(b.customer_messages(KHANH)) == [f"m{i}" for i in range(5)]
    # The failing endpoint is not hammered: one try, then backoff.
    assert b.zalo.requests.get("/v4/oa/access_token", 0) <= 2


@on(SIMS_IN_PROCESS)
def test_a_refused_refresh_token_still_asks_for_auth(bridge):
    b = bridge
    b.store.save_tokens(ZaloTokens("unknown-access", "unknown-refresh", 90_000), b.clock())
    b.cycle()
    assert b.store.health()["zalo"]["state"] == BAD_CREDENTIALS
    assert "zfsync auth zalo" in b.store.load_tokens().dead_reason + b.store.health()["zalo"]["last_error"]


# --- agent attachments whose url comes late --------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_an_attachment_without_its_url_yet_is_read_again_not_sent_as_its_name(bridge):
    b = bridge
    b.fc.modes.late_urls = 2
    conversation = start_talking(b)
    url = b.fc.add_media(PNG, "image/png", "bao-gia.png")
    b.fc.add_agent_message(conversation, parts=[{"image": {"url": url}}, {"text": {"content": "báo giá"}}])
    b.fc.add_agent_message(conversation, "tin sau")
    b.settle(rounds=4)
    records = b.sent_records(KHANH)
    assert [r.get("kind", "text") for r in records] == ["photo", "text", "text"]
    assert [r["text"] for r in records][1:] == ["báo giá", "tin sau"]


@on(SIMS_IN_PROCESS)
def test_an_attachment_that_never_gets_a_url_goes_without_it_and_the_agent_is_told(bridge):
    b = bridge
    b.fc.modes.late_urls = 10_000
    conversation = start_talking(b)
    file_part = {"file": {"name": "hop-dong.pdf", "url": "x", "content_type": "application/pdf"}}
    b.fc.add_agent_message(conversation, parts=[file_part, {"text": {"content": "hợp đồng"}}])
    b.settle(rounds=2)
    assert b.sent_to(KHANH) == []  # still waiting for the url
    b.clock.advance(ATTACHMENT_WAIT)
    b.settle(rounds=3)
    assert b.sent_to(KHANH) == ["hợp đồng"]
    assert not any("hop-dong.pdf:" in t for t in b.sent_to(KHANH))
    (note,) = texts(b.notes())
    assert "hop-dong.pdf" in note


# --- a new conversation after a resolve ------------------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("mode", ["carry", "empty"])
def test_not_the_latest_after_a_resolve_never_posts_twice(bridge, mode):
    b = bridge
    b.fc.modes.not_latest_after_resolve = mode
    first = start_talking(b)
    b.fc.set_resolved(first, True)
    b.settle(rounds=2)
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="lại là tôi")
    b.settle(rounds=3)
    assert texts(b.customer_messages(KHANH)) == ["xin chào", "lại là tôi"]
    assert b.conversation_of(KHANH) != first


# --- the feed's depth ------------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize(("mode", "resume_past_depth"), [("refuse", False), ("empty", False), ("refuse", True)])
def test_a_feed_that_ends_or_refuses_deep_offsets_wedges_nothing(bridge, mode, resume_past_depth):
    b = bridge
    b.zalo.modes.feed_depth = 20
    b.zalo.modes.feed_depth_mode = mode
    if resume_past_depth:
        # A capped scan left its resume point past the depth (an earlier release stepped 10 rows a page,
        # so it could land on it exactly): reading on from there must end that scan, not fail every cycle.
        cursor = b.store.feed_cursor()
        assert cursor.mark is not None
        b.store.move_feed(cursor.mark, Resume(30, cursor.mark))
    users = [f"25120073846172{n:05d}" for n in range(8)]
    for i in range(60):
        b.zalo.add_customer_message(users[i % 8], "Khách", text=f"m{i}")
    b.settle(rounds=3)
    for n, user in enumerate(users):
        assert texts(b.customer_messages(user)) == [f"m{i}" for i in range(60) if i % 8 == n]
    assert b.store.health()["zalo"]["state"] == OK
    assert b.store.feed_cursor().resume is None
    b.zalo.add_customer_message(users[0], "Khách", text="after")
    b.cycle()
    assert texts(b.customer_messages(users[0]))[-1] == "after"


# --- row types the listing docs omit ---------------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_a_row_of_any_type_with_a_url_is_copied_as_a_file_with_its_name(bridge):
    b = bridge
    pdf = b.zalo.add_media(b"%PDF-1.4 hop dong", "application/pdf", "x")
    video = b.zalo.add_media(b"\x00\x00\x00\x18ftypmp42", "video/mp4", "clip.mp4")
    b.zalo.add_customer_message(KHANH, "Minh Khánh", type="file", url=pdf, name="hop-dong.pdf")
    b.zalo.add_customer_message(KHANH, "Minh Khánh", type="video", url=video, description="xem video")
    b.zalo.add_customer_message(KHANH, "Minh Khánh", type="business card", text="", phone="0901234567")
    b.cycle()
    file_message, video_message, card = b.customer_messages(KHANH)
    assert file_message["message_parts"][0]["file"]["name"] == "hop-dong.pdf"
    assert "Zalo file" in texts([file_message])[0]
    assert video_message["message_parts"][0]["file"]["name"] == "clip.mp4"
    assert "xem video" in texts([video_message])[0]
    assert "business card" in texts([card])[0] and "0901234567" in texts([card])[0]


# --- agent replies the sources show more of than a text (round three) ---------------------------------


@on(SIMS_IN_PROCESS)
def test_an_agent_reply_with_other_meta_data_buttons_and_templates_reaches_the_customer(bridge):
    recorded = json.loads((RECORDED / "freshchat/messages_agent_parts_composed.json").read_text(encoding="utf-8"))
    with_reply_parts = next(m for m in recorded["messages"] if "reply_parts" in m)
    template = next(m for m in recorded["messages"] if "template_content" in m["message_parts"][0])
    b = bridge
    conversation = start_talking(b)
    b.fc.add_agent_message(
        conversation,
        parts=with_reply_parts["message_parts"],
        reply_parts=with_reply_parts["reply_parts"],
        meta_data=with_reply_parts["meta_data"],  # a key zfsync does not know: still a reply, not a marker
    )
    b.fc.add_agent_message(conversation, parts=template["message_parts"])
    b.fc.add_agent_message(conversation, parts=[{"reference": {"label": "Đơn #1234", "reference_id": "1234"}}])
    b.fc.add_agent_message(conversation, parts=[{"poll": {"options": [1, 2]}}])  # nothing to read: a note
    b.settle(rounds=3)
    assert b.sent_to(KHANH) == [
        "Dạ, đơn hàng của anh đã được giao\nTheo dõi đơn: https://shop.example.vn/don/1234\n"
        "• Cảm ơn\n• Gọi lại cho tôi",
        "Anh chọn giờ giao hàng nhé\n• Sáng\n• Chiều",
        "Đơn #1234",
    ]
    (note,) = texts(b.notes())
    assert "poll" in note


@on(SIMS_IN_PROCESS)
def test_attachments_named_by_download_url_alone_are_sent(bridge):
    b = bridge
    b.fc.modes.attachment_link = "download_url"
    conversation = start_talking(b)
    url = b.fc.add_media(PNG, "image/png", "bao-gia.png")
    pdf = b.fc.add_media(b"%PDF-1.4 hop dong", "application/pdf", "hop-dong.pdf")
    file_part = {"file": {"name": "hop-dong.pdf", "url": pdf, "content_type": "application/pdf"}}
    b.fc.add_agent_message(conversation, parts=[{"image": {"url": url}}, file_part])
    b.settle(rounds=3)
    assert [r.get("kind") for r in b.sent_records(KHANH)] == ["photo", "file"]
    assert b.notes() == []


# --- waits the server names ------------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("form", ["unix", "unix_ms", "wait"])
def test_a_reset_time_in_any_form_pauses_freshchat_for_the_window_not_for_ever(bridge, form):
    b = bridge
    b.fc.modes.reset_form = form
    reset = {"unix": b.clock() + 20, "unix_ms": (b.clock() + 20) * 1000, "wait": 20}[form]
    headers = {"X-RateLimit-Limit": "400", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(reset))}
    b.fc.faults.append(Fault("/v2/users", "status", code=429, count=2, headers=headers))
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="xin chào")
    b.cycle()
    assert b.store.health()["freshchat"]["state"] == "RATE_LIMITED"
    b.settle(rounds=8, step=10.0)  # a minute and a half: past the named resets, nowhere near a misread one
    assert texts(b.customer_messages(KHANH)) == ["xin chào"]
    assert b.store.health()["freshchat"]["state"] == OK
    b.fc.modes.update({"quota_per_minute": 3, "retry_after": False})  # the simulator's own window, in the form
    for n in range(4):
        b.zalo.add_customer_message(f"84{n:017d}", f"Khách {n}", text=f"tin {n}")
    b.settle(rounds=8, step=30.0)
    for n in range(4):
        assert texts(b.customer_messages(f"84{n:017d}")) == [f"tin {n}"]


# --- OAuth refusals without a number -----------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("form", ["code", "error_name", "error_description", "error_reason"])
def test_a_dead_refresh_token_in_any_refusal_form_asks_for_auth(bridge, form):
    b = bridge
    b.zalo.modes.oauth_refusal = form
    b.store.save_tokens(ZaloTokens("unknown-access", "unknown-refresh", 90_000), b.clock())
    b.cycle()
    assert b.store.health()["zalo"]["state"] == BAD_CREDENTIALS
    assert "zfsync auth zalo" in b.store.health()["zalo"]["last_error"]


# --- one Zalo message, two ids (listrecentchat and conversation disagree) -----------------------------------


def customer(n: int) -> str:
    return f"84{n:017d}"


@on(SIMS_IN_PROCESS)
def test_with_two_ids_a_downtime_catch_up_takes_each_message_once_in_order(bridge):
    b = bridge
    b.zalo.modes.two_ids = True
    for n in range(5):  # known customers, recorded from the feed under its ids
        b.zalo.add_customer_message(customer(n), f"Khách {n}", text=f"u{n} before")
    b.settle(rounds=2)
    b.zalo.modes.feed_depth = 12  # after downtime the feed shows only the newest rows: catch-up reads conversations
    for i in range(6):
        for n in range(5):
            b.zalo.add_customer_message(customer(n), f"Khách {n}", text=f"u{n} m{i}")
    b.restart()
    b.settle(rounds=4)
    for n in range(5):
        assert texts(b.customer_messages(customer(n))) == [f"u{n} before"] + [f"u{n} m{i}" for i in range(6)]
    b.settle(rounds=2)  # and later polls (the feed shows them under its own ids again) add nothing
    for n in range(5):
        assert len(b.customer_messages(customer(n))) == 7


@on(SIMS_IN_PROCESS)
def test_with_two_ids_a_catch_up_that_finds_no_recorded_id_stops_at_what_it_matches(bridge):
    b = bridge
    b.zalo.modes.two_ids = True
    for i in range(60):  # a long history, recorded from the feed under its ids
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"old {i}")
    b.settle(rounds=2)
    assert len(b.customer_messages(KHANH)) == 60
    b.zalo.modes.feed_depth = 2
    for i in range(3):
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"new {i}")
    b.zalo.add_customer_message(LAN, "Lan", text="xin chào")  # pushes Khánh's rows past the feed's depth
    b.zalo.add_customer_message(LAN, "Lan", text="cho hỏi")
    reads_before = b.zalo.requests.get("/v2.0/oa/conversation", 0)
    b.restart()
    b.settle(rounds=3)
    assert texts(b.customer_messages(KHANH)) == [f"old {i}" for i in range(60)] + [f"new {i}" for i in range(3)]
    assert texts(b.customer_messages(LAN)) == ["xin chào", "cho hỏi"]
    # Khánh's conversation was read down to "old 59" (matched by what it says and when), not to the start
    assert b.zalo.requests.get("/v2.0/oa/conversation", 0) - reads_before <= 4


@on(SIMS_IN_PROCESS)
def test_with_two_ids_our_replies_and_staff_messages_are_told_apart(bridge):
    b = bridge
    b.zalo.modes.two_ids = True
    conversation = start_talking(b)
    for i in range(5):
        b.fc.add_agent_message(conversation, f"đáp {i}")
    b.settle(rounds=3)
    b.zalo.add_oa_message(KHANH, "staff typed this in OA Manager")
    b.zalo.modes.feed_depth = 1  # the next cycles read the conversation too: every reply there, other ids
    for i in range(3):
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"hỏi {i}")
    b.restart()
    b.settle(rounds=4)
    assert b.sent_to(KHANH)[:5] == [f"đáp {i}" for i in range(5)] and len(b.sent_to(KHANH)) == 5
    (note,) = texts(b.notes())
    assert "staff typed this in OA Manager" in note
    assert texts(b.customer_messages(KHANH)) == ["xin chào", "hỏi 0", "hỏi 1", "hỏi 2"]


@on(SIMS_IN_PROCESS)
def test_a_conversation_shifting_while_read_does_not_count_a_photo_twice(bridge):
    """A customer writing while zfsync pages through the conversation shifts the offsets, so a row shows on
    two pages: counted twice, an earlier photo would pass for the retried image, which was never sent."""
    b = bridge
    b.zalo.modes.two_ids = True  # no listed photo is known by its id: they are counted
    conversation = start_talking(b)
    first = b.fc.add_media(PNG, "image/png", "mot.png")
    b.fc.add_agent_message(conversation, parts=[{"image": {"url": first}}])
    b.settle(rounds=3)
    for i in range(9):  # the photo is the tenth row, the last of the first page
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"tin {i}")
    b.settle(rounds=2)
    read = b.zalo.conversation_listing
    pages: list[int] = []

    def customer_writes_meanwhile(request):
        answer = read(request)
        if not b.fc.faults:  # the download failed: this is the reconcile's reading
            pages.append(int(json.loads(request.query["data"])["offset"]))
            if len(pages) == 1:
                b.zalo.add_customer_message(KHANH, "Minh Khánh", text="tin giữa chừng")
        return answer

    b.zalo.conversation_listing = customer_writes_meanwhile
    second = b.fc.add_media(PNG, "image/png", "hai.png")
    b.fc.faults.append(Fault("/media/", "timeout", count=1))  # the download fails: the row is reconciled
    b.fc.add_agent_message(conversation, parts=[{"image": {"url": second}}])
    b.settle(rounds=2)
    b.clock.advance(30)
    b.settle(rounds=3)
    assert pages[:2] == [0, 10]
    assert [r.get("kind", "text") for r in b.sent_records(KHANH)] == ["photo", "photo"]
    assert b.notes() == []
