"""What zfsync writes itself, typed from the moment it is decided to the moment it is sent: an agent's reply
on its way to the customer (`ReplyText`, `ReplyAttachment`, `ReplyDocument`, `ResolveNotice`, `Command`)
and zfsync's private notes to the agent (`AgentNote`).

An outbox row keeps one of them as a small JSON object (`encode`), read back by `decode` / `note_of`. The
stored shape is the one rows had before these types existed, so queued rows need no upgrade; a key an
older row lacks reads as its default, never as an error. `RowContent` is what any row carries (a customer's
message or OA staff's as `ZaloContent`, besides these); the store stores and reads it with `row_payload`
and `row_content`, so the rest of zfsync meets rows typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from zfsync.domain.common import Json
from zfsync.domain.rows import F2Z, Kind
from zfsync.domain.zalo import ZaloContent


@dataclass(frozen=True)
class ReplyText:
    """An agent's text, or one part of a long one; ``quote``: the Zalo message it answers (an agent quoted
    it in FreshChat), and ``quote_alias`` the same message's id in the conversation listing, where another."""

    kind: ClassVar[Kind] = Kind.TEXT

    text: str
    agent_id: str = ""
    quote: str = ""
    quote_alias: str = ""


@dataclass(frozen=True)
class ReplyAttachment:
    """An agent's image or file (``is_image``), fetched from ``url`` when it is sent."""

    url: str
    name: str = ""
    content_type: str = ""
    is_image: bool = False
    agent_id: str = ""

    @property
    def kind(self) -> Kind:
        return Kind.IMAGE if self.is_image else Kind.FILE


@dataclass(frozen=True)
class ReplyDocument:
    """A reply too long for Zalo's texts, sent as a document (``sync.long_text = "file"``)."""

    kind: ClassVar[Kind] = Kind.TEXT_FILE

    text: str
    agent_id: str = ""


@dataclass(frozen=True)
class ResolveNotice:
    """The text sent to the customer when an agent resolves (``sync.resolve_notice``)."""

    kind: ClassVar[Kind] = Kind.RESOLVE_NOTICE

    text: str
    agent_id: str = ""


@dataclass(frozen=True)
class Command:
    """An agent's "/zalo NAME ARG" private note: done on Zalo (a card, a tag, an answer), never sent as text."""

    kind: ClassVar[Kind] = Kind.COMMAND

    name: str
    arg: str = ""
    agent_id: str = ""


Reply = ReplyText | ReplyAttachment | ReplyDocument | ResolveNotice | Command


@dataclass(frozen=True)
class AgentNote:
    """A private note to the agent in ``conversation_id``, posted as the agent who wrote the reply it is
    about (``actor_type`` "agent"), or as a bot; ``level`` says which `sync.agent_notes` shows it."""

    kind: ClassVar[Kind] = Kind.FAILURE_NOTE

    text: str
    conversation_id: str
    actor_id: str = ""
    actor_type: str = "bot"
    level: str = ""


def encode(value: Reply | AgentNote) -> Json:
    """The JSON an outbox row keeps of ``value`` (its kind is the row's own column)."""
    if isinstance(value, ReplyAttachment):
        return {"url": value.url, "name": value.name, "content_type": value.content_type, "agent_id": value.agent_id}
    if isinstance(value, Command):
        return {"command": value.name, "arg": value.arg, "agent_id": value.agent_id}
    if isinstance(value, AgentNote):
        return {
            "text": value.text,
            "conversation_id": value.conversation_id,
            "actor_id": value.actor_id,
            "actor_type": value.actor_type,
            "level": value.level,
        }
    if isinstance(value, ReplyText):
        quotes = {"quote": value.quote, **({"quote_alias": value.quote_alias} if value.quote_alias else {})}
        return {"text": value.text, "agent_id": value.agent_id, **(quotes if value.quote else {})}
    return {"text": value.text, "agent_id": value.agent_id}


def _text(payload: Json, key: str) -> str:
    value = payload.get(key)
    return value if isinstance(value, str) else ""


def decode(kind: str, payload: Json) -> Reply:
    """The reply an outbox row to Zalo holds. A kind zfsync does not know (a row from a newer zfsync) reads
    as a text, which is what every reply but an attachment and a command is."""
    agent = _text(payload, "agent_id")
    if kind in (Kind.IMAGE, Kind.FILE):
        url, name, content_type = _text(payload, "url"), _text(payload, "name"), _text(payload, "content_type")
        return ReplyAttachment(url, name, content_type, kind == Kind.IMAGE, agent)
    if kind == Kind.COMMAND:
        return Command(_text(payload, "command"), _text(payload, "arg"), agent)
    if kind == Kind.TEXT_FILE:
        return ReplyDocument(_text(payload, "text"), agent)
    if kind == Kind.RESOLVE_NOTICE:
        return ResolveNotice(_text(payload, "text"), agent)
    return ReplyText(_text(payload, "text"), agent, _text(payload, "quote"), _text(payload, "quote_alias"))


def note_of(payload: Json) -> AgentNote:
    """The note an outbox row of kind ``failure_note`` holds."""
    actor_id = _text(payload, "actor_id")
    actor_type = _text(payload, "actor_type") or ("agent" if actor_id else "bot")
    return AgentNote(
        _text(payload, "text"), _text(payload, "conversation_id"), actor_id, actor_type, _text(payload, "level")
    )


RowContent = ZaloContent | Reply | AgentNote


def row_payload(content: RowContent) -> Json:
    """What a row's payload column keeps of ``content``."""
    return content.payload() if isinstance(content, ZaloContent) else encode(content)


def row_content(direction: str, kind: str, payload: Json) -> RowContent:
    """A row's content from its payload: an agent's reply (to Zalo), a note to the agent, or what a customer
    or OA staff wrote (the history marker's text reads as one too)."""
    if direction == F2Z:
        return decode(kind, payload)
    if kind == Kind.FAILURE_NOTE:
        return note_of(payload)
    return ZaloContent.of(payload)


def preview(value: Reply) -> str:
    """What a note quotes of a reply that did not reach the customer."""
    if isinstance(value, ReplyAttachment):
        return value.name or value.url
    if isinstance(value, Command):
        return f"{value.name} {value.arg}".strip()
    return value.text
