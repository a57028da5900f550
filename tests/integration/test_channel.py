"""What agents expect from a channel, under a fake clock: their name on replies, quoted replies, routing,
and customers left unanswered (on the fakes, and on the simulators where channels, groups and agents are
set up as FreshChat lists them)."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry, generate_latest

from tests.conftest import SIMS, SIMS_IN_PROCESS, on
from zfsync import cli
from zfsync.cli import status_text
from zfsync.domain import Route
from zfsync.runtime import metrics, status
from zfsync.sim.base import Fault
from zfsync.sim.freshchat import AGENT_ID, CHANNEL_ID, GROUP_ID, channel_object
from zfsync.sim.zalo import conversation_id_of

LAN = "9007199254740993123"
KHANH = "2512007384617209999"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def test_a_signed_reply_carries_the_agents_vietnamese_name_and_fits_zalos_2000_characters(bridge):
    b = bridge
    b.reconfigure(agent_signature="— {agent_first_name} ({agent_name}), CSKH")
    b.fc.set_agent(AGENT_ID, "Thảo", "Trần Thị")
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    conversation = b.conversation_of(LAN)
    b.fc.add_agent_message(conversation, "Dạ shop chào chị")
    b.fc.add_agent_message(conversation, "Chính sách đổi trả: " + "đổi trong 7 ngày. " * 110)  # 2,000+ characters
    b.fc.set_resolved(conversation, True)
    b.settle()
    signature = "— Thảo (Thảo Trần Thị), CSKH"
    sent = b.sent_to(LAN)
    assert sent[0] == f"Dạ shop chào chị\n{signature}"
    assert len(sent) == 4 and all(len(text) <= 2000 for text in sent)
    assert sent[2].endswith(f"\n{signature}") and signature not in sent[1]  # a split reply is signed once
    assert sent[3] == b.settings.sync.resolve_notice  # never signed
    assert b.fc.requests.get(f"/v2/agents/{AGENT_ID}", 0) == 1  # asked once, kept for a day


def test_a_reply_quoting_a_customers_message_quotes_it_on_zalo(bridge):
    b = bridge
    zalo_id = b.zalo.add_customer_message(LAN, "Lan", text="Áo này còn size M không?")["message_id"]
    b.zalo.add_customer_message(LAN, "Lan", text="Giao Hà Nội bao lâu?")
    b.cycle()
    asked = b.customer_messages(LAN)[0]  # the FreshChat copy of the first question
    b.fc.add_agent_message(b.conversation_of(LAN), "Dạ còn ạ", in_reply_to={"message_id": asked["id"]})
    b.settle()
    (reply,) = b.sent_records(LAN)
    assert (reply["text"], reply["quote"]) == ("Dạ còn ạ", zalo_id)


def test_a_quote_zalo_refuses_falls_back_once_and_the_agent_is_not_bothered(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="Áo này còn size M không?")
    b.cycle()
    asked = b.customer_messages(LAN)[0]
    b.zalo.faults.append(
        Fault("/v3.0/oa/message/cs", "zalo_error", code=-201, message="quote_message_id is invalid!", count=1)
    )
    b.fc.add_agent_message(b.conversation_of(LAN), "Dạ còn ạ", in_reply_to={"message_id": asked["id"]})
    b.settle()
    (reply,) = b.sent_records(LAN)
    assert reply["text"] == "Dạ còn ạ" and "quote" not in reply
    assert b.notes() == []
    assert b.zalo.requests["/v3.0/oa/message/cs"] == 2  # the quoted try, then the reply alone: once


@on(SIMS_IN_PROCESS)
def test_a_quote_under_the_feeds_id_refused_is_offered_under_the_conversation_listings(bridge):
    b = bridge
    b.zalo.modes.update({"two_ids": True, "quote_ids": "conversation"})
    b.zalo.add_customer_message(LAN, "Lan", text="Áo này còn size M không?")
    b.cycle()  # a new customer: the feed, then their conversation listing, which shows the other id
    asked = b.customer_messages(LAN)[0]
    b.fc.add_agent_message(b.conversation_of(LAN), "Dạ còn ạ", in_reply_to={"message_id": asked["id"]})
    b.settle()
    (reply,) = b.sent_records(LAN)
    assert reply["quote"] == conversation_id_of(b.zalo.messages[0]["message_id"])
    assert b.zalo.requests["/v3.0/oa/message/cs"] == 2  # the feed's id, then the listing's


def test_a_refusal_the_quote_does_not_cause_is_not_sent_again_without_it(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="Áo này còn size M không?")
    b.cycle()
    asked = b.customer_messages(LAN)[0]
    b.zalo.faults.append(
        Fault("/v3.0/oa/message/cs", "zalo_error", code=-213, message="User has not followed the OA", count=1)
    )
    b.fc.add_agent_message(b.conversation_of(LAN), "Dạ còn ạ", in_reply_to={"message_id": asked["id"]})
    b.settle(rounds=2)
    assert b.sent_records(LAN) == []
    assert b.zalo.requests["/v3.0/oa/message/cs"] == 1  # no doomed second request without the quote
    assert any("not followed the OA" in t for t in texts(b.notes()))


def unanswered(b) -> dict:
    return status.collect(b.store, now=b.clock(), unanswered_minutes=30)["unanswered"]


def gauge(b) -> float:
    registry = CollectorRegistry()
    registry.register(metrics.StoreCollector(b.store, clock=b.clock, unanswered_minutes=30))
    shown = generate_latest(registry).decode()
    line = next(line for line in shown.splitlines() if line.startswith("zfsync_unanswered_customers "))
    return float(line.split()[1])


def test_the_unanswered_count_rises_after_the_threshold_and_a_reply_or_an_assignment_clears_it(bridge):
    b = bridge
    b.zalo.add_customer_message(LAN, "Lan", text="Có ai không?")
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="alo")
    b.cycle()
    assert unanswered(b)["count"] == 0  # not yet 30 minutes
    b.clock.advance(31 * 60)
    b.cycle()
    waiting = unanswered(b)
    assert waiting["count"] == 2 and waiting["longest_seconds"] >= 31 * 60 and gauge(b) == 2
    assert "unanswered 2 customer(s) waiting over 30 min" in status_text.render(status.collect(b.store, now=b.clock()))
    b.fc.add_agent_message(b.conversation_of(LAN), "Dạ shop đây ạ")
    b.settle(rounds=3, step=300)  # the conversation is polled again (every 10 min once quiet)
    assert b.sent_to(LAN) == ["Dạ shop đây ạ"]
    assert unanswered(b)["count"] == 1
    b.fc.assign(b.conversation_of(KHANH))  # taken in the inbox: FreshChat writes no reply
    b.clock.advance(301)  # the waiting customer's assignee is asked again at most every 5 minutes
    b.cycle()
    assert unanswered(b)["count"] == 0 and gauge(b) == 0
    # Lan writes again and waits: counted again.
    b.zalo.add_customer_message(LAN, "Lan", text="Còn một câu nữa")
    b.cycle()
    b.clock.advance(31 * 60)
    b.cycle()
    assert unanswered(b)["count"] == 1


VIP_CHANNEL = "7d0c1e7a-chan-0000-0000-00000000v1p0"
WARRANTY_CHANNEL = "7d0c1e7a-chan-0000-0000-0000000bh000"


def test_new_conversations_are_routed_by_tag_and_by_keyword_and_the_rest_go_to_the_default(bridge):
    b = bridge
    b.fc.add_channel(VIP_CHANNEL, "Khách VIP")
    b.fc.add_channel(WARRANTY_CHANNEL, "Bảo hành")
    routes = (Route(VIP_CHANNEL, group_id=GROUP_ID, tag="VIP"), Route(WARRANTY_CHANNEL, keyword="bảo hành"))
    b.settings = replace(b.settings, routes=routes)
    b.restart()
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")  # tagged VIP by the OA before writing
    b.zalo.users[LAN]["tags"] = ["VIP"]
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="Máy em cần BẢO HÀNH")
    b.zalo.add_customer_message("3003", "Hoa", text="hỏi giá")
    b.cycle()
    by_customer = customers_channels(b)
    assert by_customer == {
        f"zalo-{LAN}": (VIP_CHANNEL, GROUP_ID),
        f"zalo-{KHANH}": (WARRANTY_CHANNEL, None),
        "zalo-3003": (CHANNEL_ID, None),
    }


def customers_channels(b) -> dict[str, tuple[str, str | None]]:
    state = b.fc_state()
    channels = {c["user_id"]: (c["channel_id"], c.get("assigned_group_id") or None) for c in state["conversations"]}
    return {u["reference_id"]: channels[u["id"]] for u in state["users"] if u["id"] in channels}


def route_problems(b) -> list[dict[str, str]]:
    return [p for p in status.collect(b.store, b.clock())["problems"] if "[[route]]" in p["what"]]


def test_a_route_to_a_channel_or_group_the_account_lacks_is_skipped_and_its_customers_reach_the_desk(bridge):
    b = bridge
    routes = (Route("does-not-exist", keyword="bảo hành"), Route(CHANNEL_ID, group_id="no-such-group", tag="VIP"))
    b.settings = replace(b.settings, routes=routes)
    b.restart()
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="Máy em cần bảo hành")
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.zalo.users[LAN]["tags"] = ["VIP"]
    b.settle(rounds=3)
    assert customers_channels(b) == {f"zalo-{KHANH}": (CHANNEL_ID, None), f"zalo-{LAN}": (CHANNEL_ID, None)}
    assert status.collect(b.store, b.clock())["failed"] == 0
    notes_by_conversation = {
        c["conversation_id"]: [t for t in texts(c["messages"]) if "[[route]]" in t]
        for c in b.fc_state()["conversations"]
    }
    assert sorted(len(found) for found in notes_by_conversation.values()) == [1, 1]
    problems = route_problems(b)
    assert len(problems) == 2 and "does-not-exist" in problems[0]["what"] and "no-such-group" in problems[1]["what"]
    assert b.fc.requests.get("/v2/conversations", 0) == 2  # no doomed request into the wrong channel


def routed_to_warranty(b) -> None:
    """The account has a warranty channel, and a customer writing "bảo hành" is routed there."""
    b.fc.add_channel(WARRANTY_CHANNEL, "Bảo hành")
    b.settings = replace(b.settings, routes=(Route(WARRANTY_CHANNEL, keyword="bảo hành"),))
    b.restart()


def test_a_route_whose_channel_is_deleted_later_falls_back_to_the_default_channel(bridge):
    b = bridge
    routed_to_warranty(b)
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    assert route_problems(b) == []
    b.fc.remove_channel(WARRANTY_CHANNEL)  # deleted in FreshChat
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="Máy em cần BẢO HÀNH")
    b.settle(rounds=3)
    assert customers_channels(b)[f"zalo-{KHANH}"] == (CHANNEL_ID, None)
    assert texts(b.customer_messages(KHANH)) == ["Máy em cần BẢO HÀNH"]
    (note,) = [t for t in texts(b.notes()) if "[[route]] 1" in t]
    assert "refused" in note and WARRANTY_CHANNEL in note
    (problem,) = route_problems(b)
    assert "refused" in problem["what"]
    # The next customer for that route is not sent into the refusal again within the hour.
    before = b.fc.requests.get("/v2/conversations", 0)
    b.zalo.add_customer_message("3003", "Hoa", text="bảo hành giúp em")
    b.settle(rounds=3)
    assert b.fc.requests.get("/v2/conversations", 0) == before + 1


def check(bridge, tmp_path, monkeypatch, routes: str) -> int:
    """`zfsync check` on a config for the bridge's simulators with these [[route]] tables."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[zalo]\napp_id = "sim-app"\napi_url = "{bridge.zalo_url}"\noauth_url = "{bridge.zalo_url}"\n'
        "allow_insecure_http = true\n"
        f'[freshchat]\napi_url = "{bridge.fc_url}"\nchannel_id = "{CHANNEL_ID}"\nallow_insecure_http = true\n'
        f'[store]\npath = "{bridge.settings.store_path}"\n' + routes,
        encoding="utf-8",
    )
    monkeypatch.setenv("ZFSYNC_ZALO_APP_SECRET", "sim-secret")
    monkeypatch.setenv("ZFSYNC_FRESHCHAT_API_KEY", "sim-key")
    return cli.main(["--config", str(config), "check"])


@on(SIMS)
def test_check_lists_the_routes_and_names_a_channel_or_group_the_account_lacks(bridge, tmp_path, monkeypatch, capsys):
    routes = (
        f'[[route]]\ntag = "VIP"\nchannel_id = "{CHANNEL_ID}"\ngroup_id = "{GROUP_ID}"\n'
        '[[route]]\nkeyword = "bảo hành"\nchannel_id = "no-such-channel"\ngroup_id = "no-such-group"\n'
    )
    assert check(bridge, tmp_path, monkeypatch, routes) == 1
    out = capsys.readouterr().out
    assert f"route 1: tag 'VIP' -> channel {CHANNEL_ID}, group {GROUP_ID}" in out
    assert "[[route]] 2 channel_id no-such-channel is not among the channels" in out
    assert "[[route]] 2 group_id no-such-group is not among the account's groups" in out
    assert "[[route]] 1" not in out


@on(SIMS)
def test_check_finds_a_routes_channel_and_group_past_the_first_page(bridge, tmp_path, monkeypatch, capsys):
    bridge.fc.channels.extend(channel_object(f"chan-{n:03}", f"Kênh {n}") for n in range(70))
    bridge.fc.groups.extend({"id": f"group-{n:03}", "name": f"Nhóm {n}", "description": ""} for n in range(60))
    assert (
        check(
            bridge, tmp_path, monkeypatch, '[[route]]\ntag = "VIP"\nchannel_id = "chan-069"\ngroup_id = "group-059"\n'
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "route 1: tag 'VIP' -> channel chan-069, group group-059" in out and "[[route]] 1" not in out
    assert bridge.fc.requests["/v2/channels"] == 2 and bridge.fc.requests["/v2/groups"] == 2  # 50 a page


def test_a_1990_character_agent_name_gives_at_most_two_sends_for_a_2000_character_reply(bridge):
    b = bridge
    b.reconfigure(agent_signature="— {agent_first_name} ({agent_name}), CSKH")
    b.fc.set_agent(AGENT_ID, "T" * 1990, "{agent_name}\nTrần")
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    b.fc.add_agent_message(b.conversation_of(LAN), "Dạ. " * 500)
    b.settle()
    sent = b.sent_to(LAN)
    assert 1 <= len(sent) <= 2 and all(len(text) <= 2000 for text in sent)
    signature = sent[-1].rsplit("\n", 1)[-1]
    assert signature.startswith("— T") and len(signature) <= 200 and "{agent_name}" not in signature


def test_a_message_after_a_resolve_reopens_within_the_hours_and_opens_a_new_routed_conversation_after(bridge):
    b = bridge
    routed_to_warranty(b)
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    first = b.conversation_of(LAN)
    b.fc.set_resolved(first, True)
    b.settle(rounds=3)
    b.clock.advance(23 * 3600)  # within the 24 hours: the same conversation, open again
    b.zalo.add_customer_message(LAN, "Lan", text="cho em hỏi thêm")
    b.settle(rounds=3)
    assert b.conversation_of(LAN) == first and len(b.fc_state()["conversations"]) == 1
    assert b.conversation(first)["status"] != "resolved"
    b.fc.set_resolved(first, True)
    b.settle(rounds=8, step=300)
    b.clock.advance(25 * 3600)  # past them: a new conversation, routed as a first message is
    b.zalo.add_customer_message(LAN, "Lan", text="máy em cần bảo hành")
    b.settle(rounds=3)
    second = b.conversation_of(LAN)
    assert second != first and b.conversation(second)["channel_id"] == WARRANTY_CHANNEL
    assert texts(b.conversation(second)["messages"])[0] == "máy em cần bảo hành"
    (note,) = [t for t in texts(b.conversation(second)["messages"]) if "follows" in t]
    assert first in note
    assert texts(b.customer_messages(LAN)).count("máy em cần bảo hành") == 1


def test_after_resolve_new_always_opens_a_new_conversation(bridge):
    b = bridge
    b.reconfigure(after_resolve="new")
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    first = b.conversation_of(LAN)
    b.fc.set_resolved(first, True)
    b.settle(rounds=3)
    b.clock.advance(60)
    b.zalo.add_customer_message(LAN, "Lan", text="quên hỏi")
    b.settle(rounds=3)
    assert b.conversation_of(LAN) != first and len(b.fc_state()["conversations"]) == 2
