"""The store as a side of its own: telling its failures (a full disk, a read-only file, an I/O error) from a
bug, what to do about each, and a beacon file that says so where the store itself cannot.

A daemon whose store refuses writes cannot record that in the store, so it keeps a small file beside it,
``<store>.status``: allocated once at start, and rewritten in place, never grown, so the write still
succeeds on a full disk or under a file size limit. `zfsync status` reads it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from zfsync.domain.errors import StoreError, first_line

log = structlog.get_logger("zfsync.store")

BEACON_SIZE = 4096  # one page: rewritten in place, it needs no new block
FAILURE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EIO, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EPERM}


def is_failure(exc: BaseException) -> bool:
    """Whether an error is the store's (the database or the disk under it), not a bug of ours."""
    if isinstance(exc, StoreError | sqlite3.Error):
        return True
    if isinstance(exc, OSError):
        return exc.errno in FAILURE_ERRNOS
    return type(exc).__module__.startswith(("peewee", "psycopg"))


def fix_for(error: str) -> str:
    """What the operator does about a store error, from its words."""
    text = error.lower()
    if "full" in text or "too large" in text or "no space" in text or "quota" in text:
        return "free disk space on the store's filesystem (or raise the file size limit); nothing is lost meanwhile"
    if "readonly" in text or "read-only" in text or "permission" in text or "not permitted" in text:
        return "make the store file, its -wal and -shm files and their directory writable by the zfsync user"
    if "i/o" in text or "malformed" in text or "corrupt" in text:
        return "check the disk (`dmesg`) and the store file; restore from `zfsync backup` if it is damaged"
    return "see `journalctl -u zfsync -p err` for the store's error"


@dataclass(frozen=True)
class StoreState:
    """What the daemon last knew of its store."""

    up: bool
    at: float  # when this was written
    since: float  # when the store went down (or came back)
    error: str = ""
    failures: int = 0  # failed writes since it went down

    @property
    def fix(self) -> str:
        return fix_for(self.error) if not self.up else ""


class Beacon:
    """The file beside a SQLite store that says how the store is, written in place."""

    def __init__(self, store_path: Path):
        self.path = store_path.with_name(store_path.name + ".status")
        self._fd: int | None = None

    def open(self) -> None:
        """Allocate the file (at start, while the store works): later writes never grow it."""
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < BEACON_SIZE:
                os.pwrite(self._fd, b" " * BEACON_SIZE, 0)
        except OSError:
            self.close()

    def write(self, state: StoreState) -> None:
        if self._fd is None:
            return
        data = json.dumps(asdict(state)).encode()[: BEACON_SIZE - 1]
        with contextlib.suppress(OSError):  # nowhere left to say it: the journal still does
            os.pwrite(self._fd, data.ljust(BEACON_SIZE, b" "), 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self) -> StoreState | None:
        try:
            found: Any = json.loads(self.path.read_bytes().strip() or b"null")
            return StoreState(**found) if isinstance(found, dict) else None
        except (OSError, ValueError, TypeError):
            return None


REPEAT_EVERY = 60.0  # seconds between two lines about a store that keeps failing


class StoreWatch:
    """Whether the store takes writes, as the daemon's loops find out: one error line when it stops, one
    line a minute (with a count) while it stays so, one when it takes writes again; never a traceback per
    tick. The beacon carries it to `zfsync status`."""

    def __init__(
        self,
        beacon: Beacon | None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.beacon = beacon
        self.clock = clock
        self.monotonic = monotonic
        self.state = StoreState(True, clock(), clock())
        self._said_at = -math.inf
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return not self.state.up

    def failed(self, exc: BaseException, where: str) -> None:
        error = first_line(exc)[:300]
        now = self.clock()
        with self._lock:
            if self.state.up:
                self.state = StoreState(False, now, now, error, 1)
                self._said_at = self.monotonic()
                log.error("store_failing", where=where, error=error, fix=fix_for(error))
            else:
                self.state = replace(self.state, at=now, error=error, failures=self.state.failures + 1)
                if self.monotonic() - self._said_at >= REPEAT_EVERY:
                    self._said_at = self.monotonic()
                    down_for = round(now - self.state.since)
                    log.error("store_still_failing", error=error, failures=self.state.failures, seconds=down_for)
            self._write()

    def worked(self) -> None:
        """A write went through."""
        now = self.clock()
        with self._lock:
            if not self.state.up:
                log.warning("store_recovered", seconds=round(now - self.state.since), failures=self.state.failures)
                self.state = StoreState(True, now, now)
            else:
                self.state = replace(self.state, at=now)
            self._write()

    def _write(self) -> None:
        if self.beacon is not None:
            self.beacon.write(self.state)
