"""One contract per port (`zfsync.sync.ports`), run against three implementations of it:

- ``fake``: the in-memory fake (`zfsync.sim.fakes`), which tests of the core may use instead of HTTP;
- ``simulator``: the real client against the in-process simulator;
- ``recorded``: the real client against payloads recorded from the real service (tests/contract/recorded/),
  replayed with requests-mock. A recording is one fixed answer, so what needs a world that changes
  (a message written, a send listed) is checked on the two live implementations only.

Each test says what the sync core relies on, whatever stands behind the port.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests_mock as requests_mock_module

from zfsync.domain import FcNewUser, FcOutgoing, Media, TextPart, ZaloTokens
from zfsync.domain.errors import ConversationNotLatest
from zfsync.sides.freshchat.client import FreshChatClient
from zfsync.sides.quota import Quota
from zfsync.sides.zalo.client import ZaloClient
from zfsync.sides.zalo.oauth import TokenKeeper, ZaloOAuth
from zfsync.sim.fakes import FakeFreshChat, FakeZalo
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.inprocess import session_for
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store
from zfsync.sync.ports import FreshChatSide, ZaloSide

RECORDED = Path(__file__).parent / "recorded"
ZALO, OAUTH, FC = "https://openapi.zalo.me", "https://oauth.zaloapp.com", "https://acme.freshchat.com"
RECORDED_USER = "3103741396296991610"  # the customer of the 2025 live recordings
PNG = Media(bytes.fromhex("89504e470d0a1a0a"), "image/png", "a.png")
PNG_URL = "https://developers.zalo.me/web/static/zalo.png"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


@dataclass
class ZaloWorld:
    port: ZaloSide
    user: str
    write: Callable[[str, str], None] | None  # a customer writes (None: a recording, which cannot change)
    share: Callable[[str, dict[str, Any]], None] | None = None  # a customer shares details with the OA
    live: bool = field(init=False)

    def __post_init__(self) -> None:
        self.live = self.write is not None


@dataclass
class FreshChatWorld:
    port: FreshChatSide
    live: bool
    mock: Any = None  # the recorded world's requests-mock, for a test that replays one more recording


@pytest.fixture(params=["fake", "simulator", "recorded"])
def zalo_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ZaloWorld]:
    user = RECORDED_USER
    if request.param == "fake":
        fake = FakeZalo()

        def share_with_fake(u: str, shared: dict[str, Any]) -> None:
            fake.users[u]["shared_info"] = shared

        write = lambda u, text: (fake.add_customer_message(u, "Anh", text=text), None)[1]  # noqa: E731
        yield ZaloWorld(fake, user, write, share_with_fake)
        return
    store = Store.open(tmp_path / "z.db")
    if request.param == "simulator":
        sim = ZaloSim()
        store.save_tokens(ZaloTokens(*sim.mint_tokens(), 90_000), sim.now())
        session = session_for(sim, ZALO)
        client = ZaloClient(ZALO, TokenKeeper(ZaloOAuth(OAUTH, "app", "s", session), store, sim.now), session)
        sim_write = lambda u, text: (sim.add_customer_message(u, "Anh", text=text), None)[1]  # noqa: E731

        def share_with_sim(u: str, shared: dict[str, Any]) -> None:
            sim.users[u]["shared_info"] = shared

        yield ZaloWorld(client, user, sim_write, share_with_sim)
    else:
        store.save_tokens(ZaloTokens("access", "refresh", 90_000), 1_000.0)
        with requests_mock_module.Mocker() as mock:
            mock.get(f"{ZALO}/v2.0/oa/listrecentchat", json=recorded("zalo/listrecentchat_live_2025.json"))
            mock.get(f"{ZALO}/v2.0/oa/conversation", json=recorded("zalo/conversation_live_2025.json"))
            mock.post(f"{ZALO}/v3.0/oa/message/cs", json=recorded("zalo/message_cs_doc.json"))
            mock.get(f"{ZALO}/v3.0/oa/user/detail", json=recorded("zalo/user_detail_live_2025.json"))
            mock.get(f"{ZALO}/v3.0/oa/user/getlist", json=recorded("zalo/user_getlist_live_2025.json"))
            mock.post(f"{ZALO}/v2.0/oa/upload/image", json=recorded("zalo/upload_image_doc.json"))
            by_owner = {"OA": recorded("zalo/quota_message_oa_doc.json")}
            mock.post(
                f"{ZALO}/v3.0/oa/quota/message",
                json=lambda request, _: by_owner.get(
                    request.json().get("quota_owner"), recorded("zalo/quota_message_user_doc.json")
                ),
            )
            for tag_path in ("tagfollower", "rmfollowerfromtag"):
                mock.post(f"{ZALO}/v2.0/oa/tag/{tag_path}", json=recorded("zalo/tag_follower_doc.json"))
            client = ZaloClient(ZALO, TokenKeeper(ZaloOAuth(OAUTH, "app", "s"), store, lambda: 2_000.0))
            yield ZaloWorld(client, user, None)
    store.close()


@pytest.fixture(params=["fake", "simulator", "recorded"])
def freshchat_world(request: pytest.FixtureRequest) -> Iterator[FreshChatWorld]:
    if request.param == "fake":
        yield FreshChatWorld(FakeFreshChat(), live=True)
    elif request.param == "simulator":
        # A budget no test reaches: the contract is about answers, not pacing (the quota's own tests are that).
        unpaced = Quota("freshchat", 100_000)
        yield FreshChatWorld(FreshChatClient(FC, "sim-key", session_for(FreshChatSim(), FC), quota=unpaced), live=True)
    else:
        with requests_mock_module.Mocker() as mock:
            mock.get(f"{FC}/v2/users", json=recorded("freshchat/users_reference_id.json"))
            mock.post(f"{FC}/v2/conversations", json=recorded("freshchat/conversation_pipedream.json"))
            mock.post(
                f"{FC}/v2/conversations/{recorded('freshchat/conversation_pipedream.json')['conversation_id']}/messages",
                json=recorded("freshchat/message_user_pipedream.json"),
            )
            mock.get(f"{FC}/v2/conversations/c-1/messages", json=recorded("freshchat/messages_filter_jaya.json"))
            mock.post(f"{FC}/v2/images/upload", json=recorded("freshchat/image_upload_swagger.json"))
            yield FreshChatWorld(FreshChatClient(FC, "KEY"), live=False, mock=mock)


# --- Zalo -------------------------------------------------------------------------------------------


def test_zalo_the_feed_lists_newest_first_with_ids_and_times(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "một")
        zalo_world.write(zalo_world.user, "hai")
    rows = zalo_world.port.recent_messages(0)
    assert rows and all(r.message_id and r.user_id and r.time_ms > 0 for r in rows)
    assert [r.key for r in rows] == sorted((r.key for r in rows), reverse=True) or len(rows) == 1
    if zalo_world.live:
        assert [r.text for r in rows[:2]] == ["hai", "một"] and not rows[0].from_oa


def test_zalo_a_users_conversation_holds_that_user_only_whoever_wrote(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "alo")
        zalo_world.write("84900000000000000001", "someone else")
        zalo_world.port.send_text(zalo_world.user, "dạ shop nghe")
    rows = zalo_world.port.conversation(zalo_world.user, 0)
    assert rows and {r.user_id for r in rows} == {zalo_world.user}
    times = [r.time_ms for r in rows]
    assert times == sorted(times, reverse=True)
    if zalo_world.live:
        assert [(r.from_oa, r.text) for r in rows[:2]] == [(True, "dạ shop nghe"), (False, "alo")]


def test_zalo_a_send_answers_the_id_its_message_is_listed_under(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "alo")
    sent = zalo_world.port.send_text(zalo_world.user, "chào bạn")
    assert isinstance(sent.message_id, str) and sent.message_id
    # What it was paid from: the free replies within 48 h of the customer's message, here.
    assert sent.quota is not None and sent.quota.kind == "reply"
    if zalo_world.live:
        assert zalo_world.port.send_text(zalo_world.user, "chào bạn").message_id != sent.message_id  # never reused
        assert sent.message_id in [r.message_id for r in zalo_world.port.conversation(zalo_world.user, 0)]


def test_zalo_the_card_that_asks_for_details_is_a_message_of_the_oa(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "alo")
    sent = zalo_world.port.send_info_request(zalo_world.user, "Chia sẻ thông tin", "Xin số điện thoại", PNG_URL)
    assert sent.message_id
    if zalo_world.live:
        listed = zalo_world.port.conversation(zalo_world.user, 0)[0]
        assert listed.message_id == sent.message_id and listed.from_oa


def test_zalo_a_users_last_interaction_and_free_replies(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "alo")
    last, quota = zalo_world.port.message_quota(zalo_world.user)
    assert last > 0 and quota is not None and quota.kind == "reply"
    assert quota.total and quota.remain is not None and 0 <= quota.remain <= quota.total
    if zalo_world.live:
        assert last >= zalo_world.port.conversation(zalo_world.user, 0)[0].time_ms


def test_zalo_the_oas_package_lists_its_consultation_messages(zalo_world):
    packages = zalo_world.port.package_quota()
    (package,) = [p for p in packages if p.product == "cs"]
    assert package.kind == "sub_quota" and 0 <= package.remain <= package.total and package.valid_through


def test_zalo_tags_set_on_a_follower_show_on_their_profile(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "alo")
    zalo_world.port.tag_follower(zalo_world.user, "VIP")
    zalo_world.port.tag_follower(zalo_world.user, "Quận 1")
    zalo_world.port.untag_follower(zalo_world.user, "Quận 1")
    if zalo_world.live:
        assert zalo_world.port.user_profile(zalo_world.user).tags == ("VIP",)


def test_zalo_what_a_customer_shared_shows_on_their_profile_and_nothing_else(zalo_world):
    if zalo_world.write and zalo_world.share:
        zalo_world.write(zalo_world.user, "alo")
        assert zalo_world.port.user_profile(zalo_world.user).shared == ()
        zalo_world.share(zalo_world.user, {"phone": "84901234567", "city": "Hồ Chí Minh"})
        assert dict(zalo_world.port.user_profile(zalo_world.user).shared) == {
            "phone": "84901234567",
            "city": "Hồ Chí Minh",
        }
    else:  # the live recording: the phone as the number 0, everything else blank: nothing shared
        assert zalo_world.port.user_profile(zalo_world.user).shared == ()


def test_zalo_an_upload_answers_a_token_that_a_send_takes(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "alo")
    token = zalo_world.port.upload_image(PNG)
    assert isinstance(token, str) and token
    assert zalo_world.port.send_image(zalo_world.user, token)


def test_zalo_a_profile_and_the_users_who_wrote(zalo_world):
    if zalo_world.write:
        zalo_world.write(zalo_world.user, "alo")
    profile = zalo_world.port.user_profile(zalo_world.user)
    assert profile.user_id == zalo_world.user and profile.display_name
    ids, total = zalo_world.port.interacted_users("L7D", 0)
    assert zalo_world.user in ids and total >= len(ids)


# --- FreshChat --------------------------------------------------------------------------------------


def test_freshchat_a_user_is_found_by_its_reference_id_once_made(freshchat_world):
    port = freshchat_world.port
    reference = f"zalo-{RECORDED_USER}"
    if freshchat_world.live:
        assert port.find_user(reference) is None
        made = port.create_user(FcNewUser(reference, "Anh Zalo", properties=(("external_user_provider", "zalo"),)))
        assert made.id and made.reference_id == reference
    found = port.find_user(reference)
    assert found is not None and found.id and found.reference_id == reference


def test_freshchat_a_conversation_opens_with_its_first_message_and_takes_posts(freshchat_world):
    port = freshchat_world.port
    user = port.create_user(FcNewUser("zalo-1", "A")).id if freshchat_world.live else "d108c12a"
    first = FcOutgoing((TextPart("chào shop"),))
    conversation, first_id = port.create_conversation(CHANNEL_ID, user, first)
    assert conversation
    posted = port.post_message(conversation, user, FcOutgoing((TextPart("hello world"),)))
    assert isinstance(posted, str) and posted
    if freshchat_world.live:
        assert first_id and posted != first_id
        (page,) = list(port.message_pages(conversation))
        assert [m.id for m in page] == [posted, first_id]  # newest first
        assert [m.text() for m in page] == ["hello world", "chào shop"] and page[0].actor_type == "user"


def test_freshchat_pages_are_newest_first_and_carry_every_message(freshchat_world):
    port = freshchat_world.port
    if freshchat_world.live:
        user = port.create_user(FcNewUser("zalo-2", "B")).id
        conversation, _ = port.create_conversation(CHANNEL_ID, user, FcOutgoing((TextPart("0"),)))
        for n in range(1, 60):  # more than one page of 50
            port.post_message(conversation, user, FcOutgoing((TextPart(str(n)),)))
    else:
        conversation = "c-1"
    messages = [m for page in port.message_pages(conversation) for m in page]
    assert messages and all(m.id and m.conversation_id for m in messages)
    times = [m.created_time for m in messages]
    assert times == sorted(times, reverse=True)
    if freshchat_world.live:
        assert [m.text() for m in messages] == [str(n) for n in range(59, -1, -1)]


def test_freshchat_a_user_post_into_an_older_conversation_is_refused_as_not_the_latest(freshchat_world):
    port = freshchat_world.port
    if freshchat_world.live:
        user = port.create_user(FcNewUser("zalo-3", "C")).id
        older, _ = port.create_conversation(CHANNEL_ID, user, FcOutgoing((TextPart("1"),)))
        port.create_conversation(CHANNEL_ID, user, FcOutgoing((TextPart("2"),)))
    else:
        user, older = "d108c12a", "older"
        refused = recorded("freshchat/error_not_latest.json")
        # The recorded refusal of the user's post, then the recorded answer to the agent's note.
        freshchat_world.mock.post(
            f"{FC}/v2/conversations/older/messages",
            [{"status_code": 400, "json": refused}, {"json": recorded("freshchat/message_user_pipedream.json")}],
        )
    with pytest.raises(ConversationNotLatest):
        port.post_message(older, user, FcOutgoing((TextPart("3"),)))
    note = FcOutgoing((TextPart("note"),), actor_type="agent", message_type="private")
    assert port.post_message(older, user, note)  # an agent's private note may go anywhere


def test_freshchat_an_uploaded_image_answers_the_url_a_part_points_at(freshchat_world):
    url = freshchat_world.port.upload_image(PNG)
    assert url.startswith("http")
