from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from zfsync.domain import ImagePart, TextPart
from zfsync.sides.zalo.wire import content_of
from zfsync.sync.decide import render


def test_short_text_is_one_chunk_and_empty_is_none():
    assert render.split_text("xin chào") == ["xin chào"]
    assert render.split_text("   ") == []


def test_split_prefers_paragraphs_then_sentences_then_words():
    para = "Câu một. " * 150  # ~1,350 characters
    chunks = render.split_text(f"{para}\n\n{para}")
    assert chunks == [para.strip(), para.strip()]
    one_long_paragraph = "Một câu khá dài ở đây. " * 200
    chunks = render.split_text(one_long_paragraph)
    assert all(len(c) <= 2000 for c in chunks) and all(c.endswith(".") for c in chunks)


def test_nfc_counts_vietnamese_letters_once():
    decomposed = unicodedata.normalize("NFD", "ệ" * 1500)
    assert len(decomposed) > 2000
    assert render.split_text(decomposed) == ["ệ" * 1500]


@given(st.text(min_size=0, max_size=9000))
def test_split_never_exceeds_the_limit_and_loses_no_word(text):
    chunks = render.split_text(text)
    assert all(0 < len(c) <= 2000 for c in chunks)
    normalized = unicodedata.normalize("NFC", text)
    assert "".join("".join(chunks).split()) == "".join(normalized.split())


def test_zalo_content_types_render_readably():
    photo = render.zalo_parts(content_of({"type": "photo", "url": "https://z/p.jpg", "description": "hoá đơn"}))
    assert photo == [ImagePart("https://z/p.jpg"), TextPart("hoá đơn")]
    sticker = render.zalo_parts(content_of({"type": "sticker", "url": "https://z/s.png"}))
    assert sticker == [ImagePart("https://z/s.png")]
    (voice,) = render.zalo_parts(content_of({"type": "voice", "url": "https://z/v.aac"}))
    assert isinstance(voice, TextPart) and "https://z/v.aac" in voice.text
    links = render.zalo_parts(
        content_of({"type": "links", "message": "xem", "links": ["https://a", {"url": "https://b"}]})
    )
    assert links == [TextPart("xem\nhttps://a\nhttps://b")]
    assert "latitude 10.7, longitude 106.6" in render.location_text("10.7,106.6")
    # The docs' order is longitude, latitude; a value over 90 settles which is which either way.
    assert "latitude 10.7, longitude 106.6" in render.location_text("106.6,10.7")
    assert "latitude 21.0, longitude 105.8 (Zalo sent '105.8, 21.0')" in render.location_text("105.8, 21.0")
    assert "latitude 1.5, longitude 2.5" in render.location_text("2.5,1.5")  # ambiguous: the docs' order
    assert render.zalo_parts(content_of({"type": "text", "message": ""})) == [TextPart("(empty message)")]


def test_a_value_cut_on_a_word_with_an_ellipsis():
    assert render.cut_on_word("VIP, Khách quen, Quận 1", 12) == "VIP, Khách…"
    assert render.cut_on_word("VIP", 12) == "VIP"
    assert render.cut_on_word("abcdefghijklmnop", 5) == "abcd…"  # one word longer than the room
    assert render.cut_on_word("ab cdef gh", 9) == "ab cdef…"


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_a_cut_value_never_exceeds_its_room(text, limit):
    assert len(render.cut_on_word(text, limit)) <= max(limit, 1)
