"""The one walk over newest-first pages down to what is already known: Zalo's feed and conversations,
FreshChat's messages, read for new rows or looked through for a send that may have landed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
