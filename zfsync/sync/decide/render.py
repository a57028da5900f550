"""How a message looks on the other side. Pure functions: no I/O, easy to table-test.

Zalo → FreshChat produces the parts of a FreshChat message (`zfsync.domain.Part`); FreshChat → Zalo
produces the texts and media references the Zalo writer sends. Nothing is dropped: a content type we do
not understand becomes a readable placeholder that carries its raw fields.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from zfsync.domain import (
    REPLACEMENT,
    ButtonPart,
    FcMessage,
    FilePart,
    ImagePart,
    OtherPart,
    Part,
    TextPart,
    VideoPart,
    ZaloContent,
)
from zfsync.domain.outbound import ReplyAttachment, ReplyText
from zfsync.i18n import N_, _

ZALO_TEXT_LIMIT = 2000
MAP_URL = "https://www.google.com/maps?q={lat},{lng}"
IMAGE_TYPES = ("photo", "GIF", "gif", "sticker")
LINK_TYPES = ("link", "links")  # their url, if any, is a web page, not something to copy
AUTHOR_LIMIT = 64  # a group member's name, as the line before their message


ALTERED = N_("(zfsync: characters Zalo sent that no text can hold were replaced by \ufffd)")


def zalo_parts(content: ZaloContent) -> list[Part]:
    """The parts of a FreshChat message for what a Zalo message says; a text the client had to repair
    (invalid code points became U+FFFD) says so. A group member's message starts with their name on a
    line of its own: FreshChat lets only the conversation's own user write in it."""
    parts = [
        TextPart(f"{p.text}\n{_(ALTERED)}") if isinstance(p, TextPart) and REPLACEMENT in p.text else p
        for p in _zalo_parts(content)
    ]
    author = author_line(content)
    if not author:
        return parts
    if parts and isinstance(parts[0], TextPart):
        return [TextPart(f"{author}\n{parts[0].text}"), *parts[1:]]
    return [TextPart(author), *parts]


def _zalo_parts(content: ZaloContent) -> list[Part]:
    kind, text = content.type, content.text
    if kind == "text":
        return [TextPart(text if text.strip() else _("(empty message)"))]
    if kind in IMAGE_TYPES:
        image = content.url or content.thumb
        parts: list[Part] = [ImagePart(image)] if image else []
        caption = content.description or (text if kind == "photo" else "")
        if caption.strip():
            parts.append(TextPart(caption))
        return parts or [TextPart(_("[{kind} without a link]").format(kind=kind))]
    if kind == "voice":
        url = content.url
        return [TextPart(_("🎤 Voice message: {url}").format(url=url) if url else _("🎤 Voice message (no link)"))]
    if kind in LINK_TYPES:
        lines = [t for t in [text, *content.links] if t.strip()]
        return [TextPart("\n".join(lines) if lines else _("[link]"))]
    if kind == "location":
        return [TextPart(location_text(content.location, text))]
    return [TextPart(unknown_text(content))]


def author_line(content: ZaloContent) -> str:
    """The line naming the group member who wrote a message ("" : not a group member's)."""
    return f"{one_line(content.author_name or content.author_id, AUTHOR_LIMIT)}:" if content.author_id else ""


def location_text(location: str, text: str = "") -> str:
    """Both numbers, labelled, plus a map link; a bare "a,b" string is also shown as Zalo sent it, since
    which number is which is only inferred for it (`_coordinates`)."""
    lat, lng = _coordinates(location)
    if lat is None:
        return _("📍 Location: {location}").format(location=location).strip()
    prefix = f"{text}\n" if text.strip() else ""
    raw = _(" (Zalo sent {raw})").format(raw=repr(location)) if not location.lstrip().startswith("{") else ""
    shown = _("📍 Location: latitude {lat}, longitude {lng}").format(lat=lat, lng=lng)
    return f"{prefix}{shown}{raw}\n{MAP_URL.format(lat=lat, lng=lng)}"


def file_label(content: ZaloContent) -> str:
    """The text beside a file copied from a message of a type the listing docs omit (file, video, audio...)."""
    icons = {"file": "📎", "video": "🎬", "audio": "🔊", "business card": "👤"}
    caption = " ".join(t for t in (content.text, content.description) if t.strip())
    return f"{icons.get(content.type, '📎')} Zalo {content.type}" + (f": {caption}" if caption else "")


def unknown_text(content: ZaloContent) -> str:
    """A placeholder for a type zfsync does not know, carrying every field Zalo sent with it."""
    named = {k: v for k, v in content.payload().items() if v and k not in ("format", "extra")}
    fields = {**named, **content.extra}
    return (
        _("[Zalo {type} message: zfsync cannot show this type yet]").format(type=content.type)
        + "\n"
        + json.dumps(fields, ensure_ascii=False, sort_keys=True)
    )


def oa_note_text(content: ZaloContent) -> str:
    """A message OA staff typed in Zalo OA Manager, shown to agents as a private note."""
    parts = zalo_parts(content)
    shown = "\n".join(p.text for p in parts if isinstance(p, TextPart))
    images = [p.url for p in parts if isinstance(p, ImagePart)]
    body = "\n".join(x for x in [shown, *images] if x)
    return _("[Sent from Zalo OA Manager by OA staff]") + f"\n{body}"


def part_text(part: Part) -> str:
    """What a part that is not sent as an attachment says, as text: buttons by their labels (and URLs),
    groups by what they hold, a kind zfsync does not know by the text it carries."""
    if isinstance(part, TextPart | OtherPart):
        return part.text
    if isinstance(part, ImagePart | VideoPart):
        return part.url
    if isinstance(part, FilePart):
        return f"{part.name or 'file'}: {part.url}".strip()
    if isinstance(part, ButtonPart):
        return f"{part.label}: {part.url}" if part.url else f"• {part.label}"
    return "\n".join(t for t in (part_text(p) for p in part.parts) if t.strip())


def attachments_without_url(message: FcMessage) -> list[str]:
    """Names of the message's files and images that have no url yet (FreshChat adds it after scanning)."""
    waiting = [p for p in message.parts if isinstance(p, ImagePart | FilePart) and not p.url]
    return [p.name or ("file" if isinstance(p, FilePart) else "image") for p in waiting]


def _waiting(part: Part) -> bool:
    return isinstance(part, ImagePart | FilePart) and not part.url


def agent_pieces(message: FcMessage) -> list[ReplyText | ReplyAttachment]:
    """An agent's message as what Zalo can carry, in order: a `ReplyText` for each run of text and buttons,
    a `ReplyAttachment` for each image and file to copy across. The buttons and quick replies it offered
    (``reply_parts``) follow as text: Zalo's customer-service texts have no buttons, so the customer reads
    the choices. The pieces carry no agent yet: the reply's rows are signed with it (`replies`)."""
    pieces: list[ReplyText | ReplyAttachment] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(line for line in lines if line.strip())
        if text.strip():
            pieces.append(ReplyText(text))
        lines.clear()

    for part in (*message.parts, *message.reply_parts):
        if isinstance(part, ImagePart) and part.url:
            flush()
            pieces.append(ReplyAttachment(part.url, part.name, is_image=True))
        elif isinstance(part, FilePart) and part.url:
            flush()
            pieces.append(ReplyAttachment(part.url, part.name, part.content_type))
        elif not _waiting(part):
            lines.append(part_text(part))
        # An attachment without a url has nothing to send; the reader tells the agent (missing_attachment_note).
    flush()
    return pieces


def fingerprint(parts: tuple[Part, ...] | list[Part]) -> str:
    """What identifies a post's content when it is looked for again: its texts, image URLs and file names."""
    texts = [p.text for p in parts if isinstance(p, TextPart)]
    images = [p.url for p in parts if isinstance(p, ImagePart)]
    files = [p.name for p in parts if isinstance(p, FilePart)]
    return json.dumps([texts, images, files], ensure_ascii=False)


def part_kinds(parts: tuple[Part, ...]) -> list[str]:
    """The kinds of a message's parts, for a note that says what could not be sent."""
    names = {TextPart: "text", ImagePart: "image", FilePart: "file", VideoPart: "video", ButtonPart: "button"}
    return sorted({p.kind if isinstance(p, OtherPart) else names.get(type(p), "collection") for p in parts})


def one_line(value: str, limit: int) -> str:
    """A value from outside (a name, a tag) as one plain line: NFC, control and format characters (a
    newline, a right-to-left override) gone, runs of spaces one, cut on a word to ``limit`` characters."""
    text = unicodedata.normalize("NFC", value)
    text = "".join(" " if c.isspace() else c for c in text if c.isspace() or unicodedata.category(c)[0] != "C")
    return cut_on_word(" ".join(text.split()), limit)


def cut_on_word(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: whole, or cut after a word with "…" (a word longer than
    the room is cut where the room ends)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if not text[limit - 1].isspace() and not head[-1:].isspace():  # the cut falls in a word: leave it out
        words = head.rsplit(None, 1)
        head = words[0] if len(words) == 2 else head
    return head.rstrip(" \t\n,;:-") + "…"


def long_text_preview(text: str, size: int = 300) -> str:
    """The text message that goes before a long reply sent as a document (``sync.long_text = "file"``)."""
    head = text if len(text) <= size else text[:size].rsplit(" ", 1)[0] + " …"
    return f"{head}\n\n(Nội dung đầy đủ trong tệp đính kèm / full message in the attached file)"


def split_text(text: str, limit: int = ZALO_TEXT_LIMIT) -> list[str]:
    """Split at paragraph, then sentence, then word boundaries into chunks of at most ``limit`` characters."""
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    for piece in _pieces(text, limit, [r"\n\s*\n", r"(?<=[.!?…])\s+", r"\s+"]):
        if chunks and len(chunks[-1]) + 2 + len(piece) <= limit:
            sep = "\n\n" if "\n" not in piece[:1] else ""
            chunks[-1] = chunks[-1] + sep + piece
        else:
            chunks.append(piece)
    return chunks


def _pieces(text: str, limit: int, separators: list[str]) -> list[str]:
    if len(text) <= limit:
        return [text]
    if not separators:
        return [text[i : i + limit] for i in range(0, len(text), limit)]  # one unbroken run: hard cut
    pieces: list[str] = []
    current = ""
    joiner = "\n\n" if separators[0].startswith(r"\n") else " "
    for token in re.split(separators[0], text):
        token = token.strip()
        if not token:
            continue
        candidate = f"{current}{joiner}{token}" if current else token
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        if len(token) > limit:
            pieces.extend(_pieces(token, limit, separators[1:]))
            current = ""
        else:
            current = token
    if current:
        pieces.append(current)
    return pieces


def _coordinates(location: str) -> tuple[float | None, float | None]:
    try:
        data: Any = json.loads(location)
    except ValueError:
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", location)[:2]]
        if len(numbers) < 2:
            return None, None
        first, second = numbers
        # Zalo's docs call the field "longitude/latitude". A value beyond ±90 can only be a longitude
        # (all of Vietnam lies near 105° E, 8-23° N), which settles it; otherwise follow the docs.
        if abs(second) > 90 >= abs(first):
            return first, second
        return second, first
    if isinstance(data, dict):
        lat = data.get("latitude", data.get("lat"))
        lng = data.get("longitude", data.get("lng", data.get("long")))
        try:
            return float(lat), float(lng)  # type: ignore[arg-type]  # None and odd values land below
        except (TypeError, ValueError):
            return None, None
    return None, None


def _s(value: Any) -> str:
    return "" if value is None else str(value)
