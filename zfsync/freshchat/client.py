"""FreshChat API v2: HTTP in, `FcUser` / `FcMessage` out (research/freshchat_api.md).

Facts that shape this: Bearer auth; users are found by ``reference_id`` (several may come back, so match
it ourselves); message lists are newest first and paged by following ``link.href`` verbatim until ``link``
is missing; a user message into a conversation that is not the user's latest is refused with 400 "not the
latest conversation"; a wrong host may answer 200 with HTML. Create calls may answer 200 or 201.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from zfsync import http
from zfsync.domain import (
    OTHER_EVENT,
    REOPENED,
    RESOLVED,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    FcUser,
    Json,
    Media,
    safe_text,
)
from zfsync.errors import (
    AuthError,
    ConversationNotLatest,
    InvalidResponse,
    PermanentError,
    TransientError,
)
from zfsync.quota import Quota

PAGE_SIZE = 50  # the documented maximum for items_per_page
REFUSED_WAIT = 30.0  # seconds after a 429 that names no time (FreshChat documents no window)
DEFAULT_LIMIT = 400  # requests a minute: FreshChat documents none; freshchat.requests_per_minute sets it


class FreshChatClient:
    def __init__(
        self,
        api_url: str,
        api_key: str,
        session: requests.Session | None = None,
        on_request: Callable[[str], None] | None = None,
        quota: Quota | None = None,
    ):
        self.api_url = api_url  # scheme and host, without /v2
        self._key = api_key
        self.quota = quota or Quota("freshchat", DEFAULT_LIMIT)  # every API call spends from it
        self._session = session or http.new_session()
        self._on_request = on_request or (lambda endpoint: None)

    def use_api_key(self, api_key: str) -> None:
        """Switch to a new API key (the operator replaced a revoked one) without restarting."""
        self._key = api_key

    # --- users ---------------------------------------------------------------------------------------

    def find_user(self, reference_id: str) -> FcUser | None:
        body = self._call("GET", "/v2/users", "/v2/users", params={"reference_id": reference_id})
        for raw in _list(body, "users", "/v2/users"):
            if isinstance(raw, dict) and str(raw.get("reference_id")) == reference_id and raw.get("id"):
                return FcUser(str(raw["id"]), reference_id)
        return None

    def create_user(self, user: FcNewUser) -> FcUser:
        body = self._call("POST", "/v2/users", "/v2/users", json=_user_body(user))
        if not isinstance(body, dict) or not body.get("id"):
            raise InvalidResponse("created user has no id", side="freshchat", endpoint="/v2/users")
        return FcUser(str(body["id"]), user.reference_id)

    def update_user(self, user_id: str, user: FcNewUser) -> None:
        self._call("PUT", f"/v2/users/{user_id}", "/v2/users/{id}", json=_user_body(user))

    def user_conversations(self, user_id: str) -> list[str]:
        ep = "/v2/users/{id}/conversations"
        body = self._call("GET", f"/v2/users/{user_id}/conversations", ep)
        return [str(c["id"]) for c in _list(body, "conversations", ep) if isinstance(c, dict) and c.get("id")]

    # --- conversations and messages ------------------------------------------------------------------

    def create_conversation(self, channel_id: str, user_id: str, first: FcOutgoing) -> tuple[str, str | None]:
        """Open a conversation carrying ``first``; returns (conversation id, id of that first message)."""
        payload = {
            "channel_id": channel_id,
            "users": [{"id": user_id}],
            "messages": [_message_body(first, user_id)],
        }
        body = self._call("POST", "/v2/conversations", "/v2/conversations", json=payload)
        if not isinstance(body, dict) or not body.get("conversation_id"):
            raise InvalidResponse(
                "created conversation has no conversation_id", side="freshchat", endpoint="/v2/conversations"
            )
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        first_id = None
        if messages and isinstance(messages[0], dict):
            if messages[0].get("error_message"):
                raise PermanentError(str(messages[0]["error_message"]), side="freshchat", endpoint="/v2/conversations")
            first_id = str(messages[0].get("id") or "") or None
        return str(body["conversation_id"]), first_id

    def conversation(self, conversation_id: str) -> Json:
        body = self._call("GET", f"/v2/conversations/{conversation_id}", "/v2/conversations/{id}")
        if not isinstance(body, dict):
            raise InvalidResponse("conversation is not an object", side="freshchat", endpoint="/v2/conversations/{id}")
        return body

    def reopen(self, conversation_id: str) -> None:
        """Set a resolved conversation back to ``new``, as Freshworks' own library reopens one."""
        ep = "/v2/conversations/{id}"
        self._call("PUT", f"/v2/conversations/{conversation_id}", ep, json={"status": "new"})

    def post_message(self, conversation_id: str, user_id: str, message: FcOutgoing) -> str:
        ep = "/v2/conversations/{id}/messages"
        body = self._call(
            "POST", f"/v2/conversations/{conversation_id}/messages", ep, json=_message_body(message, user_id)
        )
        if not isinstance(body, dict) or not body.get("id"):
            raise InvalidResponse("posted message has no id", side="freshchat", endpoint=ep)
        return str(body["id"])

    def message_pages(self, conversation_id: str) -> Iterator[list[FcMessage]]:
        """Pages of a conversation's messages, newest first; stop iterating once you have seen enough."""
        ep = "/v2/conversations/{id}/messages"
        url: str | None = (
            f"{self.api_url}/v2/conversations/{conversation_id}/messages?page=1&items_per_page={PAGE_SIZE}"
        )
        seen_urls: set[str] = set()
        while url and url not in seen_urls:
            seen_urls.add(url)  # a server that links a page to itself must not loop us forever
            body = self._call("GET", url, ep, absolute=True)
            raws = [raw for raw in _list(body, "messages", ep) if isinstance(raw, dict) and raw.get("id")]
            yield _with_times([_message(raw, conversation_id) for raw in raws], raws)
            link = body.get("link") if isinstance(body, dict) else None
            href = link.get("href") if isinstance(link, dict) else None
            url = urljoin(self.api_url + "/", href) if href else None

    # --- media -------------------------------------------------------------------------------------

    def upload_image(self, media: Media) -> str:
        """Upload an image; returns the URL an ``image`` part points at."""
        ep = "/v2/images/upload"
        body = self._call("POST", ep, ep, files={"image": (media.name, media.data, media.content_type)})
        url = _first(body, ("url",), ("image", "data"))
        if not url:
            raise InvalidResponse("image upload answered without a url", side="freshchat", endpoint=ep)
        return url

    def upload_file(self, media: Media) -> Json:
        """Upload a file; returns the ``file`` part that carries it.

        The answer's field names are uncertain (research §5), so several spellings are accepted. A file the
        antivirus scan has not cleared yet cannot be sent: that is reported as transient, to try again later.
        """
        ep = "/v2/files/upload"
        body = self._call("POST", ep, ep, files={"file": (media.name, media.data, media.content_type)})
        wrappers = ("file", "data")
        file_hash = _first(body, ("file_hash", "fileHash", "hash"), wrappers)
        url = _first(body, ("url", "file_url", "download_url"), wrappers)
        if not file_hash and not url:
            raise InvalidResponse("file upload answered without a hash or url", side="freshchat", endpoint=ep)
        security = _first(body, ("file_security_status", "security_status"), wrappers)
        if security and "PENDING" in security.upper():
            raise TransientError("uploaded file is still being scanned", side="freshchat", endpoint=ep)
        part: Json = {
            "name": _first(body, ("file_name", "fileName", "name"), wrappers) or media.name,
            "file_size_in_bytes": media.size,
            "content_type": _first(body, ("file_content_type", "content_type", "contentType"), wrappers)
            or media.content_type,
        }
        if file_hash:
            part["fileHash"] = file_hash
        if url:
            part["url"] = url
        return part

    def download(self, url: str, max_bytes: int) -> Media:
        """An agent's attachment; the API key goes along only to FreshChat's own API host."""
        same_host = urlsplit(url).netloc == urlsplit(self.api_url).netloc
        headers = {"Authorization": f"Bearer {self._key}"} if same_host else None
        self._on_request("media")
        return http.download(self._session, url, side="freshchat", max_bytes=max_bytes, headers=headers)

    # --- account -------------------------------------------------------------------------------------

    def account_configuration(self) -> Json:
        body = self._call("GET", "/v2/accounts/configuration", "/v2/accounts/configuration")
        if isinstance(body, dict) and isinstance(body.get("configuration"), dict):
            return body["configuration"]  # one source sees it wrapped, another at the root
        return body if isinstance(body, dict) else {}

    def channels(self) -> list[Json]:
        body = self._call("GET", "/v2/channels", "/v2/channels", params={"items_per_page": PAGE_SIZE})
        return [c for c in _list(body, "channels", "/v2/channels") if isinstance(c, dict)]

    # --- plumbing ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, endpoint: str, *, absolute: bool = False, **kwargs: Any) -> Any:
        # A refusal waits for the window's end when the side said it (Retry-After, X-RateLimit-Reset), else 30 s.
        with self.quota.request():
            self._on_request(endpoint)
            return self._answer(method, path, endpoint, absolute, kwargs)

    def _answer(self, method: str, path: str, endpoint: str, absolute: bool, kwargs: dict[str, Any]) -> Any:
        url = path if absolute else self.api_url + path
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        response = http.call(self._session, method, url, side="freshchat", endpoint=endpoint, headers=headers, **kwargs)
        status = response.status_code
        rate = http.rate_headers(response)
        self.quota.observe(rate.limit, rate.remaining, rate.reset_in)
        http.raise_for_server_trouble(response, side="freshchat", endpoint=endpoint, wait=REFUSED_WAIT)
        if status >= 400:
            raise _client_error(response, endpoint)
        if status == 204 or (method == "PUT" and not response.content):
            return {}  # PUT /users may answer with an empty body
        return http.json_body(response, side="freshchat", endpoint=endpoint)


def _client_error(response: requests.Response, endpoint: str) -> Exception:
    status = response.status_code
    try:
        body = safe_text(response.json())
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    reason = str(body.get("message") or body.get("status") or f"HTTP {status}")
    code = body.get("status")
    if status in (401, 403):
        return AuthError(
            f"{reason}: check ZFSYNC_FRESHCHAT_API_KEY and freshchat.api_url",
            side="freshchat",
            endpoint=endpoint,
            status=status,
            code=code,
        )
    if status == 400 and "not the latest conversation" in reason.lower():
        return ConversationNotLatest(reason, side="freshchat", endpoint=endpoint, status=status, code=code)
    return PermanentError(reason, side="freshchat", endpoint=endpoint, status=status, code=code)


def _first(body: Any, keys: tuple[str, ...], wrappers: tuple[str, ...]) -> str:
    """The first non-empty value under any of ``keys``, at the root or inside one of ``wrappers``."""
    if not isinstance(body, dict):
        return ""
    places = [body] + [body[w] for w in wrappers if isinstance(body.get(w), dict)]
    for place in places:
        for key in keys:
            if place.get(key):
                return str(place[key])
    return ""


def _list(body: Any, key: str, endpoint: str) -> list[Any]:
    if isinstance(body, list):
        return body  # one client once saw a bare array; accept it
    if not isinstance(body, dict):
        raise InvalidResponse(f"expected an object with {key}", side="freshchat", endpoint=endpoint)
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidResponse(f"{key} is not a list", side="freshchat", endpoint=endpoint)
    return value


def _user_body(user: FcNewUser) -> Json:
    body: Json = {"reference_id": user.reference_id, "first_name": user.first_name}
    if user.avatar_url:
        body["avatar"] = {"url": user.avatar_url}
    if user.properties:
        body["properties"] = [{"name": k, "value": v} for k, v in user.properties]
    return body


def _message_body(message: FcOutgoing, user_id: str) -> Json:
    body: Json = {
        "message_parts": list(message.parts),
        "actor_type": message.actor_type,
        "message_type": message.message_type,
    }
    if message.actor_type == "user":
        body["actor_id"] = user_id
        body["user_id"] = user_id
    elif message.actor_id:
        body["actor_id"] = message.actor_id
    return body


def _message(raw: Json, conversation_id: str) -> FcMessage:
    parts = _list_of(raw.get("message_parts"))
    meta = _dict_of(raw.get("meta_data"))
    return FcMessage(
        id=str(raw["id"]),
        conversation_id=str(raw.get("conversation_id") or conversation_id),
        actor_type=str(raw.get("actor_type") or "").lower(),
        actor_id=str(raw.get("actor_id") or ""),
        message_type=str(raw.get("message_type") or "normal").lower(),
        created_time=parse_time(raw.get("created_time")),
        parts=tuple(p for p in parts if isinstance(p, dict)),
        meta=meta,
        event=_event(raw, meta),
    )


def _event(raw: Json, meta: Json) -> str:
    """What a marker message stands for; "" for a message someone wrote.

    Freshworks' own fixtures show a resolve as an *agent* message with ``message_source`` system,
    ``meta_data.isResolved`` and no ``message_type`` (or ``normal``); their library tells system messages
    by ``meta_data`` or ``message_type == "system"``. The casing of ``message_source`` and the type of the
    flag differ between sources, so both are accepted (tests/contract/recorded/freshchat/README.md).
    """
    if _flag(meta.get("isResolved")):
        return RESOLVED
    if _flag(meta.get("isReopen")) or _flag(meta.get("isReopened")):
        return REOPENED
    source = str(raw.get("message_source") or "").lower()
    kind = str(raw.get("message_type") or "").lower()
    actor = str(raw.get("actor_type") or "").lower()
    if meta or "system" in (source, kind, actor):
        return OTHER_EVENT
    return ""


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int | float) and value == 1)


def _with_times(messages: list[FcMessage], raws: list[Json]) -> list[FcMessage]:
    """A message without a usable time takes its newer neighbour's, so it sorts where the page put it."""
    known = [_time_or_none(raw.get("created_time")) for raw in raws]
    fixed: list[FcMessage] = []
    for i, message in enumerate(messages):
        if known[i] is None:
            neighbours = [t for t in known[:i][::-1] + known[i + 1 :] if t is not None]
            message = replace(message, created_time=neighbours[0] if neighbours else message.created_time)
        fixed.append(message)
    return fixed


def _time_or_none(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            return None
    return None


def parse_time(value: Any) -> datetime:
    """FreshChat's ISO-8601 times; a missing or odd one reads as 'now' so the message is never skipped."""
    return _time_or_none(value) or datetime.now(UTC)


def _list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict_of(value: Any) -> Json:
    return value if isinstance(value, dict) else {}
