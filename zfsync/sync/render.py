"""How a message looks on the other side. Pure functions: no I/O, easy to table-test.

Zalo → FreshChat produces FreshChat ``message_parts``; FreshChat → Zalo produces the texts and media
references the Zalo writer sends. Nothing is dropped: a content type we do not understand becomes a
readable placeholder that carries its raw fields.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from zfsync.domain import REPLACEMENT, FcMessage, Json, ZaloContent

ZALO_TEXT_LIMIT = 2000
MAP_URL = "https://www.google.com/maps?q={lat},{lng}"
IMAGE_TYPES = ("photo", "GIF", "gif", "sticker")
LINK_TYPES = ("link", "links")  # their url, if any, is a web page, not something to copy


def text_part(text: str) -> Json:
    return {"text": {"content": text}}


ALTERED = "(zfsync: characters Zalo sent that no text can hold were replaced by \ufffd)"


def zalo_parts(content: ZaloContent) -> list[Json]:
    """FreshChat message parts for what a Zalo message says; a text the client had to repair (invalid code
    points became U+FFFD) says so."""
    parts = _zalo_parts(content)
    for part in parts:
        text = part.get("text")
        if isinstance(text, dict) and REPLACEMENT in str(text.get("content")):
            text["content"] = f"{text['content']}\n{ALTERED}"
    return parts


def _zalo_parts(content: ZaloContent) -> list[Json]:
    kind, text = content.type, content.text
    if kind == "text":
        return [text_part(text if text.strip() else "(empty message)")]
    if kind in IMAGE_TYPES:
        image = content.url or content.thumb
        parts: list[Json] = [{"image": {"url": image}}] if image else []
        caption = content.description or (text if kind == "photo" else "")
        if caption.strip():
            parts.append(text_part(caption))
        return parts or [text_part(f"[{kind} without a link]")]
    if kind == "voice":
        url = content.url
        return [text_part(f"🎤 Voice message: {url}" if url else "🎤 Voice message (no link)")]
    if kind in LINK_TYPES:
        lines = [t for t in [text, *content.links] if t.strip()]
        return [text_part("\n".join(lines) if lines else "[link]")]
    if kind == "location":
        return [text_part(location_text(content.location, text))]
    return [text_part(unknown_text(content))]


def location_text(location: str, text: str = "") -> str:
    """Both numbers, labelled, plus a map link; a bare "a,b" string is also shown as Zalo sent it, since
    which number is which is only inferred for it (`_coordinates`)."""
    lat, lng = _coordinates(location)
    if lat is None:
        return f"📍 Location: {location}".strip()
    prefix = f"{text}\n" if text.strip() else ""
    raw = f" (Zalo sent {location!r})" if not location.lstrip().startswith("{") else ""
    return f"{prefix}📍 Location: latitude {lat}, longitude {lng}{raw}\n{MAP_URL.format(lat=lat, lng=lng)}"


def file_label(content: ZaloContent) -> str:
    """The text beside a file copied from a message of a type the listing docs omit (file, video, audio...)."""
    icons = {"file": "📎", "video": "🎬", "audio": "🔊", "business card": "👤"}
    caption = " ".join(t for t in (content.text, content.description) if t.strip())
    return f"{icons.get(content.type, '📎')} Zalo {content.type}" + (f": {caption}" if caption else "")


def unknown_text(content: ZaloContent) -> str:
    """A placeholder for a type zfsync does not know, carrying every field Zalo sent with it."""
    named = {k: v for k, v in content.payload().items() if v and k not in ("format", "extra")}
    fields = {**named, **content.extra}
    return f"[Zalo {content.type} message: zfsync cannot show this type yet]\n" + json.dumps(
        fields, ensure_ascii=False, sort_keys=True
    )


def oa_note_text(content: ZaloContent) -> str:
    """A message OA staff typed in Zalo OA Manager, shown to agents as a private note."""
    parts = zalo_parts(content)
    shown = "\n".join(p["text"]["content"] for p in parts if "text" in p)
    images = [p["image"]["url"] for p in parts if "image" in p]
    body = "\n".join(x for x in [shown, *images] if x)
    return f"[Sent from Zalo OA Manager by OA staff]\n{body}"


def _link(body: Json) -> str:
    """Where an attachment part points: ``url``, or ``download_url`` where a source gives only that."""
    return _s(body.get("url") or body.get("download_url"))


def _part_text(part: Json) -> str:
    """What a part that is not an attachment says, as text: buttons and quick replies by their labels (and
    URLs), collections and templates by what they hold, any other kind by the text it carries."""
    if isinstance(part.get("text"), dict):
        return _s(part["text"].get("content"))
    if isinstance(part.get("image"), dict):
        return _link(part["image"])
    if isinstance(part.get("file"), dict):
        f = part["file"]
        return f"{_s(f.get('name')) or 'file'}: {_link(f)}".strip()
    if isinstance(part.get("url_button"), dict):
        b = part["url_button"]
        return f"{_s(b.get('label'))}: {_s(b.get('url'))}"
    if isinstance(part.get("quick_reply_button"), dict):
        return f"• {_s(part['quick_reply_button'].get('label'))}"
    if isinstance(part.get("callback"), dict):
        return f"• {_s(part['callback'].get('label'))}"
    if isinstance(part.get("video"), dict):
        return _link(part["video"])
    if isinstance(part.get("collection"), dict):
        return _lines(part["collection"].get("sub_parts"))
    if isinstance(part.get("template_content"), dict):
        sections = part["template_content"].get("sections")
        return "\n".join(
            _lines(section.get("parts"))
            for section in (sections if isinstance(sections, list) else [])
            if isinstance(section, dict)
        )
    for body in part.values():  # a kind zfsync does not know (reference, email ...): the text it carries
        if isinstance(body, dict):
            for key in ("content", "text", "label", "title", "url"):
                if isinstance(body.get(key), str) and body[key].strip():
                    return body[key]
    return ""


def _lines(parts: Any) -> str:
    return "\n".join(
        t
        for t in (_part_text(p) for p in (parts if isinstance(parts, list) else []) if isinstance(p, dict))
        if t.strip()
    )


def attachments_without_url(message: FcMessage) -> list[str]:
    """Names of the message's files and images that have no url yet (FreshChat adds it after scanning)."""
    waiting = []
    for part in message.parts:
        for kind in ("file", "image"):
            body = part.get(kind)
            if isinstance(body, dict) and not _link(body):
                waiting.append(_s(body.get("name")) or kind)
    return waiting


def agent_pieces(message: FcMessage) -> list[tuple[str, Json]]:
    """An agent's message as what Zalo can carry, in order: ``("text", {"text"})`` for runs of text and
    buttons, ``("image", {...})`` and ``("file", {...})`` for attachments to copy across. The buttons and
    quick replies it offered (``reply_parts``) follow as text: Zalo's customer-service texts have no
    buttons, so the customer reads the choices."""
    pieces: list[tuple[str, Json]] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(line for line in lines if line.strip())
        if text.strip():
            pieces.append(("text", {"text": text}))
        lines.clear()

    for part in (*message.parts, *message.reply_parts):
        image, file = part.get("image"), part.get("file")
        if isinstance(image, dict) and _link(image):
            flush()
            pieces.append(("image", {"url": _link(image), "name": _s(image.get("name"))}))
        elif isinstance(file, dict) and _link(file):
            flush()
            content_type = _s(file.get("content_type") or file.get("file_content_type"))
            pieces.append(("file", {"url": _link(file), "name": _s(file.get("name")), "content_type": content_type}))
        elif not isinstance(image, dict) and not isinstance(file, dict):
            lines.append(_part_text(part))
        # An attachment without a url has nothing to send; the reader tells the agent (missing_attachment_note).
    flush()
    return pieces


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
