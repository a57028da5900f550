"""FreshChat's JSON, read and written: the bodies zfsync sends, and the users, messages and markers it reads
(research/freshchat_api.md). Shapes are held to recorded payloads in tests/contract/recorded/."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from zfsync.domain import (
    OTHER_EVENT,
    REOPENED,
    RESOLVED,
    ButtonPart,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    FilePart,
    GroupPart,
    ImagePart,
    Json,
    Media,
    OtherPart,
    Part,
    TextPart,
    VideoPart,
)
from zfsync.domain.errors import AuthError, ConversationNotLatest, InvalidResponse, PermanentError, TransientError


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


def total_pages(body: Any) -> int:
    """How many pages a list answer says there are (1 when it does not say)."""
    pagination = body.get("pagination") if isinstance(body, dict) else None
    total = pagination.get("total_pages") if isinstance(pagination, dict) else None
    return total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else 1


def user_body(user: FcNewUser) -> Json:
    body: Json = {"reference_id": user.reference_id, "first_name": user.first_name}
    if user.avatar_url:
        body["avatar"] = {"url": user.avatar_url}
    if user.phone:
        body["phone"] = user.phone
    if user.email:
        body["email"] = user.email
    if user.properties:
        body["properties"] = [{"name": k, "value": v} for k, v in user.properties]
    return body


def part_body(part: Part) -> Json:
    """A part as FreshChat's ``message_parts`` carry it."""
    if isinstance(part, TextPart):
        return {"text": {"content": part.text}}
    if isinstance(part, ImagePart):
        return {"image": {"url": part.url}}
    if isinstance(part, FilePart):
        body: Json = {"name": part.name, "file_size_in_bytes": part.size, "content_type": part.content_type}
        if part.file_hash:
            body["fileHash"] = part.file_hash
        if part.url:
            body["url"] = part.url
        return {"file": body}
    if isinstance(part, VideoPart):
        return {"video": {"url": part.url}}
    if isinstance(part, ButtonPart):
        return (
            {"url_button": {"label": part.label, "url": part.url}}
            if part.url
            else {"quick_reply_button": {"label": part.label}}
        )
    if isinstance(part, GroupPart):
        return {"collection": {"sub_parts": [part_body(p) for p in part.parts]}}
    return {"text": {"content": part.text}}  # an OtherPart is posted as what it says


def read_part(raw: Json) -> Part:
    """One of FreshChat's parts; ``download_url`` stands where ``url`` is absent (a source reads either)."""
    for kind, body in raw.items():
        if not isinstance(body, dict):
            continue
        link = _s(body.get("url") or body.get("download_url"))
        if kind == "text":
            return TextPart(_s(body.get("content")))
        if kind == "image":
            return ImagePart(link, _s(body.get("name")))
        if kind == "file":
            size = body.get("file_size_in_bytes")
            return FilePart(
                _s(body.get("name")),
                link,
                _s(body.get("content_type") or body.get("file_content_type")),
                size if isinstance(size, int) else 0,
            )
        if kind == "video":
            return VideoPart(link)
        if kind == "url_button":
            return ButtonPart(_s(body.get("label")), _s(body.get("url")))
        if kind in ("quick_reply_button", "callback"):
            return ButtonPart(_s(body.get("label")))
        if kind == "collection":
            return GroupPart(tuple(read_part(p) for p in list_of(body.get("sub_parts")) if isinstance(p, dict)))
        if kind == "template_content":
            sections = [s for s in list_of(body.get("sections")) if isinstance(s, dict)]
            held = [p for section in sections for p in list_of(section.get("parts")) if isinstance(p, dict)]
            return GroupPart(tuple(read_part(p) for p in held))
        return OtherPart(kind, _carried_text(body))
    return OtherPart(next(iter(raw), "empty"))


def _carried_text(body: Json) -> str:
    for key in ("content", "text", "label", "title", "url"):
        if isinstance(body.get(key), str) and body[key].strip():
            return str(body[key])
    return ""


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def message_body(message: FcOutgoing, user_id: str) -> Json:
    body: Json = {
        "message_parts": [part_body(p) for p in message.parts],
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
    quoted = dict_of(raw.get("in_reply_to")).get("message_id")
    return FcMessage(
        id=str(raw["id"]),
        conversation_id=str(raw.get("conversation_id") or conversation_id),
        actor_type=str(raw.get("actor_type") or "").lower(),
        actor_id=str(raw.get("actor_id") or ""),
        message_type=str(raw.get("message_type") or "normal").lower(),
        created_time=parse_time(raw.get("created_time")),
        parts=tuple(read_part(p) for p in parts if isinstance(p, dict)),
        reply_parts=tuple(read_part(p) for p in reply_parts if isinstance(p, dict)),
        meta=meta,
        event=event_of(raw, meta),
        in_reply_to=_s(quoted) if quoted else "",
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


def uploaded_file(body: Any, media: Media, endpoint: str) -> FilePart:
    """A file upload's answer: the part that carries the file. Its field names are uncertain (research §5),
    so several spellings are accepted. A file the antivirus scan has not cleared yet cannot be sent: that
    is reported as transient, to try again later."""
    wrappers = ("file", "data")
    file_hash = first_of(body, ("file_hash", "fileHash", "hash"), wrappers)
    url = first_of(body, ("url", "file_url", "download_url"), wrappers)
    if not file_hash and not url:
        raise InvalidResponse("file upload answered without a hash or url", side="freshchat", endpoint=endpoint)
    security = first_of(body, ("file_security_status", "security_status"), wrappers)
    if security and "PENDING" in security.upper():
        raise TransientError("uploaded file is still being scanned", side="freshchat", endpoint=endpoint)
    return FilePart(
        name=first_of(body, ("file_name", "fileName", "name"), wrappers) or media.name,
        url=url,
        content_type=first_of(body, ("file_content_type", "content_type", "contentType"), wrappers)
        or media.content_type,
        size=media.size,
        file_hash=file_hash,
    )


def configuration_of(body: Any) -> Json:
    """The account's configuration: one source sees it wrapped in ``configuration``, another at the root."""
    if isinstance(body, dict) and isinstance(body.get("configuration"), dict):
        return body["configuration"]
    return body if isinstance(body, dict) else {}


def error_of(status: int, body: Any, endpoint: str) -> Exception:
    """A refusal (HTTP 4xx) as zfsync's errors: the key named wrong, a post into an older conversation,
    or a request that fails for good."""
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
