"""Which channel a new conversation opens in: the first [[route]] that matches, or the default."""

from __future__ import annotations

import pytest

from zfsync.domain import Route
from zfsync.sync.routing import Destination, destination, folded

ROUTES = (
    Route("chan-vip", group_id="grp-vip", tag="VIP"),
    Route("chan-warranty", keyword="bảo hành"),
    Route("chan-oa2", oa="oa-2"),
    Route("chan-late", tag="Quận 1"),
)


@pytest.mark.parametrize(
    ("tags", "text", "oa", "found"),
    [
        ((), "xin chào", "oa-1", Destination("default")),
        (("vip",), "xin chào", "oa-1", Destination("chan-vip", "grp-vip", 1)),  # letter case aside
        ((), "Máy em cần BAO HANH ạ", "oa-1", Destination("chan-warranty", "", 2)),  # accents aside
        ((), "bảo   hành", "oa-1", Destination("chan-warranty", "", 2)),
        (("VIP",), "bảo hành", "oa-1", Destination("chan-vip", "grp-vip", 1)),  # the first match wins
        ((), "hello", "oa-2", Destination("chan-oa2", "", 3)),
        (("Quận 1",), "hello", "oa-1", Destination("chan-late", "", 4)),
        (("quan 1",), "hello", "oa-1", Destination("chan-late", "", 4)),
    ],
)
def test_the_first_matching_route_or_the_default_channel(tags, text, oa, found):
    assert destination(ROUTES, "default", tags, text, oa) == found


def test_no_routes_is_the_default_channel():
    assert destination((), "default", ("VIP",), "bảo hành", "oa-1") == Destination("default")


def test_folding_keeps_words_and_drops_accents_and_case():
    assert folded("  Đổi TRẢ   hàng ") == "doi tra hang"
