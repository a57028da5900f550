"""FreshChat's side in zfsync's words: users, messages and the parts they are made of, typed both ways.

A message is a sequence of parts. Reading, `zfsync.sides.freshchat.wire` turns each of FreshChat's part kinds
into one of these (a collection or a template into a `GroupPart` of what it holds, a kind zfsync does not
know into an `OtherPart` with the text it carries); writing, it turns them back. Nothing else builds or
reads FreshChat's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from zfsync.domain.common import Json


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    url: str  # "" while FreshChat still scans an agent's upload
    name: str = ""


@dataclass(frozen=True)
class FilePart:
    name: str
    url: str = ""  # "" while FreshChat still scans an agent's upload
    content_type: str = ""
    size: int = 0
    file_hash: str = ""  # an uploaded file's hash, by which a posted part names it


@dataclass(frozen=True)
class VideoPart:
    url: str


@dataclass(frozen=True)
class ButtonPart:
    """A button an agent or bot offered: a link (``url``), or a quick reply or callback (no url)."""

    label: str
    url: str = ""


@dataclass(frozen=True)
class GroupPart:
    """A collection, or a template's sections: the parts it holds, in order."""

    parts: tuple[Part, ...]


@dataclass(frozen=True)
class OtherPart:
    """A kind of part zfsync does not know, with the text it carries ("" if none)."""

    kind: str
    text: str = ""


Part = TextPart | ImagePart | FilePart | VideoPart | ButtonPart | GroupPart | OtherPart


_KINDS: dict[str, type] = {
    "text": TextPart,
    "image": ImagePart,
    "file": FilePart,
    "video": VideoPart,
    "button": ButtonPart,
}


def part_payload(part: Part) -> Json:
    """A part in the form a queued row keeps it (zfsync's own, not FreshChat's)."""
    if isinstance(part, GroupPart):
        return {"kind": "group", "parts": [part_payload(p) for p in part.parts]}
    if isinstance(part, OtherPart):
        return {"kind": "other", "of": part.kind, "text": part.text}
    kind = next(name for name, cls in _KINDS.items() if isinstance(part, cls))
    return {"kind": kind, **vars(part)}


def part_of(payload: Json) -> Part:
    """The part a `part_payload` holds."""
    kind = str(payload.get("kind") or "")
    if kind == "group":
        return GroupPart(tuple(part_of(p) for p in payload.get("parts") or ()))
    if kind not in _KINDS:
        return OtherPart(str(payload.get("of") or kind), str(payload.get("text") or ""))
    part: Part = _KINDS[kind](**{k: v for k, v in payload.items() if k != "kind"})
    return part


@dataclass(frozen=True)
class FcAgent:
    """An agent as ``GET /v2/agents/{id}`` names them."""

    id: str
    first_name: str
    last_name: str = ""


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
    parts: tuple[Part, ...] = ()
    meta: Json = field(default_factory=dict, compare=False)
    event: str = ""  # "" for a message someone wrote; else RESOLVED, REOPENED or OTHER_EVENT
    reply_parts: tuple[Part, ...] = ()  # buttons and quick replies an agent or bot offered with the message
    in_reply_to: str = ""  # the id of the message this one quotes, if any

    def text(self) -> str:
        return "\n".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass(frozen=True)
class FcOutgoing:
    """A message zfsync posts into a FreshChat conversation."""

    parts: tuple[Part, ...]
    actor_type: str = "user"
    actor_id: str = ""
    message_type: str = "normal"


@dataclass(frozen=True)
class FcNewUser:
    """A FreshChat user as zfsync writes it. Empty values are left out of what is sent, so nothing an
    agent typed is blanked out."""

    reference_id: str
    first_name: str
    avatar_url: str = ""
    properties: tuple[tuple[str, str], ...] = ()
    phone: str = ""
    email: str = ""
