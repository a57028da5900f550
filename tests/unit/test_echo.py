"""Whether a send whose outcome is unknown landed on Zalo, from the OA rows its conversation lists."""

from __future__ import annotations

import pytest

from zfsync.domain import OwnSend, Status
from zfsync.domain.outbound import ReplyAttachment
from zfsync.sync.decide import echo

PHOTO = ReplyAttachment("https://fc.example/reply.png", is_image=True)


def sent(row_id: int, dest_id: str, listed: bool = False, echo_id: str | None = None) -> OwnSend:
    return OwnSend(row_id, PHOTO, dest_id, echo_id, Status.SENT, listed)


@pytest.mark.parametrize(
    ("listed", "sends", "found"),
    [
        # Nothing listed: not landed.
        ([], [], None),
        # A photo no send explains: ours.
        ([("c2", "photo", "")], [], "c2"),
        # A photo listed under the id an earlier send answered: that send's, not ours.
        ([("z1", "photo", "")], [sent(1, "z1")], None),
        # Listed under another id (two ids), one earlier send: the row is that send's.
        ([("c1", "photo", "")], [sent(1, "z1")], None),
        # Two rows, one earlier send: the newest is ours.
        ([("c2", "photo", ""), ("c1", "photo", "")], [sent(1, "z1")], "c2"),
        # One row read on two pages (offsets shifted while reading) is one row: the earlier send's.
        ([("c1", "photo", ""), ("t9", "text", "tin"), ("c1", "photo", "")], [sent(1, "z1")], None),
        # A text never passes for an image.
        ([("c2", "text", "ảnh f1")], [], None),
        # The link it fell back to does.
        ([("c2", "text", "reply.png: https://fc.example/reply.png")], [], "c2"),
    ],
)
def test_landed(listed, sends, found):
    assert echo.landed(PHOTO, 9, listed, sends) == found
