"""One Zalo message under two ids. Pure functions: no I/O.

The only live pair of recordings of both listings shows one message, "a", as ``92a9…`` at …557 in
``listrecentchat`` and as ``ccc5…`` at …365 in ``conversation``. No source says whether that is the rule,
so zfsync is right either way: a row of one listing is a message already seen in the other when both are
the same user's, go the same way, say the same and stand within `WINDOW_MS` of each other. Rows are
paired one to one, the closest in time first, so a customer who sends "ok" twice in a second keeps both;
and only across listings, since within one listing two ids are always two messages.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from zfsync.domain import RecordedRow, ZaloContent, ZaloMessage

WINDOW_MS = 2_000  # the recordings differ by 192 ms; two seconds leave room, and no room for a second message


def as_recorded(row: ZaloMessage) -> RecordedRow:
    return RecordedRow(row.message_id, row.listing, row.from_oa, row.content, row.time_ms)


def signature(row: RecordedRow) -> tuple[object, ...]:
    """What must be equal for two rows to be one message: the way it went and what it says (not its links
    to Zalo's CDN, which may be signed differently in each listing)."""
    content: ZaloContent = row.content
    text = unicodedata.normalize("NFC", content.text).strip()
    return (row.from_oa, content.type, text, content.description, content.links, content.location, content.file_name)


def pair(rows: Iterable[RecordedRow], others: Iterable[RecordedRow]) -> dict[str, str]:
    """Which of ``rows`` are which of ``others`` (each at most once): the id of a row -> the id of its twin.

    A pair needs a known time on both sides, different listings (a row recorded before zfsync kept its
    listing pairs with either), the same `signature` and times within `WINDOW_MS`."""
    candidates = []
    for row in rows:
        for other in others:
            if row.time_ms < 0 or other.time_ms < 0 or row.zalo_id == other.zalo_id:
                continue
            if row.listing and other.listing and row.listing == other.listing:
                continue
            gap = abs(row.time_ms - other.time_ms)
            if gap <= WINDOW_MS and signature(row) == signature(other):
                candidates.append((gap, row.zalo_id, other.zalo_id))
    paired: dict[str, str] = {}
    taken: set[str] = set()
    for _, row_id, other_id in sorted(candidates):
        if row_id not in paired and other_id not in taken:
            paired[row_id] = other_id
            taken.add(other_id)
    return paired
