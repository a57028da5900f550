"""FreshChat's JSON, read and written: the bodies zfsync sends, and the users, messages and markers it reads
(research/freshchat_api.md). Shapes are held to recorded payloads in tests/contract/recorded/."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from zfsync.domain import OTHER_EVENT, REOPENED, RESOLVED, FcMessage, FcNewUser, FcOutgoing, Json
from zfsync.errors import InvalidResponse


def first_of(body: Any, keys: tuple[str, ...], wrappers: tuple[str, ...]) -> str:
    """The first non-empty value under any of ``keys``, at the root or inside one of ``wrappers``."""
    if not isinstance(body, dict):
        return ""
    places = [body] + [body[w] for w in wrappers if isinstance(body.get(w), dict)]
    for place in places:
        for key in keys:
            if place.get(key):
                return str(place[key])
    return ""


def list_under(body: Any, key: str, endpoint: str) -> list[Any]:
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


def user_body(user: FcNewUser) -> Json:
    body: Json = {"reference_id": user.reference_id, "first_name": user.first_name}
    if user.avatar_url:
        body["avatar"] = {"url": user.avatar_url}
    if user.properties:
        body["properties"] = [{"name": k, "value": v} for k, v in user.properties]
    return body


def message_body(message: FcOutgoing, user_id: str) -> Json:
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


def read_message(raw: Json, conversation_id: str) -> FcMessage:
    parts = list_of(raw.get("message_parts"))
    meta = dict_of(raw.get("meta_data"))
    reply_parts = list_of(raw.get("reply_parts"))
    return FcMessage(
        id=str(raw["id"]),
        conversation_id=str(raw.get("conversation_id") or conversation_id),
        actor_type=str(raw.get("actor_type") or "").lower(),
        actor_id=str(raw.get("actor_id") or ""),
        message_type=str(raw.get("message_type") or "normal").lower(),
        created_time=parse_time(raw.get("created_time")),
        parts=tuple(p for p in parts if isinstance(p, dict)),
        reply_parts=tuple(p for p in reply_parts if isinstance(p, dict)),
        meta=meta,
        event=event_of(raw, meta),
    )


def event_of(raw: Json, meta: Json) -> str:
    """What a marker message stands for; "" for a message someone wrote.

    Freshworks' own fixtures show a resolve as an *agent* message with ``message_source`` system,
    ``meta_data.isResolved`` and no ``message_type`` (or ``normal``). The casing of ``message_source`` and
    the type of the flag differ between sources, so both are accepted (tests/contract/recorded/README.md).
    Only the marker flags Freshworks' interfaces name make a marker; their library treats any ``meta_data``
    as one, but ``meta_data`` is a free object, and an agent's reply that carried some other key would then
    vanish without a word. So a message is a marker if it carries a known flag or says it is a system one.
    """
    if flag_of(meta.get("isResolved")):
        return RESOLVED
    if flag_of(meta.get("isReopen")) or flag_of(meta.get("isReopened")):
        return REOPENED
    source = str(raw.get("message_source") or "").lower()
    kind = str(raw.get("message_type") or "").lower()
    actor = str(raw.get("actor_type") or "").lower()
    if MARKER_FLAGS & set(meta) or "system" in (source, kind, actor):
        return OTHER_EVENT
    return ""


MARKER_FLAGS = frozenset({"isResolved", "isReopen", "isReopened"})


def flag_of(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True or (isinstance(value, int | float) and value == 1)


def with_times(messages: list[FcMessage], raws: list[Json]) -> list[FcMessage]:
    """A message without a usable time takes its newer neighbour's, so it sorts where the page put it."""
    known = [time_or_none(raw.get("created_time")) for raw in raws]
    fixed: list[FcMessage] = []
    for i, message in enumerate(messages):
        if known[i] is None:
            neighbours = [t for t in known[:i][::-1] + known[i + 1 :] if t is not None]
            message = replace(message, created_time=neighbours[0] if neighbours else message.created_time)
        fixed.append(message)
    return fixed


def time_or_none(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            return None
    return None


def parse_time(value: Any) -> datetime:
    """FreshChat's ISO-8601 times; a missing or odd one reads as 'now' so the message is never skipped."""
    return time_or_none(value) or datetime.now(UTC)


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dict_of(value: Any) -> Json:
    return value if isinstance(value, dict) else {}
