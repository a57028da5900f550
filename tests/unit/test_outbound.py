"""What zfsync writes itself, kept in an outbox row and read back: the same value, and rows queued before
the types existed read as they were meant."""

from __future__ import annotations

import pytest

from zfsync.domain import Kind
from zfsync.domain.outbound import (
    AgentNote,
    Command,
    ReplyAttachment,
    ReplyDocument,
    ReplyText,
    ResolveNotice,
    decode,
    encode,
    note_of,
    preview,
)

REPLIES = [
    ReplyText("Dạ, em gửi ạ", "ag-1"),
    ReplyText("Dạ", "ag-1", quote="zm-1", quote_alias="zc-1"),
    ReplyAttachment("https://fc/a.png", "a.png", "", True, "ag-1"),
    ReplyAttachment("https://fc/b.pdf", "b.pdf", "application/pdf", False, "ag-2"),
    ReplyDocument("dài " * 900, "ag-1"),
    ResolveNotice("Cảm ơn anh chị", "ag-1"),
    Command("tag", "Khách VIP", "ag-1"),
]


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: type(r).__name__)
def test_a_reply_reads_back_as_it_was_kept(reply):
    assert decode(reply.kind, encode(reply)) == reply


@pytest.mark.parametrize(
    ("kind", "payload", "reply"),
    [
        # Rows an earlier zfsync queued: the same keys, some absent.
        ("text", {"text": "Dạ", "agent_id": "ag-1", "quote": "zm-1"}, ReplyText("Dạ", "ag-1", "zm-1")),
        ("image", {"url": "u", "name": "p.png", "agent_id": "a"}, ReplyAttachment("u", "p.png", "", True, "a")),
        ("command", {"command": "info", "arg": ""}, Command("info")),
        # A value of the wrong type is no value; a kind zfsync does not know is a text.
        ("text", {"text": 5, "agent_id": None}, ReplyText("")),
        ("sticker_reply", {"text": "?"}, ReplyText("?")),
    ],
)
def test_older_rows_read_with_defaults(kind, payload, reply):
    assert decode(kind, payload) == reply


def test_a_note_goes_where_the_reply_came_from_as_its_agent_or_a_bot():
    note = AgentNote("Không gửi được", "fc-old", "ag-1", "agent", "failure")
    assert note_of(encode(note)) == note and note.kind == Kind.FAILURE_NOTE
    assert note_of({"text": "x", "conversation_id": "fc-1"}) == AgentNote("x", "fc-1", "", "bot", "")


def test_the_preview_a_failure_note_quotes():
    assert [preview(r) for r in REPLIES[2:4]] == ["a.png", "b.pdf"]
    assert preview(ReplyAttachment("https://fc/x")) == "https://fc/x"
    assert preview(Command("tag", "VIP")) == "tag VIP"
