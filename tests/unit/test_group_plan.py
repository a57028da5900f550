"""What a group chat decides with no I/O (`zfsync.sync.decide.groups`), table by table."""

from __future__ import annotations

from datetime import datetime

import pytest

from zfsync.domain import Baseline, GroupBook, KnownGroup, ZaloContent, ZaloGroup
from zfsync.sync.decide import groups, render, zalo_clocks

MEMBERS = {"111": "Lan", "222": "Lan Anh", "333": "Minh", "444": "Hòa"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[@111] ơi", "@Lan ơi"),
        ("[@111][@333]", "@Lan@Minh"),
        ("hỏi [@999] giúp", "hỏi [@999] giúp"),  # an id with no known name stays as Zalo wrote it
        ("[@abc] and [@] stay", "[@abc] and [@] stay"),
        ("no mention", "no mention"),
    ],
)
def test_incoming_mentions_show_by_name(text, expected):
    assert groups.incoming_mentions(text, MEMBERS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Lan ơi", "[@111] ơi"),
        ("@Lan Anh ơi", "[@222] ơi"),  # the longest name first
        ("@lan, @MINH.", "[@111], [@333]."),  # letter case aside
        ("@Lana is no member", "@Lana is no member"),  # a name ends where a word ends
        ("email lan@shop.vn", "email lan@shop.vn"),
        ("@Hòa và @Hoa", "[@444] và @Hoa"),  # accents count: another name
        ("no mention", "no mention"),
    ],
)
def test_outgoing_mentions_become_zalos_ids(text, expected):
    assert groups.outgoing_mentions(text, MEMBERS) == expected


def test_a_name_two_members_share_mentions_no_one():
    assert groups.outgoing_mentions("@Lan ơi", {"1": "Lan", "2": "lan"}) == "@Lan ơi"
    assert groups.outgoing_mentions("@Lan ơi", {}) == "@Lan ơi"


def test_members_keep_their_latest_name_most_recent_last():
    group = KnownGroup("g", members=(("111", "Lan"), ("333", "Minh")))
    assert groups.members_after(group, {"111": "Lan Phạm", "555": "x" * 100}) == (
        ("333", "Minh"),
        ("111", "Lan Phạm"),
        ("555", "x" * groups.NAME_LIMIT),
    )


def test_a_listing_renames_adds_and_disables_what_it_no_longer_lists():
    book = GroupBook(Baseline(0, frozenset()), (KnownGroup("a", "Cũ", swept_at=5.0), KnownGroup("gone", "Đã xóa")))
    listed = groups.listed(book, [ZaloGroup("a", "Mới", "av", True), ZaloGroup("b", "Thêm", "", False)])
    assert listed == (
        KnownGroup("a", "Mới", "av", True, swept_at=5.0),
        KnownGroup("gone", "Đã xóa", enabled=False),
        KnownGroup("b", "Thêm", "", False),
    )


@pytest.mark.parametrize(
    ("active", "now", "expected"),
    [
        ((), 100.0, []),  # every group read lately, none new
        (("b",), 100.0, ["b"]),
        ((), 700.0, ["a"]),  # a quiet group is read on its own after the sweep; the disabled one never
        (("c",), 700.0, ["a", "c"]),  # a group the listing does not know yet, seen writing
    ],
)
def test_due_groups_are_those_with_news_and_those_not_read_for_a_sweep(active, now, expected):
    book = GroupBook(groups=(KnownGroup("a", swept_at=0.0), KnownGroup("b", swept_at=90.0, enabled=False)))
    assert groups.due(book, active, now, 600.0) == expected


def test_a_polls_book_keeps_the_package_ends_written_meanwhile():
    stored = GroupBook(
        groups=(KnownGroup("a", valid_through="20/12/2026", warned_through="20/12/2026"),), assets_at=9.0
    )
    read = GroupBook(groups=(KnownGroup("a", "Tên", swept_at=5.0), KnownGroup("b")), listed_at=3.0)
    merged = groups.read_into(stored, read)
    assert merged.groups[0] == KnownGroup(
        "a", "Tên", swept_at=5.0, valid_through="20/12/2026", warned_through="20/12/2026"
    )
    assert (merged.assets_at, merged.listed_at, merged.groups[1]) == (9.0, 3.0, KnownGroup("b"))


def at(day: str, hour: int = 9) -> float:
    parsed = datetime.strptime(day, "%d/%m/%Y").replace(hour=hour, tzinfo=zalo_clocks.VIETNAM)
    return parsed.timestamp()


@pytest.mark.parametrize(
    ("group", "now", "due"),
    [
        (KnownGroup("a", valid_through="20/12/2026"), at("12/12/2026"), False),  # 8 days and more
        (KnownGroup("a", valid_through="20/12/2026"), at("14/12/2026"), True),
        (KnownGroup("a", valid_through="20/12/2026", warned_through="20/12/2026"), at("14/12/2026"), False),
        (KnownGroup("a", valid_through="20/01/2027", warned_through="20/12/2026"), at("14/01/2027"), True),  # renewed
        (KnownGroup("a", valid_through="20/12/2026", enabled=False), at("14/12/2026"), False),
        (KnownGroup("a", valid_through=""), at("14/12/2026"), False),
        (KnownGroup("a", valid_through="31/02/2026"), at("14/12/2026"), False),  # not a day
    ],
)
def test_the_package_end_is_told_once_within_the_warning_days(group, now, due):
    assert groups.expiry_warning_due(group, now, 7) is due
    assert groups.expiry_warning_due(group, now, 0) is False  # 0: never


def test_days_left_count_whole_days_to_the_end_of_the_last_valid_day():
    assert groups.days_left("20/12/2026", at("14/12/2026", 0)) == 7
    assert groups.days_left("20/12/2026", at("20/12/2026", 23)) == 0
    assert groups.days_left("20/12/2026", at("25/12/2026")) == 0
    assert groups.package_end("nope") is None


@pytest.mark.parametrize(
    ("content", "first"),
    [
        (ZaloContent("text", "Chào", author_id="111", author_name="Lan"), "Lan:\nChào"),
        (ZaloContent("text", "Chào", author_id="111", author_name="Lan\u202e\nx"), "Lan x:\nChào"),  # one plain line
        (ZaloContent("text", "Chào", author_id="111"), "111:\nChào"),  # no name: the id
        (ZaloContent("text", "Chào"), "Chào"),  # not a group's
        (ZaloContent("photo", url="https://z/p.jpg", author_id="1", author_name="Minh"), "Minh:"),
    ],
)
def test_a_members_message_starts_with_their_name(content, first):
    parts = render.zalo_parts(content)
    assert parts[0].text == first  # type: ignore[union-attr]
