"""Zalo group chats in FreshChat (``sync.groups``): one group, one conversation; members' messages of
every type in order, once, with their names; agents' replies to the whole group with mentions; the
group's package and Zalo's refusals told to the agent; restarts and kills lose and double nothing. On the
fakes (the core), and on the simulators, where the GMF wire shapes are played."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import FAKES, SIMS, SIMS_IN_PROCESS, on
from tests.contract.test_gmf import play
from tests.integration.test_content import PDF, png
from tests.integration.test_zns_templates import RATING, properties
from zfsync.cli import check
from zfsync.domain import group_key
from zfsync.runtime import status
from zfsync.runtime.app import build_clients
from zfsync.sim.base import Fault
from zfsync.sim.inprocess import session_for
from zfsync.sync.write import freshchat_posts

GROUP = "f414c8f76fa586fbdfb4"
KEY = group_key(GROUP)
MEMBERS = {"8756287263669629130": "Hoàng Trường Phước", "186729651760683225": "Lan", "7967320986128691935": "Minh"}
PHUOC, LAN, MINH = MEMBERS
VIETNAM = timezone(timedelta(hours=7))


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


def dies_at(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, call: int, before: bool = False) -> None:
    """The process dies at ``owner.name``'s ``call``-th call: right after it did its work, or ``before``."""
    original, calls = getattr(owner, name), itertools.count(1)

    def dying(*args: object, **kwargs: object) -> object:
        last = next(calls) == call
        if last and before:
            raise Killed
        result = original(*args, **kwargs)
        if last:
            raise Killed
        return result

    monkeypatch.setattr(owner, name, dying)


def with_groups(b, **sync: object) -> None:
    """Groups on, with one group of three; the first poll sets what the groups already hold as history."""
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", MEMBERS)
    b.reconfigure(groups=True, **sync)
    b.cycle()


def texts(messages: list[dict]) -> list[str]:
    return ["\n".join(p["text"]["content"] for p in m["message_parts"] if "text" in p) for m in messages]


def group_messages(b) -> list[dict]:
    return b.customer_messages(KEY)


def sent_to_group(b) -> list[dict]:
    return list(b.zalo.gmf.sent)


@on(FAKES, SIMS_IN_PROCESS)
def test_a_group_of_three_writes_every_content_type_in_order_once_with_their_names(bridge):
    b = bridge
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", MEMBERS)
    b.zalo.add_group_message(GROUP, PHUOC, "history, never bridged")
    with_groups(b)
    photo = b.zalo.add_media(png(), "image/png", "don.png")
    document = b.zalo.add_media(PDF, "application/pdf", "bao-gia.pdf")
    b.zalo.add_group_message(GROUP, PHUOC, "Chào shop")
    b.zalo.add_group_message(GROUP, LAN, "", type="photo", url=photo, thumb=photo, description="Hàng lỗi")
    b.zalo.add_group_message(GROUP, MINH, "", type="sticker", url=photo)
    b.zalo.add_group_message(GROUP, PHUOC, "", type="voice", url=document)
    b.zalo.add_group_message(GROUP, LAN, "xem", type="link", links=["https://shop.vn/a"])
    b.zalo.add_group_message(GROUP, MINH, "", type="location", location='{"latitude": "21.02", "longitude": "105.84"}')
    b.zalo.add_group_message(GROUP, PHUOC, "", type="file", url=document, file_name="bao-gia.pdf")
    b.zalo.add_group_message(GROUP, LAN, "[@7967320986128691935] ơi, đơn đâu?")
    b.settle()
    b.settle()  # nothing more, however often it runs
    messages = group_messages(b)
    shown = texts(messages)
    assert len(messages) == 8
    assert [s.split("\n")[0] for s in shown] == [
        "Hoàng Trường Phước:",
        "Lan:",
        "Minh:",
        "Hoàng Trường Phước:",
        "Lan:",
        "Minh:",
        "Hoàng Trường Phước:",
        "Lan:",
    ]
    assert shown[0] == "Hoàng Trường Phước:\nChào shop"
    assert "Hàng lỗi" in shown[1] and "https://shop.vn/a" in shown[4] and "21.02" in shown[5]
    assert shown[7] == "Lan:\n@Minh ơi, đơn đâu?"  # the mention by name
    image_url = messages[1]["message_parts"][1]["image"]["url"]
    assert image_url.startswith(b.fc.base_url)  # copied into FreshChat, not Zalo's expiring link
    assert any("file" in p for p in messages[6]["message_parts"])
    (user,) = [u for u in b.fc_state()["users"] if u["reference_id"] == f"zalo-{KEY}"]
    assert user["first_name"] == "Khách sỉ Hà Nội (nhóm Zalo)"
    properties = {p["name"]: p["value"] for p in user["properties"]}
    assert properties["external_user_provider"] == "zalo_group" and properties["zalo_group_id"] == GROUP
    assert not any("history" in s for s in shown)
    by_chat = {(d, c): n for d, c, n in b.store.delivered_by_chat()}
    assert by_chat == {("z2f", "group"): 8}  # zfsync_chat_messages_total{chat="group"}


@on(FAKES, SIMS_IN_PROCESS, SIMS)
@pytest.mark.parametrize("listed_as", ["ids", "names"])
def test_an_agents_reply_reaches_the_group_with_zalos_mention_and_never_echoes(bridge, listed_as):
    b = bridge
    play(b.zalo, mentions=listed_as)
    with_groups(b, agent_signature="— {agent_first_name}")
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.zalo.add_group_message(GROUP, MINH, "Cho hỏi giá")
    b.settle()
    conversation = b.conversation_of(KEY)
    b.fc.add_agent_message(conversation, "@Lan @Minh dạ shop gửi báo giá ạ (@Lana không phải thành viên)")
    b.settle()
    (sent,) = sent_to_group(b)
    assert sent["group_id"] == GROUP
    assert sent["text"].startswith(f"[@{LAN}] [@{MINH}] dạ shop gửi báo giá ạ (@Lana không phải thành viên)")
    assert sent["text"].splitlines()[-1].startswith("— ")
    b.settle()
    assert len(group_messages(b)) == 2 and not b.notes()  # the send listed back is ours: no echo, no note


@on(FAKES, SIMS_IN_PROCESS)
def test_the_oas_own_message_from_the_zalo_app_shows_as_a_private_note(bridge):
    b = bridge
    with_groups(b)
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.zalo.add_group_oa_message(GROUP, "Dạ shop đây (gõ từ điện thoại)")
    b.settle()
    (note,) = b.notes()
    assert "Dạ shop đây" in texts([note])[0]
    assert len(group_messages(b)) == 1


@on(FAKES, SIMS_IN_PROCESS)
@pytest.mark.parametrize("why", [{"status": "disabled"}, {"valid_through": "01/01/2020"}])
def test_a_disabled_group_or_expired_package_gives_the_agent_one_note(bridge, why):
    b = bridge
    with_groups(b)
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.settle()
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", {}, **why)
    b.fc.add_agent_message(b.conversation_of(KEY), "Dạ shop đây")
    b.settle()
    b.settle()
    (note,) = b.notes()
    assert "package (GMF)" in texts([note])[0] and "Dạ shop đây" in texts([note])[0]
    assert sent_to_group(b) == []


@on(FAKES, SIMS_IN_PROCESS)
def test_the_package_end_is_shown_and_told_once_before_it_comes(bridge):
    b = bridge
    end = (datetime.fromtimestamp(b.clock(), VIETNAM) + timedelta(days=12)).strftime("%d/%m/%Y")
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", MEMBERS, valid_through=end)
    with_groups(b, group_expiry_property="cf_zalo_group_until")
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.settle()
    b.clock.advance(3_600)
    b.settle(rounds=1)  # the packages are read hourly: the end is shown once the conversation exists
    conversation = b.conversation_of(KEY)
    assert properties(b, conversation)["cf_zalo_group_until"] == end
    assert b.notes() == []
    for _ in range(10):  # a day at a time: told once, seven days before the end
        b.clock.advance(86_400)
        b.settle(rounds=1)
    (note,) = b.notes()
    assert end in texts([note])[0] and "Khách sỉ Hà Nội" in texts([note])[0]


@on(FAKES, SIMS_IN_PROCESS)
def test_groups_off_reads_no_group_and_a_missing_permission_stops_only_groups(bridge):
    b = bridge
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", MEMBERS)
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.settle()
    assert group_messages(b) == []
    play(b.zalo, gmf="unverified")
    b.reconfigure(groups=True)
    b.zalo.add_customer_message("2512007384617209999", "Minh Khánh", text="chào")
    b.settle()
    assert texts(b.customer_messages("2512007384617209999")) == ["chào"]
    assert b.store.health()["zalo"]["state"] == "OK"
    report = status.collect(b.store, b.clock())
    (problem,) = [p for p in report["problems"] if "group chats" in p["what"]]
    assert "-221" in problem["what"] and "sync.groups = false" in problem["fix"]
    asked = dict(b.zalo.requests)
    b.settle(rounds=5)  # a refusal is asked again hourly, not with every poll
    assert {k: v - asked.get(k, 0) for k, v in b.zalo.requests.items() if "/group/" in k and v != asked.get(k)} == {}
    play(b.zalo)
    b.clock.advance(3_600)
    b.settle(rounds=2)
    assert [p for p in status.collect(b.store, b.clock())["problems"] if "group chats" in p["what"]] == []
    assert texts(group_messages(b)) == []  # what the group held when first read is history


@on(FAKES, SIMS_IN_PROCESS)
def test_a_route_sends_group_chats_to_their_own_channel(bridge):
    b = bridge
    b.fc.add_channel("groups-channel", "Nhóm Zalo")
    with_groups(b, routes=[{"zalo_group": "*", "channel_id": "groups-channel"}])
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.zalo.add_customer_message("2512007384617209999", "Minh Khánh", text="chào")
    b.settle()
    assert b.conversation(b.conversation_of(KEY))["channel_id"] == "groups-channel"
    assert b.conversation(b.conversation_of("2512007384617209999"))["channel_id"] != "groups-channel"


@on(FAKES, SIMS_IN_PROCESS)
def test_a_restart_and_a_kill_mid_burst_lose_and_double_nothing(bridge, monkeypatch):
    b = bridge
    with_groups(b)
    written = [f"tin {n}" for n in range(30)]
    for n, text in enumerate(written[:15]):
        b.zalo.add_group_message(GROUP, (PHUOC, LAN, MINH)[n % 3], text)
    b.drive.steps.zalo()  # recorded, not posted yet
    b.restart()
    # Killed while posting: FreshChat took the fifth message, the store never heard.
    dies_at(monkeypatch, freshchat_posts.CustomerMessagePost, "send", call=5)
    with pytest.raises(Killed):
        b.settle()
    monkeypatch.undo()
    b.restart()
    # Killed while recording: the group's rows were read and never written.
    for n, text in enumerate(written[15:]):
        b.zalo.add_group_message(GROUP, (PHUOC, LAN, MINH)[n % 3], text)
    dies_at(monkeypatch, b.store, "record_zalo_messages", call=1, before=True)
    with pytest.raises(Killed):
        b.drive.zalo()
    monkeypatch.undo()
    b.restart()
    b.clock.advance(700)  # past the sweep of a quiet group, whatever the feed shows
    b.settle()
    b.settle()
    assert [t.split("\n", 1)[1] for t in texts(group_messages(b))] == written


@on(SIMS_IN_PROCESS)
def test_check_says_whether_the_oa_has_group_chats(bridge, capsys):
    b = bridge
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", MEMBERS)
    b.zalo.add_group("aee702d6bc8455da0c95", "b53", {}, status="disabled")
    clients = build_clients(b.settings, b.store, b.clock, session_for(b.zalo, b.zalo_url), None)
    assert check.check_groups(b.settings, clients.zalo) == 0
    assert "group chats (GMF): 2 group(s), 1 enabled; sync.groups is off" in capsys.readouterr().out
    b.zalo.modes.update({"gmf": "no_package"})
    assert check.check_groups(b.settings, clients.zalo) == 0  # not asked for: no problem, said
    assert "not available (the OA's package has no group chats)" in capsys.readouterr().out
    b.reconfigure(groups=True)
    assert check.check_groups(b.settings, clients.zalo) == 1
    assert "PROBLEM: sync.groups is on" in capsys.readouterr().out


@on(FAKES, SIMS_IN_PROCESS)
def test_a_groups_last_days_are_imported_once_below_live_messages(bridge):
    b = bridge
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", MEMBERS)
    b.zalo.add_group_message(GROUP, LAN, "hôm qua [@7967320986128691935]")
    b.zalo.add_group_message(GROUP, MINH, "dạ")
    b.reconfigure(groups=True, import_history_days=7)
    b.cycle()
    b.zalo.add_group_message(GROUP, PHUOC, "hôm nay")
    b.settle()
    b.restart()
    b.settle()
    shown = texts(b.fc_state()["conversations"][0]["messages"])
    assert [s for s in shown if s.startswith(("Lan:", "Minh:", "Hoàng"))] == [
        "Lan:\nhôm qua @Minh",
        "Minh:\ndạ",
        "Hoàng Trường Phước:\nhôm nay",
    ]
    assert any("Zalo history" in s for s in shown)


@on(FAKES, SIMS_IN_PROCESS)
def test_a_group_made_later_is_named_at_its_first_message(bridge):
    b = bridge
    with_groups(b)
    b.zalo.add_group("aee702d6bc8455da0c95", "Dự án Quận 7", {"333": "Hòa"})
    b.zalo.add_group_message("aee702d6bc8455da0c95", "333", "chào cả nhà")
    b.settle()
    (user,) = [u for u in b.fc_state()["users"] if u["reference_id"] == "zalo-group:aee702d6bc8455da0c95"]
    assert user["first_name"] == "Dự án Quận 7 (nhóm Zalo)"
    assert texts(b.customer_messages("group:aee702d6bc8455da0c95")) == ["Hòa:\nchào cả nhà"]


@on(FAKES)
def test_quiet_groups_cost_a_few_requests_a_minute(bridge):
    b = bridge
    for n in range(20):
        b.zalo.add_group(f"{n:020x}", f"Nhóm {n}", {"333": "Hòa"})
    with_groups(b)
    b.settle()
    before = dict(b.zalo.requests)
    for _ in range(300):  # ten quiet minutes, a Zalo poll every 2 s as configured
        b.drive.zalo()
        b.clock.advance(2.0)
    spent = {k: v - before.get(k, 0) for k, v in b.zalo.requests.items() if "/group/" in k and v != before.get(k)}
    per_minute = {k: round(v / 10, 1) for k, v in spent.items()}
    # The feed every 5 s, the list every 5 minutes, each quiet group once in 10 minutes (and its members
    # once an hour: not within these ten minutes).
    assert per_minute == {
        "/v3.0/oa/group/listrecentchat": pytest.approx(11.0, abs=1.5),  # every 5 s, at a 2 s poll: 6 s
        "/v3.0/oa/group/getgroupsofoa": pytest.approx(0.6, abs=0.3),
        "/v3.0/oa/group/conversation": pytest.approx(2.0, abs=0.3),
    }


@on(FAKES, SIMS_IN_PROCESS)
def test_a_reply_to_a_group_quiet_for_weeks_goes_out_with_the_cold_poll_and_long_texts_images_files_too(bridge):
    b = bridge
    with_groups(b)
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.settle()
    b.clock.advance(20 * 86_400)  # three weeks of quiet: a customer would be past the 7-day window
    b.settle(rounds=2)
    image = b.fc.add_media(png(), "image/png", "bao-gia.png")
    conversation = b.conversation_of(KEY)
    b.fc.add_agent_message(conversation, "Báo giá tháng này. " * 150)  # ~2,900 characters: two texts
    b.fc.add_agent_message(conversation, parts=[{"image": {"url": image}}, {"text": {"content": "ảnh báo giá"}}])
    pdf = b.fc.add_media(PDF, "application/pdf", "bao-gia.pdf")
    b.fc.add_agent_message(
        conversation, parts=[{"file": {"url": pdf, "name": "bao-gia.pdf", "content_type": "application/pdf"}}]
    )
    for _ in range(4):  # the cold interval (600 s), not the 6-hour sweep of a customer past the window
        b.clock.advance(200)
        b.settle(rounds=1)
    sent = sent_to_group(b)
    assert [s.get("kind", "text") for s in sent] == ["text", "text", "photo", "text", "file"]
    assert sum(len(s["text"]) for s in sent[:2]) > 2000 and sent[3]["text"] == "ảnh báo giá"
    assert b.notes() == []


@on(FAKES, SIMS_IN_PROCESS)
def test_a_group_renamed_on_zalo_has_its_freshchat_user_renamed_within_the_hour(bridge):
    b = bridge
    with_groups(b)
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.settle()
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội 2027", {})
    b.clock.advance(3_700)
    b.settle(rounds=2)
    (user,) = [u for u in b.fc_state()["users"] if u["reference_id"] == f"zalo-{KEY}"]
    assert user["first_name"] == "Khách sỉ Hà Nội 2027 (nhóm Zalo)"
    assert {p["name"]: p["value"] for p in user["properties"]}["external_user_provider"] == "zalo_group"


@on(FAKES, SIMS_IN_PROCESS)
def test_the_groups_own_trouble_never_marks_the_customers_side_unhealthy(bridge):
    b = bridge
    with_groups(b)
    b.zalo.faults.append(Fault("/v3.0/oa/group/listrecentchat", "malformed", count=4))
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.zalo.add_customer_message("2512007384617209999", "Minh Khánh", text="chào")
    b.settle(rounds=2)
    assert texts(b.customer_messages("2512007384617209999")) == ["chào"]
    assert b.store.health()["zalo"]["state"] == "OK"
    b.settle(rounds=4)  # the group's message follows once the feed answers again
    assert texts(group_messages(b)) == ["Lan:\nShop ơi"]


@on(FAKES, SIMS_IN_PROCESS)
def test_a_resolve_in_a_group_sends_no_notice_no_rating_and_no_note(bridge):
    b = bridge
    with_groups(b, templates=RATING, rating_template="danh-gia", resolve_notice="Cảm ơn quý khách!")
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.settle()
    conversation = b.conversation_of(KEY)
    b.fc.add_agent_message(conversation, "Dạ shop đây")
    b.settle()
    b.fc.set_resolved(conversation, True)
    b.settle()
    assert [s["text"] for s in sent_to_group(b)] == ["Dạ shop đây"]
    assert b.notes() == [] and b.zalo.zns.sent == []


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("listed_as", ["ids", "names"])
def test_a_send_answered_under_an_id_the_listings_never_show_is_still_known_as_ours(bridge, listed_as):
    b = bridge
    b.zalo.modes.update({"id_mismatch": True, "group_mentions": listed_as})
    with_groups(b)
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")
    b.settle()
    b.fc.add_agent_message(b.conversation_of(KEY), "@Lan dạ shop đây")
    b.settle()
    b.clock.advance(700)  # past the sweep: the group's own listing, with our send under another id, is read
    b.settle()
    ((sent,),) = [sent_to_group(b)]
    assert sent["send_id"] != sent["message_id"] and sent["text"] == f"[@{LAN}] dạ shop đây"
    assert b.notes() == []  # matched by content: no note of OA staff for it


@on(FAKES, SIMS_IN_PROCESS)
def test_a_member_who_never_wrote_is_mentioned_by_name_both_ways(bridge):
    b = bridge
    with_groups(b)
    b.zalo.add_group_message(GROUP, LAN, f"[@{PHUOC}] anh xem giúp")  # Phước never wrote
    b.settle()
    assert texts(group_messages(b)) == ["Lan:\n@Hoàng Trường Phước anh xem giúp"]
    b.fc.add_agent_message(b.conversation_of(KEY), "@Hoàng Trường Phước dạ em gửi anh")
    b.settle()
    assert [s["text"] for s in sent_to_group(b)] == [f"[@{PHUOC}] dạ em gửi anh"]


@on(FAKES)
def test_a_group_zalo_refuses_to_list_is_asked_again_at_the_sweep_not_every_poll(bridge):
    b = bridge
    with_groups(b)
    b.zalo.add_group(GROUP, "Khách sỉ Hà Nội", {}, valid_through="01/01/2020")  # listed enabled, refused -237
    b.zalo.add_group_message(GROUP, LAN, "Shop ơi")  # on the groups' feed, never readable
    before = b.zalo.requests["/v3.0/oa/group/conversation"]
    for _ in range(60):  # two minutes of polls
        b.drive.zalo()
        b.clock.advance(2.0)
    assert b.zalo.requests["/v3.0/oa/group/conversation"] - before == 1
    assert b.store.health()["zalo"]["state"] == "OK"
