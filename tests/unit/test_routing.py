"""Which channel a new conversation opens in: the first [[route]] that matches, or the default."""

from __future__ import annotations

import pytest

from zfsync.domain import Route
from zfsync.sync.decide.routing import Destination, destination, folded, problems

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
        ((), "Bảo hành máy giặt?", "oa-1", Destination("chan-warranty", "", 2)),  # whole words, punctuation aside
        ((), "baohanh", "oa-1", Destination("default")),  # not a word of it
        ((), "giấy bảo hànhx", "oa-1", Destination("default")),
    ],
)
def test_the_first_matching_route_or_the_default_channel(tags, text, oa, found):
    assert destination(ROUTES, "default", tags, text, oa) == found


def test_no_routes_is_the_default_channel():
    assert destination((), "default", ("VIP",), "bảo hành", "oa-1") == Destination("default")


def test_folding_keeps_words_and_drops_accents_and_case():
    assert folded("  Đổi TRẢ   hàng ") == "doi tra hang"


def test_a_keyword_matches_whole_words_only():
    routes = (Route("c4", keyword="kw4"),)
    assert destination(routes, "d", (), "mã kw499", "") == Destination("d")
    assert destination(routes, "d", (), "mã KW4, gấp", "") == Destination("c4", "", 1)


def test_a_route_found_wrong_is_passed_over_and_named():
    assert destination(ROUTES, "default", ("VIP",), "bảo hành", "oa-1", skip={1}) == Destination(
        "chan-warranty", "", 2, skipped=1
    )
    assert destination(ROUTES, "default", ("VIP",), "hi", "oa-1", skip={1}) == Destination("default", skipped=1)


def test_the_routes_the_account_lacks():
    found = problems(ROUTES, {"chan-vip", "chan-warranty", "chan-late"}, {"grp-other"})
    assert found == {
        1: ["group_id grp-vip is not among the account's groups"],
        3: ["channel_id chan-oa2 is not among the channels"],
    }
    both = problems((Route("chan-x", group_id="grp-x", tag="VIP"),), {"chan-vip"}, {"grp-vip"})
    assert both == {
        1: ["channel_id chan-x is not among the channels", "group_id grp-x is not among the account's groups"]
    }
    assert problems(ROUTES[:1], {"chan-vip"}, None) == {}  # groups not listed: not judged
