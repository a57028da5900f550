"""Attachments that cross sides are copied, not linked: Zalo's CDN links expire and FreshChat's may need the
API key, so a link alone would not outlive the week. When a copy cannot be made, the message still goes,
with the link and a short explanation: an attachment is never dropped in silence.

Limits (research): FreshChat takes files up to 25 MB; Zalo takes jpg/png images up to 1 MB, GIFs up to
5 MB and PDF/DOC/DOCX files up to 5 MB.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from zfsync.domain import ImagePart, Media, Part, TextPart, ZaloContent, ZaloSent
from zfsync.domain.errors import AuthError, RateLimited, RemoteError, TransientError
from zfsync.domain.outbound import ReplyAttachment
from zfsync.sync.decide import render
from zfsync.sync.ports import FreshChatSide, ZaloSide

FRESHCHAT_MAX_BYTES = 25_000_000
AGENT_DOWNLOAD_MAX_BYTES = 25_000_000  # images above Zalo's 1 MB are shrunk, so fetch more than that
ZALO_IMAGE_MAX_BYTES = 1_000_000
ZALO_GIF_MAX_BYTES = 5_000_000
ZALO_FILE_MAX_BYTES = 5_000_000
ZALO_FILE_TYPES = {
    "pdf": "application/pdf",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
COPY_ATTEMPTS = 3  # transient trouble copying an attachment is retried this often before the link goes alone
MAX_SHRINK_PIXELS = 25_000_000  # refuse to decode anything larger: a decompression bomb must not kill us
SHRINK_TO = 2560  # pixels on the longer side: plenty for a chat, and bounded memory while converting
_DECODING = threading.Lock()  # one image converted at a time: peak memory is one image, not eight


@dataclass(frozen=True)
class Copied:
    parts: list[Part]
    problems: list[str]  # why a copy fell back to a link, for the log and the note


# --- Zalo → FreshChat ----------------------------------------------------------------------------------


def has_media(content: ZaloContent) -> bool:
    """Whether the message carries something to copy: any type but links with a url (files, videos, audio
    and business cards arrive under types the listing docs omit), or an image with only a thumb."""
    if content.type in render.LINK_TYPES:
        return False
    return bool(content.url) or (content.type in render.IMAGE_TYPES and bool(content.thumb))


def copy_to_freshchat(content: ZaloContent, zalo: ZaloSide, fc: FreshChatSide, attempt: int) -> Copied:
    """The FreshChat parts for a customer's Zalo message, with photos, GIFs, stickers and voice re-uploaded."""
    parts = render.zalo_parts(content)
    kind = content.type
    if not has_media(content):
        return Copied(parts, [])
    what = "voice message" if kind == "voice" else "image" if kind in render.IMAGE_TYPES else f"{kind} file"
    try:
        media = zalo.download(content.url or content.thumb, FRESHCHAT_MAX_BYTES)
        author = [TextPart(line) for line in (render.author_line(content),) if line]  # a group member's name
        if kind == "voice":
            return Copied([*author, fc.upload_file(media), TextPart("🎤 Voice message")], [])
        if kind not in render.IMAGE_TYPES:
            named = Media(media.data, media.content_type, content.file_name or media.name)
            return Copied([*author, fc.upload_file(named), TextPart(render.file_label(content))], [])
        uploaded = fc.upload_image(media)
    except RemoteError as exc:
        problem = _fallback_reason(exc, attempt)
        note = f"⚠️ zfsync could not copy this {what} into FreshChat ({problem}); the Zalo link expires after a while."
        return Copied([*parts, TextPart(note)], [problem])
    return Copied([ImagePart(uploaded) if isinstance(p, ImagePart) else p for p in parts], [])


def _fallback_reason(exc: RemoteError, attempt: int) -> str:
    """Side-wide trouble and early transient failures are raised, to retry the whole message later."""
    if isinstance(exc, RateLimited | AuthError):
        raise exc
    if isinstance(exc, TransientError) and attempt + 1 < COPY_ATTEMPTS:
        raise exc
    return exc.reason


# --- FreshChat → Zalo ----------------------------------------------------------------------------------


def send_to_zalo(
    attachment: ReplyAttachment,
    user_id: str,
    zalo: ZaloSide,
    download: Callable[[str, int], Media],
    attempt: int,
    tell_agent: Callable[[str], None],
) -> ZaloSent:
    """Send an agent's image, GIF or file; if Zalo cannot take it, send its link and tell the agent why
    (``tell_agent`` runs before the link is sent)."""
    url, name = attachment.url, attachment.name
    try:
        media = download(url, AGENT_DOWNLOAD_MAX_BYTES)
        media = Media(media.data, attachment.content_type or media.content_type, name or media.name)
        if attachment.is_image:
            return _send_image(media, user_id, zalo)
        return _send_file(media, user_id, zalo)
    except Unsendable as exc:
        problem = str(exc)
    except RemoteError as exc:
        problem = _fallback_reason(exc, attempt)
    label = name or attachment.kind
    tell_agent(problem)
    link_text = f"{label}: {url}" if url else label
    return zalo.send_text(user_id, link_text[: render.ZALO_TEXT_LIMIT])


class Unsendable(Exception):
    """Zalo cannot take this attachment as it is; the message says why, in words for the agent."""


def _send_image(media: Media, user_id: str, zalo: ZaloSide) -> ZaloSent:
    if media.content_type == "image/gif" or media.name.lower().endswith(".gif"):
        if media.size > ZALO_GIF_MAX_BYTES:
            raise Unsendable(f"the GIF is {media.size / 1e6:.1f} MB; Zalo takes GIFs up to 5 MB")
        width, height = gif_size(media.data)
        return zalo.send_gif(user_id, zalo.upload_gif(_named(media, "gif")), width, height)
    if media.content_type not in ("image/jpeg", "image/png") or media.size > ZALO_IMAGE_MAX_BYTES:
        media = shrink_to_jpeg(media, ZALO_IMAGE_MAX_BYTES)
    extension = "png" if media.content_type == "image/png" else "jpg"
    return zalo.send_image(user_id, zalo.upload_image(_named(media, extension)))


def _send_file(media: Media, user_id: str, zalo: ZaloSide) -> ZaloSent:
    extension = media.name.rsplit(".", 1)[-1].lower() if "." in media.name else ""
    if extension not in ZALO_FILE_TYPES:
        shown = f".{extension} files" if extension else "files without an extension"
        raise Unsendable(f"Zalo accepts only PDF, DOC and DOCX files, not {shown}")
    if media.size > ZALO_FILE_MAX_BYTES:
        raise Unsendable(f"the file is {media.size / 1e6:.1f} MB; Zalo takes files up to 5 MB")
    return zalo.send_file(user_id, zalo.upload_file(media))


def _named(media: Media, extension: str) -> Media:
    # Zalo checks the file name's extension and may answer empty data when it does not match.
    stem = media.name.rsplit(".", 1)[0] if "." in media.name else (media.name or "image")
    return Media(media.data, media.content_type, f"{stem[:190]}.{extension}")


def shrink_to_jpeg(media: Media, max_bytes: int) -> Media:
    """Re-encode an image as a JPEG of at most ``max_bytes``, scaling it down as needed (Pillow).

    Memory stays bounded whatever arrives: the size is read from the header and anything over
    `MAX_SHRINK_PIXELS` is refused before a pixel is decoded (Pillow's own bomb check only warns below
    twice its limit, and a warning counts as a refusal here); a JPEG is decoded at a reduced scale; and one
    image is converted at a time, so eight delivery workers cannot each hold one.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow is a dependency; a broken install must not lose messages
        raise Unsendable("the image is not a JPG/PNG under 1 MB and the converter is not installed") from None
    unusable = Unsendable(f"{media.name or 'the image'} is not an image Zalo can show")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with _DECODING, Image.open(io.BytesIO(media.data)) as image:
                if image.width * image.height > MAX_SHRINK_PIXELS:
                    raise Unsendable(
                        f"the image is {image.width}×{image.height} pixels; zfsync converts images up to "
                        f"{MAX_SHRINK_PIXELS // 1_000_000} megapixels"
                    )
                image.draft("RGB", (SHRINK_TO, SHRINK_TO))  # a JPEG decodes at 1/2, 1/4 or 1/8 scale
                image.seek(0)
                picture = image.convert("RGB")
                picture.thumbnail((SHRINK_TO, SHRINK_TO))
                return _encode_under(picture, media.name, max_bytes)
    except Unsendable:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise unusable from None


def _encode_under(picture: Any, name: str, max_bytes: int) -> Media:
    for _ in range(8):
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=85, optimize=True)
        if out.tell() <= max_bytes:
            return Media(out.getvalue(), "image/jpeg", name)
        picture = picture.resize((max(1, picture.width * 3 // 4), max(1, picture.height * 3 // 4)))
    raise Unsendable("the image could not be made smaller than 1 MB")


def gif_size(data: bytes) -> tuple[int, int]:
    """Width and height from a GIF's logical screen descriptor (Zalo requires both for a GIF)."""
    if len(data) < 10 or data[:3] != b"GIF":
        raise Unsendable("the GIF file is damaged")
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


def text_document(text: str, name: str) -> Media:
    """A DOCX holding ``text``: Zalo's file upload takes only PDF/DOC/DOCX, so a .txt would be refused.

    DOCX is a zip of XML that the stdlib writes, and shows Vietnamese text everywhere without fonts.
    """
    paragraphs = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(_xml_safe(line))}</w:t></w:r></w:p>' for line in text.split("\n")
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{paragraphs}</w:body></w:document>"
    )
    files = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="word/document.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
        "</Relationships>",
        "word/document.xml": document,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            archive.writestr(zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0)), content)
    return Media(buffer.getvalue(), ZALO_FILE_TYPES["docx"], name)


def _xml_safe(text: str) -> str:
    # XML 1.0 forbids most control characters; an agent's pasted text may carry them.
    return "".join(
        c for c in text if (c == "\t" or ord(c) >= 0x20) and not 0xD800 <= ord(c) <= 0xDFFF and c not in "\ufffe\uffff"
    )
