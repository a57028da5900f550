"""The one walk over newest-first pages: where it stops, and why."""

from __future__ import annotations

import pytest

from zfsync.sync.decide.pages import CAPPED, ENDED, REACHED, OffsetPages, from_first, walk


def known_ids(ids: set[int]):
    return lambda page: lambda item: item in ids


@pytest.mark.parametrize(
    ("pages", "known", "max_pages", "full", "items", "end", "read"),
    [
        ([[9, 8], [7, 6], [5, 4]], known_ids({6}), 10, 2, [9, 8, 7], REACHED, 2),
        # Every item of the last page is looked at: a tied or skewed row may stand after a known one.
        ([[9, 5, 8, 4]], known_ids({5, 4}), 10, 4, [9, 8], REACHED, 1),
        ([[9, 8], [7]], known_ids(set()), 10, 2, [9, 8, 7], ENDED, 2),  # a short page is the last
        ([[9, 8], [7, 6], [5, 4]], known_ids(set()), 2, 2, [9, 8, 7, 6], CAPPED, 2),
        ([], known_ids(set()), 10, 2, [], ENDED, 0),
        # from_first: the first stop and everything older on its page are known.
        ([[9, 8], [7, 3, 8]], from_first(lambda n: n < 5), 10, None, [9, 8, 7], REACHED, 2),
    ],
)
def test_walk(pages, known, max_pages, full, items, end, read):
    result = walk(iter(pages), known, max_pages, full)
    assert (result.items, result.end, result.pages) == (items, end, read)


def test_walk_reads_no_page_past_where_it_stops():
    fetched: list[int] = []

    def pages():
        for number in range(100):
            fetched.append(number)
            yield [number]

    walk(pages(), known_ids({2}), 50)
    assert fetched == [0, 1, 2]


def shifting_listing(rows: int, before_read: dict[int, int], vanish: dict[int, int] | None = None):
    """A newest-first listing of ``rows`` numbers; before read number k, ``before_read[k]`` new numbers
    arrive on top, and ``vanish[k]`` is removed."""
    listing = list(range(rows))[::-1]
    reads: list[int] = []

    def read(offset: int, count: int) -> list[int]:
        number = len(reads)
        reads.append(offset)
        newest = max(listing, default=-1)
        listing[:0] = list(range(newest + 1, newest + 1 + before_read.get(number, 0)))[::-1]
        if vanish and number in vanish:
            listing.remove(vanish[number])
        return listing[offset : offset + count]

    return read, reads


@pytest.mark.parametrize(
    ("rows", "arrivals", "vanish", "aligned"),
    [
        (25, {}, None, True),
        (25, {1: 3}, None, True),  # fewer than a page arrive: the next page repeats rows
        (25, {1: 9}, None, True),
        (25, {1: 10, 2: 1}, None, True),
        (25, {1: 25, 2: 7}, None, True),  # more than a page: the next page is all newer rows
        (40, {1: 45}, None, True),  # found again four pages on
        (25, {}, {1: 15}, False),  # the first page's last row vanished
        (9, {}, None, True),
        (0, {}, None, True),
    ],
)
def test_offset_pages_yield_the_listing_as_it_stood_at_the_first_read(rows, arrivals, vanish, aligned):
    read, _ = shifting_listing(rows, arrivals, vanish)
    listing = OffsetPages(read, str, 0, 10)
    items = [item for page in listing for item in page]
    expected = [n for n in range(rows)[::-1] if not vanish or n not in vanish.values()]
    if aligned:
        assert items == expected
    else:
        # Every row read is kept, each at least once: catch-up puts them in order.
        assert set(expected) <= set(items)
    assert listing.aligned is aligned


def test_offset_pages_give_up_the_search_and_say_the_order_is_unknown():
    read, reads = shifting_listing(25, {1: 80})
    listing = OffsetPages(read, str, 0, 10)
    items = [item for page in listing for item in page]
    assert not listing.aligned
    assert set(range(25)) <= set(items)
    assert reads[:6] == [0, 9, 19, 29, 39, 49]  # the first page, then five looking for its last row


def test_offset_pages_resume_at_the_last_row_read_so_nothing_is_skipped():
    read, reads = shifting_listing(50, {})
    listing = OffsetPages(read, str, 0, 10)
    pages = iter(listing)
    next(pages), next(pages)
    assert reads == [0, 9] and listing.next_offset == 18
    resumed = OffsetPages(read, str, listing.next_offset, 10)
    assert next(iter(resumed))[0] == 50 - 1 - 18  # the row the first walk read last, read again
