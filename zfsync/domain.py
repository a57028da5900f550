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


Z2F = "z2f"
F2Z = "f2z"


@dataclass(frozen=True)
class ZaloMessage:
    """One row of Zalo's ``listrecentchat`` or ``conversation``; ``user_id`` is always the customer."""

    message_id: str
    user_id: str
    from_oa: bool  # src == 0: sent by the OA (by us, or by staff in OA Manager)
    time_ms: int
    type: str
    text: str = ""
    user_name: str = ""
    user_avatar: str = ""
    url: str = ""
    thumb: str = ""
    description: str = ""
    links: tuple[str, ...] = ()
    location: str = ""
    raw: Json = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[int, str]:
        """Sort key and cursor value: Zalo times can tie to the millisecond, so the id breaks ties."""
        return (self.time_ms, self.message_id)


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
