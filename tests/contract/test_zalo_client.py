"""The Zalo client against payloads shaped as research/zalo_api.md documents them (requests-mock)."""

from __future__ import annotations

import json

import pytest

from zfsync.domain import ZaloTokens
from zfsync.domain.errors import AuthError, InvalidResponse, PermanentError, RateLimited, TransientError
from zfsync.sides.zalo.client import ZaloClient
from zfsync.sides.zalo.oauth import TokenKeeper, ZaloOAuth, new_pkce_pair
from zfsync.store import Store

API = "https://openapi.zalo.me"
OAUTH = "https://oauth.zaloapp.com"
ROW = {  # the official doc example, with an id above 2^53
    "src": 1,
    "time": 1619401853770,
    "type": "text",
    "message": "Xin chào",
    "message_id": "3e1a4c2fbd41f2e1a2c3",
    "from_id": "9007199254740993123",
    "from_display_name": "Minh Khánh",
    "from_avatar": "https://s120.zdn.vn/a.jpg",
    "to_id": "1873920563920114532",
    "to_display_name": "OA",
    "to_avatar": "",
}


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "z.db")
    store.save_tokens(ZaloTokens("access-1", "refresh-1", 90_000), 1_000.0)
    yield store
    store.close()


@pytest.fixture
def client(store):
    clock = lambda: 2_000.0  # noqa: E731 - well within the token's life
    keeper = TokenKeeper(ZaloOAuth(OAUTH, "app", "secret"), store, clock)
    return ZaloClient(API, keeper)


def test_listrecentchat_rows_become_messages(client, requests_mock):
    oa_row = {
        **ROW,
        "src": 0,
        "message_id": "aa",
        "from_id": ROW["to_id"],
        "to_id": ROW["from_id"],
        "to_display_name": "Minh Khánh",
    }
    mock = requests_mock.get(
        f"{API}/v2.0/oa/listrecentchat", json={"data": [ROW, oa_row], "error": 0, "message": "Success"}
    )
    customer, ours = client.recent_messages(offset=20, count=50)
    assert json.loads(mock.last_request.qs["data"][0]) == {"offset": 20, "count": 10}  # never above the cap
    assert mock.last_request.headers["access_token"] == "access-1"
    assert (customer.user_id, customer.from_oa, customer.time_ms, customer.text) == (
        "9007199254740993123",
        False,
        1619401853770,
        "Xin chào",
    )
    assert customer.user_name == "Minh Khánh"
    assert (ours.user_id, ours.from_oa, ours.user_name) == ("9007199254740993123", True, "Minh Khánh")


def test_conversation_sends_the_user_id_as_a_number(client, requests_mock):
    mock = requests_mock.get(f"{API}/v2.0/oa/conversation", json={"data": [], "error": 0, "message": "Success"})
    assert client.conversation("9007199254740993123", offset=0) == []
    assert '"user_id":9007199254740993123' in mock.last_request.qs["data"][0]


@pytest.mark.parametrize(
    ("code", "error_class"),
    [(-32, RateLimited), (-213, PermanentError), (-320, PermanentError), (-200, TransientError), (-205, AuthError)],
)
def test_errors_at_http_200_are_classified(client, requests_mock, code, error_class):
    requests_mock.post(f"{API}/v3.0/oa/message/cs", json={"error": code, "message": "nope"})
    with pytest.raises(error_class) as caught:
        client.send_text("1", "hi")
    assert caught.value.code == code


def test_rejected_token_is_refreshed_once_and_the_call_retried(client, store, requests_mock):
    requests_mock.post(
        f"{API}/v3.0/oa/message/cs",
        [
            {"json": {"error": -216, "message": "Access token is invalid"}},
            {"json": {"data": {"message_id": "m1", "user_id": "1"}, "error": 0, "message": "Success"}},
        ],
    )
    grant = requests_mock.post(
        f"{OAUTH}/v4/oa/access_token",
        json={"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": "90000"},
    )
    assert client.send_text("1", "hi").message_id == "m1"
    assert grant.last_request.headers["secret_key"] == "secret"
    assert (
        "grant_type=refresh_token" in grant.last_request.text and "refresh_token=refresh-1" in grant.last_request.text
    )
    stored = store.load_tokens()
    assert (stored.access_token, stored.refresh_token) == ("access-2", "refresh-2")
    assert stored.expires_at == 2_000.0 + 90_000


def test_refused_refresh_marks_the_token_dead_and_names_the_fix(client, store, requests_mock):
    requests_mock.get(f"{API}/v2.0/oa/listrecentchat", json={"error": -220, "message": "expired"})
    requests_mock.post(f"{OAUTH}/v4/oa/access_token", json={"error": -14014, "error_name": "invalid_grant"})
    with pytest.raises(AuthError, match="zfsync auth zalo --refresh-token"):
        client.recent_messages(0)
    assert store.load_tokens().dead_reason
    # Afterwards no call goes out until an operator imports a new token.
    with pytest.raises(AuthError):
        client.recent_messages(0)
    assert requests_mock.call_count == 2


@pytest.mark.parametrize(
    ("response", "error_class"),
    [
        ({"text": "<html>Bad gateway</html>", "headers": {"Content-Type": "text/html"}}, InvalidResponse),
        ({"text": '{"data": [{"message_id": "tru'}, InvalidResponse),
        ({"status_code": 502, "text": "oops"}, TransientError),
        ({"status_code": 429, "headers": {"Retry-After": "7"}, "text": ""}, RateLimited),
    ],
)
def test_broken_answers_are_transient(client, requests_mock, response, error_class):
    requests_mock.get(f"{API}/v2.0/oa/listrecentchat", **response)
    with pytest.raises(error_class) as caught:
        client.recent_messages(0)
    if error_class is RateLimited:
        assert caught.value.retry_after == 7


def test_rows_without_src_are_told_apart_by_the_oa_id(client, requests_mock):
    row = {k: v for k, v in ROW.items() if k != "src"}
    requests_mock.get(f"{API}/v2.0/oa/getoa", json={"data": {"oa_id": ROW["to_id"], "name": "Shop"}, "error": 0})
    requests_mock.get(f"{API}/v2.0/oa/listrecentchat", json={"data": [row], "error": 0})
    (message,) = client.recent_messages(0)
    assert message.from_oa is False and message.user_id == ROW["from_id"]


def test_malformed_rows_are_dropped_but_the_rest_kept(client, requests_mock):
    requests_mock.get(f"{API}/v2.0/oa/listrecentchat", json={"data": [{"src": 1}, None, ROW], "error": 0})
    assert [m.message_id for m in client.recent_messages(0)] == [ROW["message_id"]]


def test_code_grant_sends_the_verifier_and_reads_string_expiry(requests_mock):
    mock = requests_mock.post(
        f"{OAUTH}/v4/oa/access_token", json={"access_token": "a", "refresh_token": "r", "expires_in": "90000"}
    )
    tokens = ZaloOAuth(OAUTH, "app", "secret").exchange_code("CODE", "VERIFIER")
    assert tokens.expires_in == 90_000
    assert (
        "code_verifier=VERIFIER" in mock.last_request.text and "grant_type=authorization_code" in mock.last_request.text
    )


def test_pkce_pair_is_s256_base64url_without_padding():
    import base64
    import hashlib

    verifier, challenge = new_pkce_pair()
    assert len(verifier) == 43 and "=" not in challenge
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_uploads_send_the_file_field_and_read_the_documented_keys(client, requests_mock):
    from zfsync.domain import Media

    image = requests_mock.post(
        f"{API}/v2.0/oa/upload/image", json={"data": {"attachment_id": "att-1"}, "error": 0, "message": "Success"}
    )
    requests_mock.post(f"{API}/v2.0/oa/upload/file", json={"data": {"token": "tok-1"}, "error": 0})
    requests_mock.post(f"{API}/v2.0/oa/upload/gif", json={"data": {"token": "gif-1"}, "error": 0})  # the table's name
    media = Media(b"\x89PNG...", "image/png", "a.png")
    assert client.upload_image(media) == "att-1"
    assert b'name="file"; filename="a.png"' in image.last_request.body
    assert image.last_request.headers["access_token"] == "access-1"
    assert client.upload_file(Media(b"%PDF", "application/pdf", "a.pdf")) == "tok-1"
    assert client.upload_gif(Media(b"GIF89a", "image/gif", "a.gif")) == "gif-1"


def test_upload_answered_with_empty_data_is_a_permanent_error(client, requests_mock):
    from zfsync.domain import Media

    requests_mock.post(f"{API}/v2.0/oa/upload/image", json={"data": {}, "error": 0, "message": "Success"})
    with pytest.raises(PermanentError, match="did not accept"):
        client.upload_image(Media(b"x", "image/png", "a.png"))


def test_media_and_file_messages_follow_the_official_shapes(client, requests_mock):
    send = requests_mock.post(f"{API}/v3.0/oa/message/cs", json={"data": {"message_id": "m1"}, "error": 0})
    client.send_image("42", "att-1", "caption")
    assert send.last_request.json()["message"] == {
        "text": "caption",
        "attachment": {
            "type": "template",
            "payload": {"template_type": "media", "elements": [{"media_type": "image", "attachment_id": "att-1"}]},
        },
    }
    client.send_gif("42", "g", 10, 20)
    element = send.last_request.json()["message"]["attachment"]["payload"]["elements"][0]
    assert element == {"media_type": "gif", "attachment_id": "g", "width": 10, "height": 20}
    client.send_file("42", "tok")
    assert send.last_request.json()["message"] == {"attachment": {"type": "file", "payload": {"token": "tok"}}}


def test_download_refuses_what_is_over_the_cap(client, requests_mock):
    requests_mock.get("https://cdn.zalo.me/big.jpg", content=b"x" * 2000, headers={"Content-Length": "2000"})
    with pytest.raises(PermanentError, match=r"over the 0\.001 MB limit"):
        client.download("https://cdn.zalo.me/big.jpg", 1000)
    requests_mock.get("https://cdn.zalo.me/chunked.jpg", content=b"x" * 2000)  # no length announced
    with pytest.raises(PermanentError, match="over the"):
        client.download("https://cdn.zalo.me/chunked.jpg", 1000)
    requests_mock.get("https://cdn.zalo.me/ok.jpg", content=b"abc", headers={"Content-Type": "image/jpeg"})
    media = client.download("https://cdn.zalo.me/ok.jpg", 1000)
    assert (media.data, media.content_type, media.name) == (b"abc", "image/jpeg", "ok.jpg")
    with pytest.raises(PermanentError, match="not a web link"):
        client.download("file:///etc/passwd", 1000)
