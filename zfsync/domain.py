"""Small frozen objects both API clients translate to and from.

Terminology, used the same way everywhere:
- *contact*: one Zalo user who wrote to the OA, and the FreshChat user that stands for them;
- *conversation*: the FreshChat conversation that currently carries a contact's messages;
- *message id*: the id a side gave a message; Zalo ids are strings (they can exceed 2^53);
- *direction*: ``z2f`` (customer to agent) or ``f2z`` (agent to customer);
- *cursor*: how far a side has been read, stored next to the rows it covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

Json = dict[str, Any]

REPLACEMENT = "\ufffd"
_INVALID_CODE_POINTS = re.compile("[\ud800-\udfff]")  # lone surrogates: JSON allows them, UTF-8 cannot hold them


def safe_text(value: Any) -> Any:
    """``value`` with every invalid code point in its strings replaced by U+FFFD, recursively."""
    if isinstance(value, str):
        return _INVALID_CODE_POINTS.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {safe_text(k): safe_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_text(v) for v in value]
    return value


class Direction(StrEnum):
    Z2F = "z2f"  # a Zalo customer's message, to FreshChat
    F2Z = "f2z"  # an agent's reply, to Zalo


Z2F, F2Z = Direction.Z2F, Direction.F2Z


@dataclass(frozen=True)
class ZaloContent:
    """What a Zalo message says, in zfsync's words: what a customer's (or OA staff's) row stores in the
    outbox, and all that rendering and media copying read. ``extra`` holds the fields Zalo sent that have
    no name here (a business card's phone, a type Zalo added), so a placeholder can still show them."""

    type: str
    text: str = ""
    url: str = ""
    thumb: str = ""
    description: str = ""
    links: tuple[str, ...] = ()
    location: str = ""  # as Zalo sent it: "lat,lng", "lng,lat" or a JSON object (`render.location_text`)
    file_name: str = ""
    extra: Json = field(default_factory=dict, compare=False)

    FORMAT = "zalo-content-1"  # under "format"; a payload without it is a row as listed (`app.upgrade_payloads`)

    def payload(self) -> Json:
        """The outbox payload: every field, links as a list, and the format tag."""
        return {
            "format": self.FORMAT,
            "type": self.type,
            "text": self.text,
            "url": self.url,
            "thumb": self.thumb,
            "description": self.description,
            "links": list(self.links),
            "location": self.location,
            "file_name": self.file_name,
            "extra": self.extra,
        }

    @classmethod
    def of(cls, payload: Json) -> ZaloContent:
        """The content a payload of `payload()` holds (other keys, such as copied parts, are ignored)."""
        return cls(
            type=str(payload.get("type") or "unknown"),
            text=str(payload.get("text") or ""),
            url=str(payload.get("url") or ""),
            thumb=str(payload.get("thumb") or ""),
            description=str(payload.get("description") or ""),
            links=tuple(str(x) for x in payload.get("links") or ()),
            location=str(payload.get("location") or ""),
            file_name=str(payload.get("file_name") or ""),
            extra=dict(payload.get("extra") or {}),
        )

    @classmethod
    def stored(cls, payload: Json) -> bool:
        return payload.get("format") == cls.FORMAT


FEED = "feed"  # Zalo's OA-wide listing, listrecentchat
CONVERSATION = "conversation"  # one user's listing


@dataclass(frozen=True)
class ZaloMessage:
    """One row of Zalo's ``listrecentchat`` or ``conversation``; ``user_id`` is always the customer.
    ``listing`` says which of the two showed it: they may show one message under two ids (`sync.aliases`)."""

    message_id: str
    user_id: str
    from_oa: bool  # src == 0: sent by the OA (by us, or by staff in OA Manager)
    time_ms: int
    content: ZaloContent
    user_name: str = ""
    user_avatar: str = ""
    listing: str = ""  # FEED or CONVERSATION

    @property
    def key(self) -> tuple[int, str]:
        """Sort key and cursor value: Zalo times can tie to the millisecond, so the id breaks ties."""
        return (self.time_ms, self.message_id)

    @property
    def type(self) -> str:
        return self.content.type

    @property
    def text(self) -> str:
        return self.content.text


@dataclass(frozen=True)
class ZaloProfile:
    user_id: str
    display_name: str
    avatar: str = ""


@dataclass(frozen=True)
class ZaloTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float


@dataclass(frozen=True)
class FcUser:
    id: str
    reference_id: str


# What a FreshChat message that no person typed stands for (`FcMessage.event`).
RESOLVED = "resolved"
REOPENED = "reopened"
OTHER_EVENT = "system"  # an assignment or any other marker: never sent anywhere


def reference_id(zalo_user_id: str) -> str:
    """The ``reference_id`` of the FreshChat user standing for a Zalo user: how zfsync finds them again."""
    return f"zalo-{zalo_user_id}"


@dataclass(frozen=True)
class FcMessage:
    id: str
    conversation_id: str
    actor_type: str  # user, agent, bot, system
    actor_id: str
    message_type: str  # normal, private, system
    created_time: datetime
    parts: tuple[Json, ...] = ()
    meta: Json = field(default_factory=dict, compare=False)
    event: str = ""  # "" for a message someone wrote; else RESOLVED, REOPENED or OTHER_EVENT
    reply_parts: tuple[Json, ...] = ()  # buttons and quick replies an agent or bot offered with the message

    def text(self) -> str:
        return "\n".join(p["text"]["content"] for p in self.parts if isinstance(p.get("text"), dict))


@dataclass(frozen=True)
class FcOutgoing:
    """A message zfsync posts into a FreshChat conversation."""

    parts: tuple[Json, ...]
    actor_type: str = "user"
    actor_id: str = ""
    message_type: str = "normal"


@dataclass(frozen=True)
class FcNewUser:
    reference_id: str
    first_name: str
    avatar_url: str = ""
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Media:
    """A downloaded attachment, held in memory: every size is capped before it gets here."""

    data: bytes = field(repr=False)
    content_type: str
    name: str

    @property
    def size(self) -> int:
        return len(self.data)


class Kind(StrEnum):
    """The kinds of outbox row zfsync itself makes. A customer's row is of the Zalo type it was listed with
    (text, photo, sticker, link, location, voice, file ...: Zalo adds types, so those stay open strings)."""

    OA_NOTE = "oa_note"  # OA staff wrote to the customer from OA Manager: a private note for the agent
    FAILURE_NOTE = "failure_note"  # a private note telling the agent a reply did not reach the customer
    TEXT = "text"  # an agent's text (or one part of a long one)
    IMAGE = "image"  # an agent's image
    FILE = "file"  # an agent's file
    TEXT_FILE = "text_file"  # an agent's long text, sent as a document
    RESOLVE_NOTICE = "resolve_notice"  # the text sent to the customer when an agent resolves (sync.resolve_notice)


class Status(StrEnum):
    """Where one outbox row (one message, or one part of a split message) stands."""

    PENDING = "pending"  # waiting to be sent
    SENDING = "sending"  # claimed; if found again, the outcome of the last attempt is unknown: reconcile first
    SENT = "sent"
    FAILED = "failed"  # gave up; listed by `zfsync failed`, can be retried or skipped
    SKIPPED = "skipped"  # deliberately not sent (echo, skipped by an operator)


OPEN_STATES = (Status.PENDING, Status.SENDING)


class SideHealth(StrEnum):
    """The outcome of a side's last poll, as `zfsync status` and the metrics show it."""

    OK = "OK"
    TRANSIENT_ERROR = "TRANSIENT_ERROR"  # the side or the network failed for a while: retried on its own
    RATE_LIMITED = "RATE_LIMITED"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"  # a human must act: the token or the API key
    PERMANENT_ERROR = "PERMANENT_ERROR"


@dataclass(frozen=True)
class StoredTokens:
    """Zalo's token pair as the store keeps it: when the access token expires, and why the pair is dead
    (a refused refresh) if it is."""

    access_token: str
    refresh_token: str
    expires_at: float
    dead_reason: str = ""


@dataclass(frozen=True)
class RecordedRow:
    """A Zalo message zfsync recorded, as matching one listing's row against the other's needs it."""

    zalo_id: str  # the id it was recorded under
    listing: str  # which listing showed it then ("" for rows recorded before zfsync kept it)
    from_oa: bool
    content: ZaloContent
    time_ms: int


# --- reading Zalo's feed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """What the feed held at the first start: history, never bridged."""

    time_ms: int
    ids: frozenset[str]  # the rows at exactly `time_ms` that were history

    def holds(self, row: ZaloMessage) -> bool:
        if row.time_ms < 0:
            return False
        return row.time_ms < self.time_ms or (row.time_ms == self.time_ms and row.message_id in self.ids)


@dataclass(frozen=True)
class Mark:
    """Where the last complete cycle left the feed: everything at or below these rows was handled."""

    time_ms: int
    ids: frozenset[str]


@dataclass(frozen=True)
class Resume:
    """A feed scan stopped at its page cap: the next cycle reads on from ``offset`` down to ``floor``."""

    offset: int
    floor: Mark


@dataclass(frozen=True)
class FeedCursor:
    """Where reading Zalo's feed stands; ``mark`` is None before the first start (no baseline yet).
    ``owed``: users a cycle cut short still owes a catch-up from their own conversation."""

    mark: Mark | None
    baseline: Baseline
    resume: Resume | None
    owed: frozenset[str] = frozenset()


# --- what the store keeps: frozen values, so nothing outside the store can change a row behind its back ---


@dataclass(frozen=True)
class Contact:
    """A Zalo user and the FreshChat user that stands for them."""

    id: int
    zalo_user_id: str
    display_name: str
    avatar_url: str
    fc_user_id: str | None
    first_seen_ms: int
    last_inbound_ms: int  # the customer's last message: Zalo's 7-day window
    cursor_time_ms: int
    cursor_id: str
    profile_checked_at: float


@dataclass(frozen=True)
class Conversation:
    """A FreshChat conversation carrying one contact's messages; ``is_current`` marks the one posted to."""

    id: int
    contact_id: int
    fc_conversation_id: str
    is_current: bool
    resolved: bool
    created_at: float
    last_activity_at: float
    next_poll_at: float
    cursor_id: str  # newest FreshChat message already read
    cursor_time: float


@dataclass(frozen=True)
class OutboxRow:
    """One message (or one part of a split one) to copy to the other side, and how far it got."""

    id: int
    direction: str  # Z2F or F2Z
    source_id: str
    part: int
    contact_id: int
    kind: str
    payload: Json  # what to send, already parsed; a writer that changes it saves a copy
    source_time: float  # epoch seconds at the source: the delivery order per contact
    status: str
    dest_id: str | None
    conversation_id: str | None
    attempts: int
    claimed_at: float | None
