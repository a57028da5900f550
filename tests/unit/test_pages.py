"""The one walk over newest-first pages: where it stops, and why."""

from __future__ import annotations

import pytest

from zfsync.sync.pages import CAPPED, ENDED, REACHED, from_first, walk


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
