"""The group chat (GMF) contract (recorded/gmf/, README names each source): the real client reads every
recorded form and writes the recorded request bodies; the simulator answers with the recorded fields and
types in each of its modes; the fake, the simulator and the client behind the port tell one story."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.contract.test_recorded import assert_recorded_shape, recorded
from tests.contract.test_recorded import store as store  # the fixture: a store holding tokens
from zfsync.domain import Media, ZaloGroup, ZaloTokens, group_key
from zfsync.domain.errors import PermanentError, PermissionMissing
from zfsync.sides.zalo.client import ZaloClient
from zfsync.sides.zalo.oauth import TokenKeeper, ZaloOAuth
from zfsync.sim.fakes import FakeZalo
from zfsync.sim.inprocess import session_for
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store
from zfsync.sync.ports import ZaloSide

ZALO = "https://openapi.zalo.me"
OAUTH = "https://oauth.zaloapp.com"
GROUP = "f414c8f76fa586fbdfb4"


def play(zalo: FakeZalo | ZaloSim, gmf: str = "on", mentions: str = "ids") -> None:
    """Set the group chats' modes (`Modes.gmf`, `Modes.group_mentions`) on the fake or the simulator."""
    if isinstance(zalo, FakeZalo):
        zalo.gmf_modes = (gmf, mentions)
    else:
        zalo.modes.update({"gmf": gmf, "group_mentions": mentions})


@pytest.fixture
def client(store: Store) -> ZaloClient:
    return ZaloClient(ZALO, TokenKeeper(ZaloOAuth(OAUTH, "app", "secret"), store, lambda: 2_000.0))


# --- (a) the real client reads the recordings and writes the recorded bodies --------------------------


def test_the_groups_are_read_enabled_and_disabled_with_counts_as_numbers_or_strings(client, requests_mock):
    requests_mock.get(f"{ZALO}/v3.0/oa/group/getgroupsofoa", json=recorded("gmf/getgroupsofoa_doc.json"))
    groups = client.groups()
    assert [(g.group_id, g.name, g.enabled, g.members) for g in groups] == [
        (GROUP, "Tư vấn nha khoa nhân viên", True, 2),
        ("aee702d6bc8455da0c95", "b53", True, 2),
    ]
    assert requests_mock.last_request.qs == {"offset": ["0"], "count": ["10"]}  # plain parameters, no data JSON
    requests_mock.get(f"{ZALO}/v3.0/oa/group/getgroupsofoa", json=recorded("gmf/getgroupsofoa_disabled_composed.json"))
    (disabled,) = client.groups()
    assert (disabled.name, disabled.enabled, disabled.members) == ("b52", False, 2)


def test_a_group_row_stands_under_its_group_with_the_member_who_wrote_it(client, requests_mock):
    requests_mock.get(f"{ZALO}/v3.0/oa/group/listrecentchat", json=recorded("gmf/listrecentchat_group_doc.json"))
    (row,) = client.group_feed(0)
    assert (row.user_id, row.message_id, row.from_oa, row.time_ms, row.text) == (
        group_key(GROUP),
        "acad723242b0faeaa3a5",
        False,
        1696317670193,
        "Hello",
    )
    assert (row.content.author_id, row.content.author_name) == ("8756287263669629130", "Hoàng Trường Phước")
    assert "group_id" not in row.content.extra


def test_a_groups_conversation_holds_members_media_and_the_oas_own_rows(client, requests_mock):
    requests_mock.get(f"{ZALO}/v3.0/oa/group/conversation", json=recorded("gmf/conversation_group_doc.json"))
    photo, own = client.conversation(group_key(GROUP), 0)
    assert requests_mock.last_request.qs == {"group_id": [GROUP], "offset": ["0"], "count": ["10"]}
    assert (photo.type, photo.content.url.endswith(".jpg"), photo.content.author_name) == (
        "photo",
        True,
        "Hoàng Trường Phước",
    )
    assert (own.from_oa, own.text, own.content.author_id) == (True, "m4", "")


@pytest.mark.parametrize("form", ["as_ids", "as_names"])
def test_a_mention_is_read_in_either_form_a_listing_may_give(client, requests_mock, form):
    requests_mock.get(f"{ZALO}/v3.0/oa/group/listrecentchat", json=recorded("gmf/mentions_composed.json")[form])
    (row,) = client.group_feed(0)
    assert row.text.endswith("giúp em với") and row.user_id == group_key(GROUP)


def test_the_sends_to_a_group_write_the_recorded_bodies_and_read_the_answer(client, requests_mock):
    bodies = recorded("gmf/group_message_doc.json")
    requests_mock.post(f"{ZALO}/v3.0/oa/group/message", json=bodies["answer"])
    sent = client.send_text(group_key(GROUP), "hello from Zalo", quote="some-message")  # no quote in groups
    assert requests_mock.last_request.json() == bodies["requests"]["text"]
    assert sent.message_id == "81d74a9cd71d6f473608" and sent.quota is None
    mention = bodies["requests"]["mention"]["message"]["text"]
    client.send_text(group_key(GROUP), mention)
    assert requests_mock.last_request.json() == bodies["requests"]["mention"]
    file_token = bodies["requests"]["file"]["message"]["attachment"]["payload"]["token"]
    client.send_file(group_key(GROUP), file_token)
    assert requests_mock.last_request.json() == bodies["requests"]["file"]
    client.send_image(group_key(GROUP), "bfe458bf64fa8da4d4eb", caption="Zalo đạt 100 triệu người dùng")
    sent_image = requests_mock.last_request.json()["message"]
    recorded_image = bodies["requests"]["image"]["message"]
    assert sent_image["text"] == recorded_image["text"]
    assert sent_image["attachment"]["payload"]["template_type"] == "media"  # attachment_id for url: both named


def test_a_groups_members_are_read_page_by_page_without_the_oa_itself(client, requests_mock):
    listed = recorded("gmf/listmember_doc.json")
    requests_mock.get(f"{ZALO}/v3.0/oa/group/listmember", json=listed)
    assert client.group_members(GROUP) == [("8756287263669629130", "Hoàng Trường Phước")]
    assert requests_mock.last_request.qs == {"group_id": [GROUP], "offset": ["0"], "count": ["10"]}
    member = listed["data"]["members"][1]
    people = [dict(member, user_id=str(n), name=f"Khách {n}") for n in range(14)]
    pages = [
        {**listed, "data": {**listed["data"], "total": 15, "members": [listed["data"]["members"][0], *people[:9]]}}
    ]
    pages.append({**listed, "data": {**listed["data"], "total": 15, "members": people[9:]}})
    requests_mock.get(f"{ZALO}/v3.0/oa/group/listmember", [{"json": p} for p in pages])
    assert [uid for uid, _ in client.group_members(GROUP)] == [str(n) for n in range(14)]


def test_the_group_assets_are_asked_of_the_oa_and_name_the_group_each_serves(client, requests_mock):
    quota = recorded("gmf/quota_group_doc.json")
    requests_mock.post(f"{ZALO}/v3.0/oa/quota/group", json=quota["answer"])
    (asset,) = client.group_assets()
    assert requests_mock.last_request.json() == {"quota_owner": "OA"}
    assert (asset.product, asset.valid_through, asset.group_id, asset.status) == (
        "gmf10",
        "10/10/2024",
        "group_id",
        "available",
    )


@pytest.mark.parametrize(
    ("name", "code", "advised"),
    [("group_disabled", -237, "package"), ("not_in_group", -403, "no longer"), ("not_verified", -221, "verif")],
)
def test_the_group_refusals_are_permanent_with_advice_for_the_agent(client, requests_mock, name, code, advised):
    requests_mock.post(f"{ZALO}/v3.0/oa/group/message", json=recorded("gmf/errors_doc.json")[name])
    with pytest.raises(PermanentError) as refused:
        client.send_text(group_key(GROUP), "a")
    assert refused.value.code == code and advised in refused.value.advice


def test_a_missing_group_permission_stops_only_the_group_calls(client, requests_mock):
    requests_mock.get(f"{ZALO}/v3.0/oa/group/getgroupsofoa", json=recorded("gmf/errors_doc.json")["not_granted"])
    with pytest.raises(PermissionMissing) as refused:
        client.groups()
    assert refused.value.permission == "groups"
    with pytest.raises(PermissionMissing):  # remembered: asked again only in an hour
        client.group_assets()
    assert requests_mock.call_count == 1


# --- (b) the simulator answers with the recorded shapes -----------------------------------------------


@pytest.fixture
def sim() -> Iterator[tuple[ZaloSim, Any, dict[str, str]]]:
    zalo = ZaloSim()
    zalo.add_group(GROUP, "Tư vấn nha khoa nhân viên", {"8756287263669629130": "Hoàng Trường Phước"})
    yield zalo, session_for(zalo, "http://zalo.sim"), {"access_token": zalo.mint_tokens()[0]}


def test_the_simulator_answers_every_gmf_endpoint_with_recorded_shapes(sim):
    zalo, http, headers = sim
    zalo.add_group_message(GROUP, "8756287263669629130", "Hello")
    zalo.add_group_oa_message(GROUP, "m4")

    def get(path: str, **query: Any) -> Any:
        return http.get(f"http://zalo.sim/v3.0/oa/group/{path}", params=query, headers=headers).json()

    groups = [recorded("gmf/getgroupsofoa_doc.json"), recorded("gmf/getgroupsofoa_disabled_composed.json")]
    assert_recorded_shape(get("getgroupsofoa", offset=0, count=10), groups)
    listings = [recorded("gmf/listrecentchat_group_doc.json"), recorded("gmf/conversation_group_doc.json")]
    assert_recorded_shape(get("listrecentchat", offset=0, count=10), listings)
    assert_recorded_shape(get("conversation", group_id=GROUP, offset=0, count=10), listings)
    body = recorded("gmf/group_message_doc.json")
    answer = http.post("http://zalo.sim/v3.0/oa/group/message", json=body["requests"]["text"], headers=headers)
    assert_recorded_shape(answer.json(), [body["answer"]])
    assert_recorded_shape(get("listmember", group_id=GROUP, offset=0, count=10), [recorded("gmf/listmember_doc.json")])
    quota = recorded("gmf/quota_group_doc.json")
    assets = http.post("http://zalo.sim/v3.0/oa/quota/group", json=quota["request"], headers=headers).json()
    assert_recorded_shape(assets, [quota["answer"]])
    errors = recorded("gmf/errors_doc.json")
    for group_id, expected in (("nope", "not_in_group"),):
        refused = http.post(
            "http://zalo.sim/v3.0/oa/group/message",
            json={"recipient": {"group_id": group_id}, "message": {"text": "a"}},
            headers=headers,
        ).json()
        assert refused == errors[expected]


# --- (c) one story behind the port: fake, simulator -----------------------------------------------


@pytest.fixture(params=["fake", "simulator"])
def world(request: pytest.FixtureRequest, store: Store) -> Iterator[tuple[ZaloSide, Any]]:
    if request.param == "fake":
        fake = FakeZalo()
        yield fake, fake
        return
    sim = ZaloSim()
    store.save_tokens(ZaloTokens(*sim.mint_tokens(), 90_000), sim.now())
    session = session_for(sim, ZALO)
    yield ZaloClient(ZALO, TokenKeeper(ZaloOAuth(OAUTH, "app", "s", session), store, sim.now), session), sim


def test_port_a_members_message_is_listed_in_the_feed_and_its_group_newest_first(world):
    port, steer = world
    steer.add_group(GROUP, "Khách sỉ", {"111": "Lan", "222": "Minh"})
    steer.add_group("other", "Dự án", {"333": "Hòa"})
    steer.add_group_message(GROUP, "111", "một")
    steer.add_group_message("other", "333", "hai")
    steer.add_group_message(GROUP, "222", "ba")
    assert [g for g in port.groups() if g.group_id == GROUP] == [
        ZaloGroup(GROUP, "Khách sỉ", "http://s120.ava.grp.talk.zdn.vn/default", True, "https://zalo.me/g/f414c8f76", 2)
    ]
    assert [(r.user_id, r.text, r.content.author_name) for r in port.group_feed(0)] == [
        (group_key(GROUP), "ba", "Minh"),
        (group_key("other"), "hai", "Hòa"),
        (group_key(GROUP), "một", "Lan"),
    ]
    assert [r.text for r in port.conversation(group_key(GROUP), 0)] == ["ba", "một"]
    assert port.group_members(GROUP) == [("111", "Lan"), ("222", "Minh")]


def test_port_a_send_to_a_group_is_listed_as_the_oas_under_the_id_it_answered(world):
    port, steer = world
    steer.add_group(GROUP, "Khách sỉ", {"111": "Lan"})
    sent = port.send_text(group_key(GROUP), "chào [@111]")
    (listed,) = port.conversation(group_key(GROUP), 0)
    assert (listed.message_id, listed.from_oa, listed.text) == (sent.message_id, True, "chào [@111]")
    token = port.upload_image(Media(b"\x89PNG\r\n\x1a\n", "image/png", "a.png"))
    port.send_image(group_key(GROUP), token)
    assert port.conversation(group_key(GROUP), 0)[0].type == "photo"


@pytest.mark.parametrize("why", [{"status": "disabled"}, {"valid_through": "01/01/2020"}])
def test_port_a_disabled_or_expired_group_refuses_sends_with_237(world, why):
    port, steer = world
    steer.add_group(GROUP, "Khách sỉ", {"111": "Lan"}, **why)
    with pytest.raises(PermanentError) as refused:
        port.send_text(group_key(GROUP), "a")
    assert refused.value.code == -237
    assert [a.valid_through for a in port.group_assets() if a.group_id == GROUP] == [
        why.get("valid_through", "31/12/2099")
    ]


def test_port_a_mention_comes_back_as_sent_or_by_name_as_the_mode_plays(world):
    port, steer = world
    steer.add_group(GROUP, "Khách sỉ", {"111": "Lan"})
    steer.add_group_message(GROUP, "222", "[@111] ơi", name="Minh")
    assert port.group_feed(0)[0].text == "[@111] ơi"
    play(steer, mentions="names")
    assert port.group_feed(0)[0].text == "@Lan ơi"


def test_port_an_oa_without_group_chats_is_refused_on_every_gmf_call(world):
    port, steer = world
    play(steer, gmf="unverified")
    with pytest.raises(PermanentError) as refused:
        port.groups()
    assert refused.value.code == -221
    assert json.dumps(refused.value.advice)
