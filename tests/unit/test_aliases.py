"""Which rows of one Zalo listing are messages the other listing showed under another id."""

from __future__ import annotations

import pytest

from zfsync.domain import CONVERSATION, FEED, RecordedRow, ZaloContent, ZaloMessage
from zfsync.sync.decide import aliases
from zfsync.sync.read.zalo_reader import feed_order


def row(zalo_id: str, listing: str, time_ms: int, text: str = "a", from_oa: bool = False, kind: str = "text"):
    return RecordedRow(zalo_id, listing, from_oa, ZaloContent(kind, text), time_ms)


@pytest.mark.parametrize(
    ("rows", "others", "paired"),
    [
        # the live recording: "a" as 92a9 at ...557 in the feed, as ccc5 at ...365 in the conversation
        ([row("ccc5", CONVERSATION, 1759512710365)], [row("92a9", FEED, 1759512710557)], {"ccc5": "92a9"}),
        # within one listing two ids are two messages, however alike
        ([row("f2", FEED, 1000)], [row("f1", FEED, 900)], {}),
        # a row recorded before zfsync kept its listing pairs with either
        ([row("f2", FEED, 1000)], [row("old", "", 900)], {"f2": "old"}),
        # "ok" twice in a second: each pairs with its own twin, the closest first
        (
            [row("c1", CONVERSATION, 0, "ok"), row("c2", CONVERSATION, 1000, "ok")],
            [row("f1", FEED, 190, "ok"), row("f2", FEED, 1190, "ok")],
            {"c1": "f1", "c2": "f2"},
        ),
        # only one of the two was recorded: the closer row is its twin, the other is new
        (
            [row("c1", CONVERSATION, 0, "ok"), row("c2", CONVERSATION, 1500, "ok")],
            [row("f2", FEED, 1690, "ok")],
            {"c2": "f2"},
        ),
        # too far apart, another text, another type, the other way, or no time: different messages
        ([row("c", CONVERSATION, 0)], [row("f", FEED, aliases.WINDOW_MS + 1)], {}),
        ([row("c", CONVERSATION, 0, "a")], [row("f", FEED, 10, "b")], {}),
        ([row("c", CONVERSATION, 0, kind="photo")], [row("f", FEED, 10)], {}),
        ([row("c", CONVERSATION, 0, from_oa=True)], [row("f", FEED, 10)], {}),
        ([row("c", CONVERSATION, -1)], [row("f", FEED, -1)], {}),
        # the same id is the same row, not a twin
        ([row("x", CONVERSATION, 0)], [row("x", FEED, 0)], {}),
        # text compared after NFC: Vietnamese typed with combining marks is the same text
        ([row("c", CONVERSATION, 0, "Khánh")], [row("f", FEED, 5, "Kha\u0301nh")], {"c": "f"}),
    ],
)
def test_pairs(rows, others, paired):
    assert aliases.pair(rows, others) == paired


def message(zalo_id: str, listing: str, time_ms: int, text: str) -> ZaloMessage:
    return ZaloMessage(zalo_id, "u", False, time_ms, ZaloContent("text", text), listing=listing)


def test_feed_order_takes_a_message_once_when_feed_and_conversation_name_it_differently():
    feed = [message("f3", FEED, 3000, "c"), message("f2", FEED, 2000, "b")]  # newest first
    own = [message("k2", CONVERSATION, 1808, "b"), message("k1", CONVERSATION, 808, "a")]
    ordered, within = feed_order(feed, own)
    assert [m.message_id for m in ordered] == ["k1", "k2", "f3"]  # f2 is k2; f3 arrived after the read
    assert within == {"k2": "f2"}  # recorded as k2, with the feed's id beside it


def test_feed_order_without_a_conversation_read_is_the_feed_reversed():
    feed = [message("f2", FEED, 2000, "b"), message("f1", FEED, 1000, "a")]
    assert feed_order(feed, None) == (feed[::-1], {})
