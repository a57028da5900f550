"""The FreshChat client against payloads shaped as research/freshchat_api.md documents them."""

from __future__ import annotations

import pytest

from zfsync.domain import FcNewUser, FcOutgoing, TextPart
from zfsync.domain.errors import AuthError, ConversationNotLatest, InvalidResponse, PermanentError, RateLimited
from zfsync.sides.freshchat.client import FreshChatClient

API = "https://acme.freshchat.com"
MESSAGE = {  # the keys of a recorded real message (Pipedream's test event)
    "message_parts": [{"text": {"content": "Chào bạn"}}],
    "app_id": "app",
    "actor_id": "agent-1",
    "id": "m-2",
    "channel_id": "ch",
    "conversation_id": "c-1",
    "interaction_id": "1-2",
    "message_type": "normal",
    "actor_type": "agent",
    "created_time": "2026-11-20T10:00:01.123Z",
    "user_id": "u-1",
}


@pytest.fixture
def client():
    return FreshChatClient(API, "KEY")


def test_find_user_matches_reference_id_itself(client, requests_mock):
    mock = requests_mock.get(
        f"{API}/v2/users",
        json={"users": [{"id": "x", "reference_id": "other"}, {"id": "u-1", "reference_id": "zalo-1"}]},
    )
    assert client.find_user("zalo-1").id == "u-1"
    assert mock.last_request.headers["Authorization"] == "Bearer KEY"
    requests_mock.get(f"{API}/v2/users", json={"users": []})
    assert client.find_user("zalo-2") is None


def test_create_user_accepts_201_and_sends_properties(client, requests_mock):
    mock = requests_mock.post(f"{API}/v2/users", status_code=201, json={"id": "u-9", "reference_id": "zalo-9"})
    user = client.create_user(FcNewUser("zalo-9", "Lan Zalo", "https://a/b.jpg", (("external_user_provider", "zalo"),)))
    assert user.id == "u-9"
    assert mock.last_request.json()["properties"] == [{"name": "external_user_provider", "value": "zalo"}]
    assert mock.last_request.json()["avatar"] == {"url": "https://a/b.jpg"}


def test_message_pages_follow_link_href_until_it_is_missing(client, requests_mock):
    older = {**MESSAGE, "id": "m-1", "created_time": "2026-11-20T10:00:00.000Z", "actor_type": "user"}
    requests_mock.get(
        f"{API}/v2/conversations/c-1/messages?page=1&items_per_page=50",
        json={
            "messages": [MESSAGE],
            "link": {"href": "/v2/conversations/c-1/messages?page=2&items_per_page=50", "rel": "next_page"},
        },
    )
    requests_mock.get(f"{API}/v2/conversations/c-1/messages?page=2&items_per_page=50", json={"messages": [older]})
    pages = list(client.message_pages("c-1"))
    assert [[m.id for m in page] for page in pages] == [["m-2"], ["m-1"]]
    first = pages[0][0]
    assert (first.actor_type, first.message_type, first.text()) == ("agent", "normal", "Chào bạn")
    assert first.created_time.microsecond == 123000


def test_channels_are_read_from_every_page_the_pagination_names(client, requests_mock):
    def page(items, total_pages):
        return {"channels": items, "pagination": {"total_pages": total_pages, "current_page": 1}, "links": {}}

    mock = requests_mock.get(
        f"{API}/v2/channels",
        [{"json": page([{"id": "a"}], 2)}, {"json": page([{"id": "b"}, "junk"], 2)}],
    )
    assert [c["id"] for c in client.channels()] == ["a", "b"]
    assert [r.qs["page"] for r in mock.request_history] == [["1"], ["2"]]
    # A server that claims endless pages but runs dry stops the reading; one with no pagination is one page.
    requests_mock.get(
        f"{API}/v2/groups",
        [{"json": {"groups": [{"id": "g"}], "pagination": {"total_pages": 10**9}}}, {"json": {"groups": []}}],
    )
    assert [g["id"] for g in client.groups()] == ["g"]
    requests_mock.get(f"{API}/v2/groups", json={"groups": [{"id": "h"}], "pagination": {"total_pages": "2"}})
    assert [g["id"] for g in client.groups()] == ["h"]


def test_html_with_200_is_an_invalid_response(client, requests_mock):
    requests_mock.get(
        f"{API}/v2/users",
        text="<!DOCTYPE html><html>Freshworks login</html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    with pytest.raises(InvalidResponse, match="HTML"):
        client.find_user("zalo-1")


def test_not_the_latest_conversation_is_its_own_error(client, requests_mock):
    requests_mock.post(
        f"{API}/v2/conversations/c-1/messages",
        status_code=400,
        json={
            "code": 400,
            "status": "INVALID_VALUE",
            "message": "User message cannot be sent to conversation which is not the latest conversation of the user",
        },
    )
    with pytest.raises(ConversationNotLatest):
        client.post_message("c-1", "u-1", FcOutgoing((TextPart("hi"),)))


@pytest.mark.parametrize(("status", "error_class"), [(401, AuthError), (403, AuthError), (404, PermanentError)])
def test_client_errors_are_classified(client, requests_mock, status, error_class):
    requests_mock.get(f"{API}/v2/channels", status_code=status, json={"code": status, "status": "X", "message": "m"})
    with pytest.raises(error_class):
        client.channels()


def test_429_honours_retry_after(client, requests_mock):
    requests_mock.get(f"{API}/v2/channels", status_code=429, headers={"Retry-After": "12"}, json={})
    with pytest.raises(RateLimited) as caught:
        client.channels()
    assert caught.value.retry_after == 12


def test_conversation_create_returns_ids_and_user_posts_carry_the_actor(client, requests_mock):
    mock = requests_mock.post(
        f"{API}/v2/conversations", json={"conversation_id": "c-7", "channel_id": "ch", "messages": [{"id": "m-7"}]}
    )
    assert client.create_conversation("ch", "u-1", FcOutgoing((TextPart("hi"),))) == ("c-7", "m-7")
    sent = mock.last_request.json()
    assert sent["users"] == [{"id": "u-1"}]
    assert sent["messages"][0]["actor_type"] == "user" and sent["messages"][0]["actor_id"] == "u-1"


def test_configuration_is_read_wrapped_or_bare(client, requests_mock):
    requests_mock.get(f"{API}/v2/accounts/configuration", json={"configuration": {"account_id": "a"}})
    assert client.account_configuration() == {"account_id": "a"}


def test_file_upload_accepts_the_spellings_seen_in_the_wild(client, requests_mock):
    from zfsync.domain import FilePart, Media

    media = Media(b"%PDF", "application/pdf", "q.pdf")
    requests_mock.post(f"{API}/v2/files/upload", json={"file": {"fileHash": "h1", "download_url": "https://x/q"}})
    assert client.upload_file(media) == FilePart("q.pdf", "https://x/q", "application/pdf", 4, "h1")
    upload = requests_mock.post(
        f"{API}/v2/files/upload",
        json={"file_name": "q.pdf", "file_hash": "h2", "file_content_type": "application/pdf", "file_size": 4},
    )
    assert client.upload_file(media).file_hash == "h2"
    assert b'name="file"; filename="q.pdf"' in upload.last_request.body


def test_a_file_still_being_scanned_is_transient_and_no_answer_is_invalid(client, requests_mock):
    from zfsync.domain import Media
    from zfsync.domain.errors import TransientError

    media = Media(b"%PDF", "application/pdf", "q.pdf")
    requests_mock.post(f"{API}/v2/files/upload", json={"file_hash": "h", "file_security_status": "AV_PENDING"})
    with pytest.raises(TransientError, match="scanned"):
        client.upload_file(media)
    requests_mock.post(f"{API}/v2/files/upload", json={})
    with pytest.raises(InvalidResponse):
        client.upload_file(media)


def test_image_upload_returns_the_url_and_download_sends_the_key_only_home(client, requests_mock):
    from zfsync.domain import Media

    upload = requests_mock.post(f"{API}/v2/images/upload", json={"id": "i", "url": "https://cdn.fc/i.png"})
    assert client.upload_image(Media(b"png", "image/png", "i.png")) == "https://cdn.fc/i.png"
    assert b'name="image"' in upload.last_request.body
    home = requests_mock.get(f"{API}/files/1/a.pdf", content=b"a")
    away = requests_mock.get("https://s3.example.com/a.pdf", content=b"a")
    client.download(f"{API}/files/1/a.pdf", 100)
    client.download("https://s3.example.com/a.pdf", 100)
    assert home.last_request.headers["Authorization"] == "Bearer KEY"
    assert "Authorization" not in away.last_request.headers


def test_reopen_puts_status_new(client, requests_mock):
    put = requests_mock.put(f"{API}/v2/conversations/c-1", json={"conversation_id": "c-1", "status": "new"})
    client.reopen("c-1")
    assert put.last_request.json() == {"status": "new"}
