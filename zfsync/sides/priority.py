"""What a request to an API side is for, and how long it may wait for room: set by the sync core around
its work, read by each side's `zfsync.sides.quota.Quota` before every request (per thread, through context
variables, so the clients need no extra arguments)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from enum import IntEnum
from typing import TypeVar

T = TypeVar("T")


class Priority(IntEnum):
    SEND = 0
    FEED = 1
    CATCHUP = 2
    PROFILE = 3
    HISTORY = 4  # an imported history's reads and posts: after everything else


_purpose: ContextVar[Priority] = ContextVar("zfsync_purpose", default=Priority.FEED)
_patience: ContextVar[float] = ContextVar("zfsync_patience", default=math.inf)


@contextmanager
def holding(variable: ContextVar[T], value: T) -> Iterator[None]:
    """``variable`` is ``value`` for the block (on this thread), then what it was."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def purpose(priority: Priority) -> AbstractContextManager[None]:
    """Every request made inside (on this thread) is spent at ``priority``."""
    return holding(_purpose, priority)


def current_purpose() -> Priority:
    return _purpose.get()


def patience(seconds: float) -> AbstractContextManager[None]:
    """Every request made inside (on this thread) waits at most ``seconds`` for room, then raises
    `NoRoom` instead of holding its caller."""
    return holding(_patience, seconds)


def current_patience() -> float:
    return _patience.get()
