"""Our own Zalo sends, as Zalo's listings show them. Pure functions: no I/O.

Every send comes back in ``listrecentchat`` and ``conversation`` as an OA row (``src=0``). No source says
whether that row carries the id that ``message/cs`` answered, so zfsync is right either way: a listing
row whose id is a send's id is that send's echo; otherwise it is matched by recipient, content and time to
one of our sends whose listing row is not known yet, and the match is recorded so one send explains one
row. Only a row that matches none of our sends is OA staff typing in OA Manager.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from zfsync.domain import OwnSend, Status
from zfsync.domain.outbound import Command, Reply, ReplyAttachment, ReplyDocument

WINDOW = 600.0  # seconds between our send and its listing row, clocks differing included


def _norm(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def same_content(sent: Reply, listing_type: str, listing_text: str) -> bool:
    """Whether a listing row of type ``listing_type`` showing ``listing_text`` can be what ``sent`` was."""
    if isinstance(sent, Command):
        # A card lists as a non-text row; a tag set on Zalo is no message: nothing lists for it.
        return sent.name == "info" and listing_type != "text"
    if isinstance(sent, ReplyAttachment):
        # An attachment lists as a non-text row; one that fell back to a link lists as a text with the URL.
        return listing_type != "text" or (bool(sent.url) and sent.url in listing_text)
    if isinstance(sent, ReplyDocument):
        return listing_type != "text"
    return listing_type == "text" and _norm(listing_text) == _norm(sent.text)


def echo_of(listing_type: str, listing_text: str, sends: Sequence[OwnSend]) -> OwnSend | None:
    """The send a listing row (whose id is no send's id) is the echo of: the oldest settled send with the
    same content whose own listing row is not known yet."""
    for send in sends:
        if send.status == Status.SENT and not send.listed and same_content(send.reply, listing_type, listing_text):
            return send
    return None


def landed(sent: Reply, row_id: int, listed: Sequence[tuple[str, str, str]], sends: Sequence[OwnSend]) -> str | None:
    """Whether a send whose outcome is unknown reached Zalo; returns the id of its listing row if so.

    ``listed`` holds the OA rows (id, type, text) listed since shortly before the attempt, newest first;
    ``sends`` our sends to the same user over that time. A matching row counts as ours only if it is more
    than the other sends of the same content can explain: their rows may not be identified yet. A row
    read twice (the customer wrote while the pages were read, so the offsets shifted) counts once.
    """
    claimed = {s.dest_id for s in sends if s.dest_id} | {s.echo_id for s in sends if s.echo_id}
    once = {i: (i, t, x) for i, t, x in listed}  # each id where first read: still newest first
    matching = [(i, t, x) for i, t, x in once.values() if same_content(sent, t, x)]
    free = [i for i, _, _ in matching if i not in claimed]
    others = [
        s
        for s in sends
        if s.row_id != row_id
        and not s.listed
        and s.dest_id not in {i for i, _, _ in matching}
        and any(same_content(s.reply, t, x) for _, t, x in matching)
    ]
    if len(free) > len(others):
        return free[0]  # the newest: rows of one user are sent in order, so ours came after theirs
    return None
