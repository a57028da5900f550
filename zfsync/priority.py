"""What a request to an API side is for, and how long it may wait for room: set by the sync core around
its work, read by each side's `zfsync.quota.Quota` before every request (per thread, through context
variables, so the clients need no extra arguments)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import IntEnum


class Priority(IntEnum):
    SEND = 0
    FEED = 1
    CATCHUP = 2
    PROFILE = 3


_purpose: ContextVar[Priority] = ContextVar("zfsync_purpose", default=Priority.FEED)
_patience: ContextVar[float] = ContextVar("zfsync_patience", default=math.inf)


@contextmanager
def purpose(priority: Priority) -> Iterator[None]:
    """Every request made inside (on this thread) is spent at ``priority``."""
    token = _purpose.set(priority)
    try:
        yield
    finally:
        _purpose.reset(token)


def current_purpose() -> Priority:
    return _purpose.get()


@contextmanager
def patience(seconds: float) -> Iterator[None]:
    """Every request made inside (on this thread) waits at most ``seconds`` for room, then raises
    `NoRoom` instead of holding its caller."""
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)


def current_patience() -> float:
    return _patience.get()
