"""A simulated FreshChat API v2, following research/freshchat_api.md.

What it reproduces: Bearer auth (401 otherwise); users by ``reference_id`` (a list without a filter is
refused); conversations created with their first messages; message pages newest first, followed through
``link.href`` with no ``link`` on the last page; a user message into a conversation that is not the user's
latest refused with 400 "not the latest conversation"; an optional per-minute limit answered with 429 and
``Retry-After``. Every shape traces to a recorded payload in ``tests/contract/recorded/freshchat/``.

Where the recorded sources disagree, a mode plays each answer (`Modes`):
- ``markers="recorded"`` (the default): resolve, reopen and assignment markers as Freshworks' own fixtures
  show them: an *agent* message with ``message_source`` system, ``meta_data`` ``{"isResolved": true}`` and
  the text "Conversation was marked resolved by <agent>"; successive markers rotate through the variants
  seen (no ``message_type`` or ``"normal"``, ``system`` or ``SYSTEM``, ``true`` or ``"true"``).
  ``markers="system"`` plays the other reading of Freshworks' enums: actor and message type ``system``.
- ``late_urls=N``: an agent's file or image part is listed without its ``url`` for its first N reads
  (FreshChat attaches it after scanning, as wedosoft's bridge saw).
- ``not_latest_after_resolve="carry"|"empty"``: a user message into a resolved conversation is refused as
  "not the latest conversation" and FreshChat opens a new one, with that message in it or without.

Control API (``/_sim/...``): ``agent_reply`` (an agent or bot message, or a private note), ``resolve``,
``reopen``, ``assign``, ``delete_conversation``, ``delete_user``, ``modes``, ``state`` (everything
received), plus the shared ``faults``, ``stats``, ``rtt`` and ``clock``.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from zfsync.domain import reference_id
from zfsync.sim.base import Json, MinuteQuota, Request, Response, SimApp

AGENT_ID = "8f6c6b0a-agent-0000-0000-000000000001"
CHANNEL_ID = "3c1f1e7a-chan-0000-0000-000000000001"
GROUP_ID = "e90e2b42-4054-487a-a615-bb29fe216f53"
MAX_PER_PAGE = 50
UPLOAD_LIMIT = 25_000_000


AGENT_NAME = "Lan Agent"
# The variants of a marker seen in Freshworks' fixtures: (message_type or None, message_source, flag value).
MARKER_VARIANTS: tuple[tuple[str | None, str, bool | str], ...] = (
    (None, "system", True),  # jaya-lib utils.filter-messages.test.ts
    ("normal", "system", True),  # jaya-lib api.get-conversation-messages.test.ts
    ("normal", "SYSTEM", "true"),  # the swagger copy's upper-case enum, the flag as a string
    (None, "SYSTEM", "true"),
)


@dataclass
class Modes:
    """Which plausible answer the simulator plays where the recorded sources disagree or are silent."""

    markers: str = "recorded"  # "recorded" (Freshworks' fixtures) or "system" (actor and message type system)
    late_urls: int = 0  # reads during which an agent's file or image part has no url yet
    not_latest_after_resolve: str = "off"  # "off", "carry" (the new conversation holds the message) or "empty"
    # Requests a minute (0: no limit); beyond it, HTTP 429 until the minute ends. With headers, every answer
    # carries X-RateLimit-Limit, -Remaining and -Reset (a Unix time), as the swagger copy lists; whether a
    # 429 carries Retry-After is unconfirmed, so both are played.
    quota_per_minute: int = 0
    quota_headers: bool = True
    retry_after: bool = True
    # How X-RateLimit-Reset is written: "unix" (seconds, as the swagger copy says), "unix_ms" or "wait"
    # (seconds from now): no recording settles it (recorded/freshchat/rate_limit_headers_composed.json).
    reset_form: str = "unix"
    # Agents' attachment parts carry "url" (the recordings) or "download_url" only (wedosoft reads either).
    attachment_link: str = "url"

    def update(self, values: Json) -> None:
        for f in fields(self):
            if f.name in values:
                setattr(self, f.name, type(getattr(self, f.name))(values[f.name]))


def agent_object(agent_id: str, first_name: str, last_name: str) -> Json:
    """An agent as jaya-lib's fixture of ``GET /agents/{id}`` shows one (recorded/freshchat/agent_jaya.json)."""
    return {
        "avatar": {"url": f"https://sim.freshchat.local/avatars/{agent_id}.png"},
        "email": f"{agent_id[:8]}@sim.freshchat.local",
        "first_name": first_name,
        "groups": [GROUP_ID],
        "id": agent_id,
        "is_deactivated": False,
        "last_name": last_name,
        "role_id": "AGENT",
        "skill_id": "437cee42-2958-4485-9239-70fdfd2c770a",
        "social_profiles": [],
    }


def agent_message_fields(
    text: str, parts: list[Json] | None, actor_type: str, actor_id: str, message_type: str, extra: dict[str, Any]
) -> Json:
    """A message an agent (or a bot) writes in the inbox, as FreshChat lists it; ``extra``: its other
    recorded fields (``reply_parts``, ``meta_data``, ``in_reply_to``)."""
    return {
        "actor_type": actor_type,
        "actor_id": actor_id,
        "message_type": message_type,
        "message_source": "web",
        "message_parts": parts or [{"text": {"content": text}}],
        **{k: v for k, v in extra.items() if k in ("reply_parts", "meta_data", "in_reply_to")},
    }


def system_marker_fields(flag: str | None) -> Json:
    """A resolve or reopen marker as a system message (``flag``: ``isResolved``, ``isReopen``, or none)."""
    return {
        "actor_type": "system",
        "actor_id": AGENT_ID,
        "message_type": "system",
        "message_source": "system",
        "message_parts": [],
        "meta_data": {flag: True} if flag else {},
    }


def channel_object(channel_id: str, name: str) -> Json:
    return {
        "id": channel_id,
        "name": name,
        "enabled": True,
        "public": True,
        "source": "freshchat",
        "tags": [],
        "locale": "vi",
        "updated_time": "2026-01-01T00:00:00.000Z",
    }


def _paged(key: str, items: list[Json], request: Request) -> Response:
    """One page of a list, as `page` and `items_per_page` (at most 50, default 20) ask."""
    try:
        page = max(1, int(request.query.get("page", "1")))
        size = min(50, max(1, int(request.query.get("items_per_page", "20"))))
    except ValueError:
        return error(400, "INVALID_VALUE", "page or items_per_page is invalid")
    pages = max(1, -(-len(items) // size))
    pagination = {"total_items": len(items), "total_pages": pages, "current_page": page, "items_per_page": size}
    return Response(200, {key: items[(page - 1) * size : page * size], "pagination": pagination, "links": {}})


def _one_page(count: int) -> Json:
    return {
        "pagination": {"total_items": count, "total_pages": 1, "current_page": 1, "items_per_page": 50},
        "links": {},
    }


def error(status: int, code: str, message: str) -> Response:
    return Response(status, {"code": status, "status": code, "message": message})


class FreshChatSim(SimApp):
    name = "freshchat"

    def __init__(self, api_key: str = "sim-key", rate_limit_per_minute: int = 0, modes: Modes | None = None):
        super().__init__()
        self.api_key = api_key
        self.modes = modes or Modes()
        self.modes.quota_per_minute = rate_limit_per_minute or self.modes.quota_per_minute
        self.quota = MinuteQuota()
        self._markers = 0
        self._hidden_urls: dict[str, int] = {}  # message id -> reads left without attachment urls
        self.file_urls: dict[str, str] = {}  # file hash -> the url FreshChat serves the file at
        self.users: dict[str, Json] = {}
        self.conversations: dict[str, Json] = {}
        self.messages: dict[str, list[Json]] = {}  # conversation id -> oldest first
        self._latest: dict[str, str] = {}  # user id -> their latest conversation
        self._last_ms = 0
        # The agents, groups and channels of the account, in the shapes recorded/freshchat/ shows.
        self.agents: dict[str, Json] = {AGENT_ID: agent_object(AGENT_ID, "Lan", "Nguyễn")}
        self.groups: list[Json] = [{"id": GROUP_ID, "name": "Hỗ trợ", "description": "Đội hỗ trợ khách hàng"}]
        self.channels: list[Json] = [channel_object(CHANNEL_ID, "Zalo")]

    def _stamp(self) -> str:
        now_ms = int(self.now() * 1000)
        self._last_ms = max(now_ms, self._last_ms + 1)
        return (
            datetime.fromtimestamp(self._last_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )

    def _add_message(self, conversation_id: str, fields: Json) -> Json:
        conversation = self.conversations[conversation_id]
        message = {
            "id": str(uuid.uuid4()),
            "conversation_id": conversation_id,
            "channel_id": conversation["channel_id"],
            "app_id": "sim-app",
            "created_time": self._stamp(),
            "message_type": "normal",
            "user_id": conversation["user_id"],
            "message_parts": [],
            **fields,
        }
        self.messages[conversation_id].append(message)
        conversation["updated_time"] = message["created_time"]
        return message

    def edit_user(self, zalo_user_id: str, **fields: Any) -> None:
        """An agent typing into the record of the user standing for a Zalo user (a phone, an email)."""
        with self.lock:
            user = self._user_of_ref(reference_id(zalo_user_id))
            assert user is not None, f"no FreshChat user for Zalo user {zalo_user_id}"
            user.update(fields)

    def set_agent(self, agent_id: str, first_name: str, last_name: str) -> None:
        """An agent's name as FreshChat's agent record gives it."""
        with self.lock:
            self.agents[agent_id] = agent_object(agent_id, first_name, last_name)

    def add_channel(self, channel_id: str, name: str) -> None:
        with self.lock:
            self.channels.append(channel_object(channel_id, name))

    def remove_channel(self, channel_id: str) -> None:
        """A channel deleted in FreshChat: conversations can no longer open in it."""
        with self.lock:
            self.channels[:] = [c for c in self.channels if c["id"] != channel_id]

    def start_conversation(self, zalo_user_id: str) -> str:
        """A newer conversation for the user standing for a Zalo user, opened in FreshChat (by an agent or
        a bot), in the default channel; returns its id."""
        with self.lock:
            user = self._user_of_ref(reference_id(zalo_user_id))
            assert user is not None, f"no FreshChat user for Zalo user {zalo_user_id}"
            return str(self.open_conversation(user["id"], CHANNEL_ID, [])["conversation_id"])

    def state(self) -> Json:
        """Users and conversations with their messages, as they stand (what the tests read)."""
        with self.lock:
            return {
                "users": list(self.users.values()),
                "conversations": [
                    {**c, "messages": list(self.messages[c["conversation_id"]])} for c in self.conversations.values()
                ],
            }

    def latest_of(self, user_id: str) -> str | None:
        return self._latest.get(user_id)  # conversations are created in time order: the last one is the latest

    def conversation_of(self, zalo_user_id: str) -> str | None:
        """The latest conversation of the FreshChat user standing for a Zalo user, if there is one yet."""
        with self.lock:
            reference = reference_id(zalo_user_id)
            user = next((u for u in self.users.values() if u.get("reference_id") == reference), None)
            return self.latest_of(user["id"]) if user else None

    def add_agent_message(
        self,
        conversation_id: str,
        text: str = "",
        parts: list[Json] | None = None,
        actor_type: str = "agent",
        actor_id: str = AGENT_ID,
        message_type: str = "normal",
        **extra: Any,
    ) -> Json:
        """What an agent typing in the FreshChat inbox produces (or a bot, or a private note). ``extra``:
        the message's other recorded fields (``reply_parts``, ``meta_data``, ``in_reply_to``)."""
        fields = agent_message_fields(text, parts, actor_type, actor_id, message_type, extra)
        if self.modes.attachment_link == "download_url":
            fields["message_parts"] = [_download_url_only(part) for part in fields["message_parts"]]
        with self.lock:
            message = self._add_message(conversation_id, fields)
            attached = any("file" in p or "image" in p for p in message["message_parts"])
            if attached and self.modes.late_urls:
                self._hidden_urls[message["id"]] = self.modes.late_urls
            return message

    def set_resolved(self, conversation_id: str, resolved: bool) -> Json:
        """An agent resolving (or reopening) a conversation: a status change and a marker message."""
        with self.lock:
            self.conversations[conversation_id]["status"] = "resolved" if resolved else "reopened"
            if resolved:
                return self._marker(conversation_id, f"Conversation was marked resolved by {AGENT_NAME}", "isResolved")
            return self._marker(conversation_id, f"Conversation was reopened by {AGENT_NAME}", "isReopen")

    def assign(self, conversation_id: str, agent_id: str = AGENT_ID) -> Json:
        """An agent taking the conversation. No public payload shows FreshChat's assignment marker, so it is
        shaped like the recorded resolve marker, with no flag zfsync knows; the conversation names the
        agent in ``assigned_agent_id``, as jaya-lib's assign fixture shows."""
        with self.lock:
            self.conversations[conversation_id].update(status="assigned", assigned_agent_id=agent_id)
            return self._marker(conversation_id, f"Conversation was assigned to {AGENT_NAME}", None)

    def _marker(self, conversation_id: str, text: str, flag: str | None) -> Json:
        if self.modes.markers == "system":
            return self._add_message(conversation_id, system_marker_fields(flag))
        message_type, source, value = MARKER_VARIANTS[self._markers % len(MARKER_VARIANTS)]
        self._markers += 1
        fields_: Json = {
            "actor_type": "agent",
            "actor_id": AGENT_ID,
            "message_source": source,
            "message_parts": [{"text": {"content": text}}],
        }
        if flag:
            fields_["meta_data"] = {flag: value}
        message = self._add_message(conversation_id, fields_)
        if message_type is None:
            del message["message_type"]
        else:
            message["message_type"] = message_type
        return message

    # --- control API ---------------------------------------------------------------------------------

    def control(self, request: Request, action: str) -> Response:
        body = request.json() if request.method in ("POST", "PUT") else {}
        with self.lock:
            if action == "agent_reply":
                conversation_id = body.get("conversation_id") or self._conversation_of_ref(body.get("reference_id"))
                if conversation_id not in self.conversations:
                    return Response(404, {"error": "no such conversation"})
                return Response(
                    200,
                    self.add_agent_message(
                        conversation_id,
                        body.get("text", ""),
                        body.get("parts"),
                        body.get("actor_type", "agent"),
                        body.get("actor_id", AGENT_ID),
                        body.get("message_type", "normal"),
                        **{k: body[k] for k in ("reply_parts", "meta_data", "in_reply_to") if k in body},
                    ),
                )
            if action in ("resolve", "reopen"):
                conversation_id = body.get("conversation_id") or self._conversation_of_ref(body.get("reference_id"))
                if conversation_id not in self.conversations:
                    return Response(404, {"error": "no such conversation"})
                return Response(200, self.set_resolved(conversation_id, action == "resolve"))
            if action == "assign":
                conversation_id = body.get("conversation_id") or self._conversation_of_ref(body.get("reference_id"))
                if conversation_id not in self.conversations:
                    return Response(404, {"error": "no such conversation"})
                return Response(200, self.assign(conversation_id))
            if action == "delete_conversation":
                self.delete_conversation(str(body.get("conversation_id")))
                return Response(200, {"ok": True})
            if action == "delete_user":
                user = self._user_of_ref(body.get("reference_id"))
                if user is not None:
                    self.delete_user(user["id"])
                return Response(200, {"ok": True})
            if action == "modes":
                self.modes.update(body)
                return Response(200, {"modes": dict(self.modes.__dict__)})
            if action == "new_conversation":
                # What FreshChat does when an agent or a rule opens a fresh conversation for the user.
                user = self._user_of_ref(body.get("reference_id"))
                if user is None:
                    return Response(404, {"error": "no such user"})
                return Response(200, self.open_conversation(user["id"], CHANNEL_ID, []))
            if action == "state":
                return Response(
                    200,
                    {
                        "users": list(self.users.values()),
                        "conversations": [
                            {**c, "messages": list(self.messages[c["conversation_id"]])}
                            for c in self.conversations.values()
                        ],
                    },
                )
        return Response(404, {"error": f"unknown control action {action}"})

    def delete_conversation(self, conversation_id: str) -> None:
        """An admin deleting a conversation: every later call about it answers 404."""
        with self.lock:
            conversation = self.conversations.pop(conversation_id, None)
            self.messages.pop(conversation_id, None)
            if conversation and self._latest.get(conversation["user_id"]) == conversation_id:
                left = [c for c in self.conversations.values() if c["user_id"] == conversation["user_id"]]
                if left:
                    self._latest[conversation["user_id"]] = left[-1]["conversation_id"]
                else:
                    del self._latest[conversation["user_id"]]

    def delete_user(self, user_id: str) -> None:
        """An admin deleting a user, and with them their conversations."""
        with self.lock:
            for conversation in [c for c in self.conversations.values() if c["user_id"] == user_id]:
                self.delete_conversation(conversation["conversation_id"])
            self.users.pop(user_id, None)

    def _user_of_ref(self, reference_id: Any) -> Json | None:
        return next((u for u in self.users.values() if u.get("reference_id") == reference_id), None)

    def _conversation_of_ref(self, reference_id: Any) -> str | None:
        user = self._user_of_ref(reference_id)
        return self.latest_of(user["id"]) if user else None

    # --- the API -------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return error(401, "UNAUTHORIZED", "Invalid or missing API token")
        if request.path.startswith("/media/"):
            return self.serve_media(request.path)  # attachments on the API host need the key too
        limit = self.modes.quota_per_minute
        if not limit:
            return self._route(request)
        with self.lock:
            allowed, remaining, reset = self.quota.take(self.now(), limit)
        if allowed:
            response = self._route(request)
        else:
            response = error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")
            if self.modes.retry_after:
                response.headers["Retry-After"] = str(max(1, round(reset - self.now())))
        if self.modes.quota_headers:
            headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining)}
            forms = {"unix": int(reset), "unix_ms": int(reset * 1000), "wait": max(0, round(reset - self.now()))}
            response.headers.update({**headers, "X-RateLimit-Reset": str(forms[self.modes.reset_form])})
        return response

    def _route(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] != ["v2"]:
            return error(404, "NOT_FOUND", "unknown path")
        route = parts[1:]
        method = request.method
        with self.lock:
            if route == ["users"]:
                return self._find_user(request) if method == "GET" else self._create_user(request)
            if len(route) == 2 and route[0] == "users":
                return self._user(route[1], request)
            if len(route) == 3 and route[0] == "users" and route[2] == "conversations":
                return self._user_conversations(route[1])
            if route == ["conversations"] and method == "POST":
                return self._post_conversation(request)
            if len(route) == 2 and route[0] == "conversations":
                return self._conversation(route[1], request)
            if len(route) == 3 and route[0] == "conversations" and route[2] == "messages":
                if method == "GET":
                    return self._list_messages(route[1], request)
                return self._post_message(route[1], request)
            if route in (["images", "upload"], ["files", "upload"]) and method == "POST":
                return self._upload(route[0], request)
            if route in (["channels"], ["groups"]):
                return _paged(route[0], self.channels if route == ["channels"] else self.groups, request)
            if len(route) == 2 and route[0] == "agents":
                agent = self.agents.get(route[1])
                return Response(200, agent) if agent else error(404, "AGENT_NOT_FOUND", "agent not found")
            if route == ["accounts", "configuration"]:
                return Response(
                    200,
                    {
                        "app_id": "sim-app",
                        "account_id": "sim-account",
                        "plan_type": "sim",
                        "datacenter": "local",
                        "account_domain": "sim.freshchat.local",
                    },
                )
            if route == ["agents"]:
                return Response(200, {"agents": list(self.agents.values()), **_one_page(len(self.agents))})
        return error(404, "NOT_FOUND", "unknown path")

    def _upload(self, kind: str, request: Request) -> Response:
        field_name = "image" if kind == "images" else "file"
        upload = request.files().get(field_name)
        if upload is None or not upload.data:
            return error(400, "INVALID_VALUE", f"multipart field {field_name} is required")
        if len(upload.data) > UPLOAD_LIMIT:
            return error(400, "INVALID_VALUE", "file size exceeds 25 MB")
        url = self.add_media(upload.data, upload.content_type, upload.name or field_name)
        media_id = url.rsplit("/", 2)[1]
        if kind == "images":
            width, height = _image_size(upload.data)
            return Response(
                200,
                {
                    "id": media_id,
                    "name": upload.name,
                    "url": url,
                    "content_type": upload.content_type,
                    "width": width,
                    "height": height,
                    "thumbnail": {"url": url, "content_type": upload.content_type, "width": width, "height": height},
                },
            )
        self.file_urls[media_id] = url  # a file part posted with this hash is shown with its url
        return Response(
            200,
            {
                "file_name": upload.name,
                "file_size": len(upload.data),
                "file_content_type": upload.content_type,
                "file_extension_type": upload.name.rsplit(".", 1)[-1].lower() if "." in upload.name else "",
                "file_hash": media_id,
                "file_security_status": "SAFE_FILE",
            },
        )

    def _find_user(self, request: Request) -> Response:
        ref = request.query.get("reference_id")
        if not ref:
            return error(400, "INVALID_VALUE", "a filter is required")
        return Response(200, {"users": [u for u in self.users.values() if u["reference_id"] == ref]})

    def _create_user(self, request: Request) -> Response:
        body = request.json()
        if not body.get("reference_id") and not body.get("first_name"):
            return error(400, "INVALID_VALUE", "user payload not valid")
        user = {
            "id": str(uuid.uuid4()),
            "created_time": self._stamp(),
            "reference_id": body.get("reference_id"),
            "first_name": body.get("first_name", ""),
            "last_name": body.get("last_name", ""),
            "avatar": body.get("avatar", {}),
            "properties": body.get("properties", []),
        }
        user.update({key: body[key] for key in ("phone", "email") if body.get(key)})
        user["updated_time"] = user["created_time"]
        self.users[user["id"]] = user
        return Response(201, user)

    def _user(self, user_id: str, request: Request) -> Response:
        user = self.users.get(user_id)
        if user is None:
            return error(404, "USER_NOT_FOUND", "user not found")
        if request.method == "PUT":
            body = request.json()
            for key in ("first_name", "last_name", "avatar", "phone", "email"):
                if key in body:
                    user[key] = body[key]
            # Properties are merged by name: one not in the body (an agent's) stays as it was.
            given = {p.get("name"): p for p in body.get("properties") or [] if isinstance(p, dict)}
            kept = [p for p in user.get("properties", []) if p.get("name") not in given]
            user["properties"] = kept + list(given.values())
            user["updated_time"] = self._stamp()
            return Response(200, user)
        return Response(200, user)

    def _user_conversations(self, user_id: str) -> Response:
        if user_id not in self.users:
            return error(404, "USER_NOT_FOUND", "user not found")
        mine = [c for c in self.conversations.values() if c["user_id"] == user_id]
        return Response(200, {"conversations": [{"id": c["conversation_id"]} for c in mine]})

    def open_conversation(self, user_id: str, channel_id: str, messages: list[Json]) -> Json:
        conversation_id = str(uuid.uuid4())
        internal_id = 1019183591791880 + len(self.conversations)
        created_time = self._stamp()
        conversation = {
            "conversation_id": conversation_id,
            "conversation_internal_id": internal_id,
            "app_id": "sim-app",
            "status": "new",
            "channel_id": channel_id,
            "skill_id": 0,
            "properties": {"priority": "Low"},
            "url": f"{self.base_url}/crm/messaging/a/1/inbox/open/0/conversation/{internal_id}",
            "org_contact_id": str(1940890452607479808 + len(self.users)),
            "created_time": created_time,
            "updated_time": created_time,
            "user_id": user_id,
            "seq": len(self.conversations),
        }
        self.conversations[conversation_id] = conversation
        self._latest[user_id] = conversation_id
        self.messages[conversation_id] = []
        created = [self._add_message(conversation_id, self._message_fields(m)) for m in messages]
        return {**conversation, "messages": created}

    def _post_conversation(self, request: Request) -> Response:
        body = request.json()
        users = body.get("users") or []
        if not body.get("channel_id") or not users or users[0].get("id") not in self.users:
            return error(400, "INVALID_VALUE", "Conversation payload not valid")
        if body["channel_id"] not in {c["id"] for c in self.channels}:
            return error(400, "INVALID_VALUE", "channel_id is not valid")
        group = body.get("assigned_group_id")
        if group is not None and group not in {g["id"] for g in self.groups}:
            return error(400, "INVALID_VALUE", "assigned_group_id is not valid")
        created = self.open_conversation(users[0]["id"], body["channel_id"], body.get("messages") or [])
        if group is not None:
            self.conversations[created["conversation_id"]]["assigned_group_id"] = group
        return Response(200, created)

    def _conversation(self, conversation_id: str, request: Request) -> Response:
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return error(404, "CONVERSATION_NOT_FOUND", "conversation not found")
        if request.method == "PUT":
            body = request.json()
            status = body.get("status")
            properties = body.get("properties")
            if "properties" in body and not (
                isinstance(properties, dict) and all(isinstance(v, str) for v in properties.values())
            ):
                return error(400, "INVALID_VALUE", "Conversation payload not valid")  # an array is refused
            if (status is None and properties is None) or status not in (
                None,
                "new",
                "assigned",
                "resolved",
                "reopened",
            ):
                return error(400, "INVALID_VALUE", "Conversation payload not valid")
            if properties:
                conversation.setdefault("properties", {}).update(properties)
            if status is not None:
                conversation["status"] = status
            for key in ("assigned_agent_id", "assigned_group_id"):
                if key in body:
                    conversation[key] = body[key]
        return Response(200, {k: v for k, v in conversation.items() if k != "seq"})

    def _list_messages(self, conversation_id: str, request: Request) -> Response:
        if conversation_id not in self.conversations:
            return error(404, "CONVERSATION_NOT_FOUND", "conversation not found")
        try:
            page = max(1, int(request.query.get("page", 1)))
            per_page = max(1, min(MAX_PER_PAGE, int(request.query.get("items_per_page", 20))))
        except ValueError:
            return error(400, "INVALID_VALUE", "page or items_per_page is invalid")
        newest_first = self.messages[conversation_id][::-1]
        chunk = [self._as_read(m) for m in newest_first[(page - 1) * per_page : page * per_page]]
        body: Json = {"messages": chunk}
        if page * per_page < len(newest_first):
            query = urlencode({"page": page + 1, "items_per_page": per_page})
            body["link"] = {"href": f"/v2/conversations/{conversation_id}/messages?{query}"}
        return Response(200, body)

    def _as_read(self, message: Json) -> Json:
        """A message as one read shows it: an attachment still being scanned has no url yet."""
        left = self._hidden_urls.get(message["id"], 0)
        if not left:
            return message
        self._hidden_urls[message["id"]] = left - 1
        parts = []
        for part in message["message_parts"]:
            kind = "file" if "file" in part else "image" if "image" in part else None
            hidden = ("url", "download_url")
            parts.append(part if kind is None else {kind: {k: v for k, v in part[kind].items() if k not in hidden}})
        return {**message, "message_parts": parts}

    def _post_message(self, conversation_id: str, request: Request) -> Response:
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return error(404, "CONVERSATION_NOT_FOUND", "conversation not found")
        body = request.json()
        if not body.get("message_parts"):
            return error(400, "INVALID_VALUE", "message_parts is required")
        if body.get("actor_type") == "user":
            mode = self.modes.not_latest_after_resolve
            if conversation["status"] == "resolved" and mode in ("carry", "empty"):
                # FreshChat opens a new conversation for the user (wedosoft's bridge saw this after a resolve).
                latest = self.open_conversation(conversation["user_id"], conversation["channel_id"], [])
                if mode == "carry":
                    self._add_message(latest["conversation_id"], self._message_fields(body))
            if self.latest_of(conversation["user_id"]) != conversation_id:
                return error(
                    400,
                    "INVALID_VALUE",
                    "User message cannot be sent to conversation which is not the latest conversation of the user",
                )
            if conversation["status"] == "resolved":
                conversation["status"] = "reopened"  # a customer writing again reopens it
        return Response(200, self._add_message(conversation_id, self._message_fields(body)))

    def _message_fields(self, body: Json) -> Json:
        """A posted message as FreshChat keeps it: a file part sent by its hash is shown with its url."""
        parts = []
        for part in body.get("message_parts", []):
            file = part.get("file") if isinstance(part, dict) else None
            if isinstance(file, dict) and file.get("fileHash") in self.file_urls and not file.get("url"):
                part = {"file": {**file, "url": self.file_urls[file["fileHash"]]}}
            parts.append(part)
        return {
            "actor_type": body.get("actor_type", "user"),
            "actor_id": body.get("actor_id", ""),
            "message_type": body.get("message_type", "normal"),
            "message_source": "api",
            "message_parts": parts,
        }


def _download_url_only(part: Json) -> Json:
    for kind in ("file", "image"):
        body = part.get(kind)
        if isinstance(body, dict) and "url" in body:
            return {kind: {**{k: v for k, v in body.items() if k != "url"}, "download_url": body["url"]}}
    return part


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.width, image.height
    except Exception:  # the simulator answers for anything; zfsync reads only the url
        return 0, 0
