"""A Zalo permission group the OA did not grant the app (-223, as Zalo's code table words it) stops only what
needs it: customers' messages and agents' replies cross as before, `zfsync status` shows one problem line,
the agent gets one note for a command that needed it, and the capability comes back with the permission."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import SIMS_IN_PROCESS, on
from zfsync.cli import check
from zfsync.cli import store as cli_store
from zfsync.domain import Route, SideHealth
from zfsync.runtime import status
from zfsync.runtime.app import build_clients
from zfsync.sides.zalo import permissions
from zfsync.sides.zalo.client import ZaloClient
from zfsync.sim.freshchat import CHANNEL_ID
from zfsync.sim.inprocess import session_for

LAN = "9007199254740993123"
HOUR = 3600.0
VIP_CHANNEL = "7d0c1e7a-chan-0000-0000-00000000v1p0"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def permission_problems(b) -> list[dict[str, str]]:
    return [p for p in status.collect(b.store, b.clock())["problems"] if "permission group" in p["what"]]


def zalo_requests(b, path: str) -> int:
    return b.zalo.requests.get(path, 0)


def crosses_both_ways(b, text: str, reply: str) -> None:
    b.zalo.add_customer_message(LAN, "Lan", text=text)
    b.cycle()
    assert texts(b.customer_messages(LAN))[-1] == text
    b.fc.add_agent_message(b.conversation_of(LAN), reply)
    b.settle(rounds=3)
    assert b.sent_to(LAN)[-1] == reply
    assert b.store.health()["zalo"]["state"] == SideHealth.OK


@pytest.mark.parametrize(
    "denied", ["/v3.0/oa/user/detail", "/v3.0/oa/user/getlist", "/v2.0/oa/tag/tagfollower", "/v2.0/oa/getoa"]
)
@on(SIMS_IN_PROCESS)
def test_a_refused_permission_holds_no_message_and_shows_one_problem(bridge, denied):
    b = bridge
    b.zalo.modes.denied = denied
    crosses_both_ways(b, "chào shop", "Dạ shop chào chị")
    # What needs the group is tried: the profile refresh, a command, the feed's catch-up.
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo tag VIP", message_type="private")
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo info", message_type="private")
    b.settle(rounds=3)
    b.clock.advance(61)
    b.cycle()
    crosses_both_ways(b, "còn hàng không?", "Dạ còn ạ")
    problems = permission_problems(b)
    assert len(problems) == 1, problems
    assert "Quyền quản lý thông tin OA" in problems[0]["what"]
    assert "developers.zalo.me/app/sim-app/oa/settings" in problems[0]["fix"]
    # Each refused call was made once: the rest were refused from memory, without a request.
    assert zalo_requests(b, denied) == 1
    # The permission is granted: within the hour every capability is back, and the problem goes.
    b.zalo.modes.denied = ""
    b.zalo.users[LAN]["tags"] = ["VIP"]
    b.clock.advance(HOUR)
    b.cycle()
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo tag Quen", message_type="private")
    b.settle(rounds=12, step=60)  # a conversation quiet for an hour is polled less often
    assert "Quen" in b.zalo.users[LAN]["tags"]
    b.clock.advance(HOUR)
    b.cycle()
    assert permission_problems(b) == []


@on(SIMS_IN_PROCESS)
def test_a_command_that_needs_a_refused_permission_gets_one_note_that_says_so(bridge):
    b = bridge
    b.zalo.modes.denied = "/v2.0/oa/tag/tagfollower,/v2.0/oa/getoa"
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    conversation = b.conversation_of(LAN)
    b.fc.add_agent_message(conversation, "/zalo tag VIP", message_type="private")
    b.fc.add_agent_message(conversation, "/zalo info", message_type="private")
    b.settle(rounds=3)
    notes = [t for t in texts(b.notes()) if "could not do" in t]
    assert len(notes) == 2 and all("Quyền quản lý thông tin OA" in t for t in notes)
    assert b.zalo.users[LAN].get("tags", []) == [] and not [s for s in b.zalo.sent if "card" in s]
    assert b.store.health()["zalo"]["state"] == SideHealth.OK


@on(SIMS_IN_PROCESS)
def test_routes_by_tag_and_oa_without_the_permission_still_open_the_conversation(bridge):
    b = bridge
    b.settings = replace(b.settings, routes=(Route(VIP_CHANNEL, tag="VIP"), Route(VIP_CHANNEL, oa="1")))
    b.fc.channels.append({**b.fc.channels[0], "id": VIP_CHANNEL, "name": "VIP"})
    b.restart()
    b.zalo.modes.denied = "/v3.0/oa/user/detail,/v2.0/oa/getoa"
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    assert texts(b.customer_messages(LAN)) == ["chào shop"]
    (conversation,) = b.fc.conversations.values()
    assert conversation["channel_id"] == CHANNEL_ID  # no route could be matched: the default channel


@on(SIMS_IN_PROCESS)
def test_a_restart_remembers_the_refusal_and_a_reauthorisation_forgets_it(bridge):
    b = bridge
    b.zalo.modes.denied = "/v2.0/oa/getoa"
    b.zalo.add_customer_message(LAN, "Lan", text="chào shop")
    b.cycle()
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo info", message_type="private")
    b.settle(rounds=3)
    assert zalo_requests(b, "/v2.0/oa/getoa") == 1 and len(permission_problems(b)) == 1
    b.restart()
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo info", message_type="private")
    b.settle(rounds=3)
    assert zalo_requests(b, "/v2.0/oa/getoa") == 1  # remembered across the restart: not asked again
    assert len([t for t in texts(b.notes()) if "could not do" in t]) == 2
    b.zalo.modes.denied = ""
    cli_store.forget_permission_refusals(b.store)  # what `zfsync auth zalo` does once it stored new tokens
    assert permission_problems(b) == []
    b.fc.add_agent_message(b.conversation_of(LAN), "/zalo info", message_type="private")
    b.settle(rounds=3)
    assert [s for s in b.zalo.sent if "card" in s]  # asked again at once, and sent


@on(SIMS_IN_PROCESS)
def test_check_lists_the_groups_the_app_was_granted(bridge, capsys):
    b = bridge
    b.zalo.modes.denied = "/v2.0/oa/getoa"
    clients = build_clients(b.settings, b.store, b.clock, session_for(b.zalo, b.zalo_url), None)
    assert isinstance(clients.zalo, ZaloClient)
    assert check.check_permissions(b.settings, b.store, clients.zalo) == 1
    out = capsys.readouterr().out
    assert "granted      Quyền gửi tin nhắn" in out and "granted      Quyền quản lý tin nhắn người dùng" in out
    assert "NOT GRANTED  Quyền quản lý thông tin OA" in out
    assert permissions.SETTINGS_URL.format(app_id="sim-app") in out
