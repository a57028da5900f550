"""The one walk over newest-first pages down to what is already known: Zalo's feed and conversations,
FreshChat's messages, read for new rows or looked through for a send that may have landed; and Zalo's
offset pages read so that rows arriving meanwhile cannot reorder them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

REACHED = "reached"  # a known item was found: everything above it was collected
ENDED = "ended"  # the listing ran out (a short page) before anything known
CAPPED = "capped"  # the page cap came first


@dataclass(frozen=True)
class Walk(Generic[T]):
    items: list[T]  # newest first, as listed
    end: str  # REACHED, ENDED or CAPPED
    pages: int  # pages read


def walk(
    pages: Iterable[list[T]],
    known: Callable[[list[T]], Callable[[T], bool]],
    max_pages: int,
    full_page: int | None = None,
) -> Walk[T]:
    """Collect the items of newest-first ``pages`` that are not known, down to the first page holding a
    known one. ``known(page)`` tells which items of a page are known (one store query a page, not one an
    item). Every item of that last page is looked at: a row tied or skewed in time may stand after the
    first known one (Zalo). Where known means "this one and everything older", use `from_first`.
    ``full_page``: a page shorter than this is the listing's last."""
    items: list[T] = []
    number = 0
    for number, page in enumerate(pages, start=1):
        is_known = known(page)
        reached = False
        for item in page:
            if is_known(item):
                reached = True
            else:
                items.append(item)
        if reached:
            return Walk(items, REACHED, number)
        if full_page is not None and len(page) < full_page:
            return Walk(items, ENDED, number)
        if number >= max_pages:
            return Walk(items, CAPPED, number)
    return Walk(items, ENDED, number)


def from_first(stop: Callable[[T], bool]) -> Callable[[list[T]], Callable[[T], bool]]:
    """For `walk`: an item is known if it, or any newer item of its page, is where ``stop`` says to stop
    (a position, or a time older than the one looked for)."""

    def known(page: list[T]) -> Callable[[T], bool]:
        first = next((i for i, item in enumerate(page) if stop(item)), len(page))
        below = {id(item) for item in page[first:]}
        return lambda item: id(item) in below

    return known


SEARCH_PAGES = 5  # how far on a shifted listing's last row read is looked for again


class OffsetPages(Generic[T]):
    """The pages of a newest-first listing read by offset and count (Zalo's), each read from the last row
    of the one before, so that pages overlap by one row.

    Rows that arrive while we page push every row to a higher offset; a page's worth of them, and the next
    page would hold rows newer than the last, out of order. The overlap measures the push: the last row
    read is looked for again (up to `SEARCH_PAGES` pages on), and whatever stands above it arrived after
    the first page was read. Those rows are left out; the next walk from the top reads them. The rows
    yielded are the listing as it stood at the first read, each once, in its order. Should the last row not
    be found again (it vanished, or more rows arrived than the search covers), every row read is yielded
    and ``aligned`` turns False: the order across that seam is unknown.

    ``read(offset, count)`` returns a page; a page shorter than ``size`` is the listing's last."""

    def __init__(self, read: Callable[[int, int], list[T]], key: Callable[[T], str], start: int, size: int):
        self.read = read
        self.key = key
        self.start = start
        self.size = size
        self.aligned = True
        self.next_offset = start  # where the next page would be read: a later walk may resume there

    def __iter__(self) -> Iterator[list[T]]:
        offset = self.start
        page = self.read(offset, self.size)
        self.next_offset = offset + max(len(page) - 1, 0)
        yield page
        while len(page) == self.size:
            last = self.key(page[-1])
            offset += self.size - 1  # where the last row stood when it was read
            searched: list[list[T]] = []
            found: int | None = None
            for attempt in range(SEARCH_PAGES):
                if attempt:
                    offset += self.size  # pushed deeper than the page before: look on
                page = self.read(offset, self.size)
                searched.append(page)
                keys = [self.key(item) for item in page]
                if last in keys:
                    found = keys.index(last)
                    break
                if len(page) < self.size:
                    break
            self.next_offset = offset + max(len(page) - 1, 0)
            if found is not None:
                yield page[found + 1 :]
            elif any(searched):
                self.aligned = False
                yield [item for read in searched for item in read]
