"""FreshChat API v2: HTTP in, `FcUser` / `FcMessage` out (research/freshchat_api.md).

Facts that shape this: Bearer auth; users are found by ``reference_id`` (several may come back, so match
it ourselves); message lists are newest first and paged by following ``link.href`` verbatim until ``link``
is missing; a user message into a conversation that is not the user's latest is refused with 400 "not the
latest conversation"; a wrong host may answer 200 with HTML. Create calls may answer 200 or 201.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from zfsync.domain import (
    FcAgent,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    FcUser,
    FilePart,
    Json,
    Media,
    safe_text,
)
from zfsync.domain.errors import (
    InvalidResponse,
    PermanentError,
)
from zfsync.sides import http
from zfsync.sides.freshchat import wire
from zfsync.sides.quota import Quota

PAGE_SIZE = 50  # the documented maximum for items_per_page
LIST_PAGES = 40  # 2,000 channels or groups: far more than an account has, and a bound on a looping server
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
        for raw in wire.list_under(body, "users", "/v2/users"):
            if isinstance(raw, dict) and str(raw.get("reference_id")) == reference_id and raw.get("id"):
                return FcUser(str(raw["id"]), reference_id)
        return None

    def create_user(self, user: FcNewUser) -> FcUser:
        body = self._call("POST", "/v2/users", "/v2/users", json=wire.user_body(user))
        if not isinstance(body, dict) or not body.get("id"):
            raise InvalidResponse("created user has no id", side="freshchat", endpoint="/v2/users")
        return FcUser(str(body["id"]), user.reference_id)

    def update_user(self, user_id: str, user: FcNewUser) -> None:
        self._call("PUT", f"/v2/users/{user_id}", "/v2/users/{id}", json=wire.user_body(user))

    def user_conversations(self, user_id: str) -> list[str]:
        ep = "/v2/users/{id}/conversations"
        body = self._call("GET", f"/v2/users/{user_id}/conversations", ep)
        return [str(c["id"]) for c in wire.list_under(body, "conversations", ep) if isinstance(c, dict) and c.get("id")]

    # --- conversations and messages ------------------------------------------------------------------

    def create_conversation(
        self, channel_id: str, user_id: str, first: FcOutgoing, group_id: str = ""
    ) -> tuple[str, str | None]:
        """Open a conversation carrying ``first`` (assigned to ``group_id`` if given); returns (conversation
        id, id of that first message)."""
        payload: Json = {
            "channel_id": channel_id,
            "users": [{"id": user_id}],
            "messages": [wire.message_body(first, user_id)],
        }
        if group_id:
            payload["assigned_group_id"] = group_id
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

    def conversation_assignee(self, conversation_id: str) -> str:
        return str(self.conversation(conversation_id).get("assigned_agent_id") or "").strip()

    def conversation_properties(self, conversation_id: str) -> dict[str, str]:
        """The conversation's properties (``priority``, custom ``cf_*``), each as one line of text."""
        found = self.conversation(conversation_id).get("properties")
        if not isinstance(found, dict):
            return {}
        return {str(k): " ".join(str(v).split()) for k, v in found.items() if isinstance(v, str | int | float)}

    def conversation_started(self, conversation_id: str) -> str:
        return str(self.conversation(conversation_id).get("created_time") or "")

    def reopen(self, conversation_id: str) -> None:
        """Set a resolved conversation back to ``new``, as Freshworks' own library reopens one."""
        ep = "/v2/conversations/{id}"
        self._call("PUT", f"/v2/conversations/{conversation_id}", ep, json={"status": "new"})

    def set_conversation_properties(self, conversation_id: str, properties: dict[str, str]) -> None:
        """Write custom conversation properties (``cf_*``, made in FreshChat's admin first), as an object."""
        ep = "/v2/conversations/{id}"
        self._call("PUT", f"/v2/conversations/{conversation_id}", ep, json={"properties": properties})

    def post_message(self, conversation_id: str, user_id: str, message: FcOutgoing) -> str:
        ep = "/v2/conversations/{id}/messages"
        body = self._call(
            "POST", f"/v2/conversations/{conversation_id}/messages", ep, json=wire.message_body(message, user_id)
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
            raws = [raw for raw in wire.list_under(body, "messages", ep) if isinstance(raw, dict) and raw.get("id")]
            yield wire.with_times([wire.read_message(raw, conversation_id) for raw in raws], raws)
            link = body.get("link") if isinstance(body, dict) else None
            href = link.get("href") if isinstance(link, dict) else None
            url = urljoin(self.api_url + "/", href) if href else None

    # --- media -------------------------------------------------------------------------------------

    def upload_image(self, media: Media) -> str:
        """Upload an image; returns the URL an ``image`` part points at."""
        ep = "/v2/images/upload"
        body = self._call("POST", ep, ep, files={"image": (media.name, media.data, media.content_type)})
        url = wire.first_of(body, ("url",), ("image", "data"))
        if not url:
            raise InvalidResponse("image upload answered without a url", side="freshchat", endpoint=ep)
        return url

    def upload_file(self, media: Media) -> FilePart:
        """Upload a file; returns the part that carries it (`wire.uploaded_file`)."""
        ep = "/v2/files/upload"
        body = self._call("POST", ep, ep, files={"file": (media.name, media.data, media.content_type)})
        return wire.uploaded_file(body, media, ep)

    def download(self, url: str, max_bytes: int) -> Media:
        """An agent's attachment; the API key goes along only to FreshChat's own API host."""
        same_host = urlsplit(url).netloc == urlsplit(self.api_url).netloc
        headers = {"Authorization": f"Bearer {self._key}"} if same_host else None
        self._on_request("media")
        return http.download(self._session, url, side="freshchat", max_bytes=max_bytes, headers=headers)

    # --- account -------------------------------------------------------------------------------------

    def account_configuration(self) -> Json:
        return wire.configuration_of(self._call("GET", "/v2/accounts/configuration", "/v2/accounts/configuration"))

    def agent(self, agent_id: str) -> FcAgent:
        ep = "/v2/agents/{id}"
        body = self._call("GET", f"/v2/agents/{agent_id}", ep)
        if not isinstance(body, dict):
            raise InvalidResponse("agent is not an object", side="freshchat", endpoint=ep)
        first, last = str(body.get("first_name") or ""), str(body.get("last_name") or "")
        return FcAgent(str(body.get("id") or agent_id), first, last)

    def groups(self) -> list[Json]:
        return self._every_page("/v2/groups", "groups")

    def channels(self) -> list[Json]:
        return self._every_page("/v2/channels", "channels")

    def _every_page(self, path: str, key: str) -> list[Json]:
        """A small list of the account (channels, groups) from all its pages: `pagination.total_pages`
        says how many (recorded/freshchat/channels_swagger.json), at most `LIST_PAGES` of them."""
        found: list[Json] = []
        for page in range(1, LIST_PAGES + 1):
            body = self._call("GET", path, path, params={"page": page, "items_per_page": PAGE_SIZE})
            items = [item for item in wire.list_under(body, key, path) if isinstance(item, dict)]
            found.extend(items)
            if not items or page >= wire.total_pages(body):
                break
        return found

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
    try:
        body = safe_text(response.json())
    except ValueError:
        body = {}
    return wire.error_of(response.status_code, body, endpoint)
