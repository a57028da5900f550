"""Which of several daemons on one PostgreSQL store is the active one: a session-level advisory lock.

The lock lives on a connection of its own, so PostgreSQL frees it the moment that session ends, however
it ends: the process killed, the machine gone (once TCP keepalives tell the server), or the session
terminated. The holder asks the server every second whether its session still holds the lock; a daemon
whose last good answer is older than `STALE` seconds must stop sending (the daemon exits), and a new
holder waits `TAKEOVER_GRACE` before its first send, so two daemons never send at once.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import structlog

from zfsync.domain.errors import first_line

log = structlog.get_logger("zfsync.store")

LOCK_CLASS = 0x7A66  # "zf": the first half of every zfsync advisory lock key
MIGRATION_LOCK = 1  # the second half of the key serialising schema migrations of daemons starting at once
CHECK_EVERY = 1.0  # seconds between two questions of the holder to the server
STALE = 3.0  # a holder without a good answer for this long stops sending
TAKEOVER_GRACE = 2 * STALE  # a new holder waits this long: any former holder has stopped by then
# How quickly the lock's own connection notices a dead network: keepalive probes after 5 s of silence, and
# unacknowledged data abandoned after 5 s. The server frees the lock of a vanished machine on its own
# keepalive settings (README: tcp_keepalives_*).
CONNECTION_OPTIONS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}


def is_postgres_url(location: Path | str) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def conninfo(url: str, password: str = "") -> dict[str, Any]:
    """libpq's connection parameters from ``url``, with ``password`` (else libpq finds it: PGPASSWORD,
    ~/.pgpass)."""
    from psycopg.conninfo import conninfo_to_dict  # the optional extra: imported only for PostgreSQL

    params: dict[str, Any] = dict(conninfo_to_dict(url))
    if password:
        params["password"] = password
    params.setdefault("application_name", "zfsync")
    return params


def lock_key(name: str) -> int:
    """A stable 31-bit key for ``name`` (the OA): the same on every machine and every Python."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


class Lease:
    """The advisory lock keyed on ``name``, on its own connection."""

    def __init__(self, params: dict[str, Any], name: str):
        self.params = params
        self.key = lock_key(name)
        self._connection: Any = None

    def try_acquire(self, identity: str) -> bool:
        """Take the lock if nobody holds it; ``identity`` names this daemon to the others."""
        import psycopg

        try:
            if self._connection is None or self._connection.closed:
                params = {**self.params, **CONNECTION_OPTIONS, "application_name": identity[:63]}
                self._connection = psycopg.connect(**params, autocommit=True)
            row = self._connection.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, self.key)).fetchone()
            return bool(row and row[0])
        except psycopg.Error as exc:
            log.warning("lease_unreachable", error=first_line(exc))
            self.release()
            return False

    def held(self) -> bool:
        """Whether the server says this session holds the lock right now."""
        import psycopg

        if self._connection is None or self._connection.closed:
            return False
        try:
            row = self._connection.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                " AND classid = %s AND objid = %s AND objsubid = 2 AND granted)",
                (LOCK_CLASS, self.key),
            ).fetchone()
            return bool(row and row[0])
        except psycopg.Error as exc:
            log.warning("lease_check_failed", error=first_line(exc))
            self.release()
            return False

    def holder(self) -> str | None:
        """The identity of the session holding the lock, if any (asked on this lease's connection)."""
        import psycopg

        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(**{**self.params, **CONNECTION_OPTIONS}, autocommit=True)
            row = self._connection.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.objsubid = 2"
                " AND l.granted",
                (LOCK_CLASS, self.key),
            ).fetchone()
            return str(row[0]) if row else None
        except psycopg.Error:
            self.release()
            return None

    def release(self) -> None:
        """Close the lock's connection: the server frees the lock with the session."""
        if self._connection is not None:
            # Closing a broken connection may fail in its own way; it is gone either way.
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
