"""Every content type, both ways: media is copied across, never just linked, and anything that cannot be
copied still arrives as a link with a note that says why (on the fakes, which read each row with the real
wire readers, and on the simulators where the bytes on the wire matter)."""

from __future__ import annotations

import io
import json
import random
import zipfile

from PIL import Image

KHANH = "2512007384617209999"


def png(size: tuple[int, int] = (4, 3), noise: bool = False) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    if noise:  # incompressible pixels, to make a PNG over Zalo's 1 MB limit
        rng = random.Random(7)
        image = Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (12, 8)).save(out, "GIF")
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def parts_of(messages: list[dict]) -> list[dict]:
    return [p for m in messages for p in m["message_parts"]]


def started(bridge) -> str:
    """A customer who wrote once, so a FreshChat conversation exists; returns its id."""
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="chào")
    bridge.cycle()
    return bridge.conversation_of(KHANH)


# --- Zalo → FreshChat ----------------------------------------------------------------------------------


def test_photo_is_copied_into_freshchat_with_its_caption(bridge):
    url = bridge.zalo.add_media(png(), "image/png", "photo.png")
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="photo", url=url, thumb=url, description="Hàng lỗi")
    bridge.cycle()
    parts = parts_of(bridge.customer_messages(KHANH))
    image_url = parts[0]["image"]["url"]
    assert image_url.startswith(bridge.fc.base_url)  # FreshChat's copy, not Zalo's expiring link
    assert bridge.fc.media[image_url.split("/")[-2]].data == png()
    assert parts[1] == {"text": {"content": "Hàng lỗi"}}


def test_gif_and_sticker_are_images_and_voice_is_a_file(bridge):
    gif_url = bridge.zalo.add_media(gif(), "image/gif", "a.gif")
    voice_url = bridge.zalo.add_media(b"\x00voice" * 100, "audio/aac", "voice.aac")
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="GIF", url=gif_url, thumb=gif_url)
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="sticker", url=gif_url)
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="voice", url=voice_url)
    bridge.cycle()
    gif_msg, sticker_msg, voice_msg = bridge.customer_messages(KHANH)
    assert gif_msg["message_parts"][0]["image"]["url"].startswith(bridge.fc.base_url)
    assert sticker_msg["message_parts"][0]["image"]["url"].startswith(bridge.fc.base_url)
    file_part = voice_msg["message_parts"][0]["file"]
    assert file_part["name"] == "voice.aac" and file_part["content_type"] == "audio/aac"
    assert file_part["file_size_in_bytes"] == 600


def test_links_location_and_emoji_are_readable_text(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="👍🏽🇻🇳")
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="link", text="xem", links=["https://shop.vn/a"])
    bridge.zalo.add_customer_message(
        KHANH, "Minh Khánh", type="location", location=json.dumps({"latitude": 10.77, "longitude": 106.7})
    )
    bridge.cycle()
    contents = [p["text"]["content"] for p in parts_of(bridge.customer_messages(KHANH))]
    assert contents[0] == "👍🏽🇻🇳"
    assert contents[1] == "xem\nhttps://shop.vn/a"
    assert (
        "latitude 10.77, longitude 106.7" in contents[2] and "https://www.google.com/maps?q=10.77,106.7" in contents[2]
    )


def test_a_photo_that_cannot_be_downloaded_arrives_as_its_link_with_a_note(bridge):
    dead = f"{bridge.zalo_url}/media/m999/gone.jpg"
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="photo", url=dead, thumb=dead)
    bridge.cycle()
    (message,) = bridge.customer_messages(KHANH)
    assert message["message_parts"][0] == {"image": {"url": dead}}
    assert "could not copy this image" in message["message_parts"][1]["text"]["content"]
    assert "HTTP 404" in message["message_parts"][1]["text"]["content"]


def test_a_failing_freshchat_upload_is_retried_then_falls_back_to_the_link(bridge):
    url = bridge.zalo.add_media(png(), "image/png", "p.png")
    bridge.fc.faults.append(_fault("/v2/images/upload", "status", code=503, count=3))
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="photo", url=url)
    bridge.settle()
    (message,) = bridge.customer_messages(KHANH)  # exactly once, after two retries
    assert message["message_parts"][0] == {"image": {"url": url}}
    assert "could not copy" in message["message_parts"][1]["text"]["content"]


def test_an_oversized_download_is_refused_without_reading_it_all(bridge, monkeypatch):
    from zfsync.sync.write import media

    monkeypatch.setattr(media, "FRESHCHAT_MAX_BYTES", 1000)
    url = bridge.zalo.add_media(png((200, 200), noise=True), "image/png", "big.png")
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", type="photo", url=url)
    bridge.cycle()
    (message,) = bridge.customer_messages(KHANH)
    note = message["message_parts"][1]["text"]["content"]
    assert "could not copy this image" in note and "over the 0.001 MB limit" in note


# --- FreshChat → Zalo ----------------------------------------------------------------------------------


def test_agent_image_is_uploaded_to_zalo_and_sent_as_a_media_message(bridge):
    conversation = started(bridge)
    url = bridge.fc.add_media(png(), "image/png", "menu.png")  # on the API host: needs the key
    bridge.fc.add_agent_message(conversation, parts=[{"image": {"url": url}}, {"text": {"content": "Thực đơn"}}])
    bridge.settle()
    image, text = bridge.sent_records(KHANH)
    assert image["kind"] == "photo" and image["name"] == "menu.png" and image["size"] == len(png())
    assert text["text"] == "Thực đơn"
    assert bridge.notes() == []


def test_oversized_image_is_shrunk_to_a_jpeg_under_one_megabyte(bridge):
    conversation = started(bridge)
    big = png((700, 700), noise=True)
    assert len(big) > 1_000_000
    url = bridge.fc.add_media(big, "image/png", "scan.png")
    bridge.fc.add_agent_message(conversation, parts=[{"image": {"url": url}}])
    bridge.settle()
    (sent,) = bridge.sent_records(KHANH)
    assert sent["kind"] == "photo" and sent["name"] == "scan.jpg" and sent["size"] <= 1_000_000
    assert bridge.notes() == []


def test_agent_gif_goes_through_the_gif_upload_with_its_size(bridge):
    conversation = started(bridge)
    url = bridge.fc.add_media(gif(), "image/gif", "wave.gif")
    bridge.fc.add_agent_message(conversation, parts=[{"image": {"url": url}}])
    bridge.settle()
    (sent,) = bridge.sent_records(KHANH)
    assert sent["kind"] == "GIF" and sent["name"] == "wave.gif"


def test_agent_pdf_is_sent_as_a_zalo_file(bridge):
    conversation = started(bridge)
    url = bridge.fc.add_media(PDF, "application/pdf", "bao-gia.pdf")
    bridge.fc.add_agent_message(
        conversation, parts=[{"file": {"url": url, "name": "bao-gia.pdf", "content_type": "application/pdf"}}]
    )
    bridge.settle()
    (sent,) = bridge.sent_records(KHANH)
    assert sent["kind"] == "file" and sent["name"] == "bao-gia.pdf" and sent["size"] == len(PDF)


def test_zip_file_goes_as_a_link_and_the_agent_is_told_why_once(bridge):
    conversation = started(bridge)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "x")
    url = bridge.fc.add_media(archive.getvalue(), "application/zip", "hoa-don.zip")
    bridge.fc.add_agent_message(conversation, parts=[{"file": {"url": url, "name": "hoa-don.zip"}}])
    bridge.settle()
    bridge.settle()
    assert bridge.sent_to(KHANH) == [f"hoa-don.zip: {url}"]
    (note,) = bridge.notes()
    content = note["message_parts"][0]["text"]["content"]
    assert "hoa-don.zip" in content and "only PDF, DOC and DOCX" in content
    assert note["actor_type"] == "agent"


def test_five_thousand_characters_split_in_order(bridge):
    conversation = started(bridge)
    paragraphs = [f"Đoạn {i}: " + "Sản phẩm được bảo hành mười hai tháng. " * 24 for i in range(6)]
    text = "\n\n".join(paragraphs)
    assert len(text) >= 5000
    bridge.fc.add_agent_message(conversation, text)
    bridge.settle()
    sent = bridge.sent_to(KHANH)
    assert len(sent) >= 3 and all(len(chunk) <= 2000 for chunk in sent)
    assert " ".join(" ".join(sent).split()) == " ".join(text.split())


def test_five_thousand_characters_as_a_document_in_file_mode(bridge):
    bridge.reconfigure(long_text="file")
    conversation = started(bridge)
    text = "Hướng dẫn đổi trả.\n" + "Quý khách vui lòng giữ hoá đơn. " * 170
    bridge.fc.add_agent_message(conversation, text)
    bridge.settle()
    preview, document = bridge.sent_records(KHANH)
    assert preview["text"].startswith("Hướng dẫn đổi trả.") and len(preview["text"]) < 500
    assert document["kind"] == "file" and document["name"] == "tin-nhan.docx"
    upload = next(u for u in bridge.zalo.uploads.values() if u.name == "tin-nhan.docx")
    with zipfile.ZipFile(io.BytesIO(upload.data)) as docx:
        body = docx.read("word/document.xml").decode()
    assert "Quý khách vui lòng giữ hoá đơn." in body and body.count("<w:p>") == 2


def test_buttons_and_quick_replies_become_text(bridge):
    conversation = started(bridge)
    bridge.fc.add_agent_message(
        conversation,
        parts=[
            {"text": {"content": "Chọn:"}},
            {"quick_reply_button": {"label": "Có"}},
            {"url_button": {"label": "Web", "url": "https://shop.vn"}},
        ],
    )
    bridge.settle()
    assert bridge.sent_to(KHANH) == ["Chọn:\n• Có\nWeb: https://shop.vn"]


def test_agent_attachment_is_not_echoed_back_into_freshchat(bridge):
    conversation = started(bridge)
    url = bridge.fc.add_media(png(), "image/png", "x.png")
    bridge.fc.add_agent_message(conversation, parts=[{"image": {"url": url}}])
    bridge.settle()
    assert len(bridge.customer_messages(KHANH)) == 1 and bridge.notes() == []
    assert bridge.store.figures(bridge.clock()).by_status["z2f"] == {"sent": 1}


def _fault(path: str, kind: str, **fields):
    from zfsync.sim.base import Fault

    return Fault(path, kind, **fields)
