"""The store: one SQLite file or PostgreSQL database. Callers get frozen domain values, never rows or SQL.

Concurrency: the daemon's two jobs run in their own threads, each with its own SQLite connection (peewee
keeps one per thread). WAL lets readers (`zfsync status`) run beside the writer, and ``busy_timeout``
makes a writer wait for the other instead of failing.
"""

from __future__ import annotations

import copy
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peewee import Database, InterfaceError, OperationalError, PostgresqlDatabase, SqliteDatabase, chunked
from playhouse.pool import PooledPostgresqlDatabase
from playhouse.shortcuts import ReconnectMixin

from zfsync.domain.errors import StoreError, first_line
from zfsync.store import migrations
from zfsync.store.base import LEASE_KEY
from zfsync.store.conversations import ConversationStore
from zfsync.store.feed import FeedStore
from zfsync.store.figures import FiguresStore
from zfsync.store.fleet import FleetStore
from zfsync.store.groups import GroupStore
from zfsync.store.lease import Lease, conninfo, is_postgres_url
from zfsync.store.models import ANY_TENANT, Tables
from zfsync.store.outbox import OutboxStore
from zfsync.store.prepared import PreparedQueries
from zfsync.store.ratings import RatingStore
from zfsync.store.secrets import Sealer
from zfsync.store.state import StateStore
from zfsync.store.tenants import TenantStore
from zfsync.store.waiting import WaitingStore

BUSY_TIMEOUT_MS = 10_000
COPY_BATCH = 500  # rows a statement when a store is copied


class _Postgres(ReconnectMixin, PostgresqlDatabase):
    # A connection the server dropped (a restart, a failover of the database) is opened again on the next
    # query outside a transaction; inside one the error stands, and the transaction is retried by its cycle.
    reconnect_errors = (
        (OperationalError, "terminating connection"),
        (OperationalError, "the connection is closed"),
        (OperationalError, "server closed the connection"),
        (OperationalError, "consuming input failed"),
        (InterfaceError, "connection already closed"),
        (InterfaceError, "the connection is closed"),
    )


class _SharedPostgres(ReconnectMixin, PooledPostgresqlDatabase):
    """A fleet's daemon serves many desks, each with threads of its own: a connection a thread would hold
    for its whole life would soon pass PostgreSQL's ``max_connections``. Here a thread holds one only while
    a statement or a transaction runs; between them it goes back to the pool, which allows ``max_connections``
    and makes a thread wait (up to `POOL_WAIT`) when all are in use. (psycopg's cursors hold their whole
    result once executed, so a result is read after its connection went back.)"""

    reconnect_errors = _Postgres.reconnect_errors

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        cursor = super().execute_sql(sql, params)
        self._let_go()
        return cursor

    def commit(self) -> None:
        super().commit()
        self._let_go()  # a transaction's end (peewee pops it first)

    def rollback(self) -> None:
        super().rollback()
        self._let_go()

    def _let_go(self) -> None:
        if not self.in_transaction() and not self.is_closed():
            self.close()


POOL_WAIT = 30.0  # seconds a thread of a fleet's daemon waits for a free connection


def in_memory(name: str) -> str:
    """Where a SQLite store lives in this process's memory only, shared by its connections while one is open:
    for tests of the core, which need a real store but no file."""
    return f"{MEMORY_PREFIX}{name}?mode=memory&cache=shared"


def is_in_memory(location: Path | str) -> bool:
    return str(location).startswith(MEMORY_PREFIX) and "mode=memory" in str(location)


MEMORY_PREFIX = "file:"


class _Database(SqliteDatabase):
    def rollback(self) -> None:
        # SQLite itself rolls back on some errors (disk full, I/O error); peewee's own ROLLBACK then fails
        # with "no transaction is active" and hides the error that matters from the log.
        try:
            super().rollback()
        except OperationalError as exc:
            if "no transaction is active" not in str(exc):
                raise


class Store(
    StateStore,
    ConversationStore,
    FeedStore,
    OutboxStore,
    WaitingStore,
    FiguresStore,
    RatingStore,
    GroupStore,
    TenantStore,
    FleetStore,
):
    """The one door to the store: its parts (`StateStore` with `HistoryStore`, `ContactStore`,
    `ConversationStore`, `FeedStore`, `OutboxStore`, `WaitingStore`, `FiguresStore`, `RatingStore`,
    `GroupStore`, and a fleet's `TenantStore` and `FleetStore`) each own a seam."""

    def __init__(
        self,
        location: Path | str,
        password: str = "",
        tenant: int = 0,
        sealer: Sealer | None = None,
        connections: int = 0,
    ):
        """``location``: a SQLite file, or a ``postgresql://user@host[:port]/db`` URL (the password comes
        from ``password``, else from libpq's own PGPASSWORD or ~/.pgpass, never from the URL). ``tenant``:
        whose rows it reads and writes (0: a single-OA store's); ``sealer``: what seals the tokens;
        ``connections``: on PostgreSQL, share that many among every thread (a fleet's daemon), instead of
        one a thread."""
        self.url = str(location) if is_postgres_url(location) else ""
        self.path = Path(location) if not self.url else Path()
        self.postgres = bool(self.url)
        self.db: Database
        if self.postgres:
            self.db = (
                _SharedPostgres(None, max_connections=connections, timeout=POOL_WAIT, stale_timeout=300)
                if connections
                else _Postgres(None)
            )
            self._conninfo = conninfo(self.url, password)
        else:
            # BEGIN IMMEDIATE: a transaction that reads and then writes would otherwise fail at once with
            # "database is locked" when another thread wrote in between (SQLite cannot upgrade a stale read
            # snapshot, and the busy timeout does not apply). Taking the write lock first makes it wait.
            self.db = _Database(None, lock_type="IMMEDIATE")
        self.tenant = tenant
        self.sealer = sealer or Sealer()
        self.tables = Tables(self.db, tenant)
        self.prepared = PreparedQueries()
        # The active daemon's lease token (PostgreSQL): a claim succeeds only while the store names this
        # token as the active one, so a daemon that lost the lead can no longer start a send.
        self.fence: str | None = None

    @property
    def where(self) -> str:
        """The store as logs and messages name it: the file, or the URL (which never holds a password)."""
        return self.url or str(self.path)

    @classmethod
    def open(
        cls,
        location: Path | str,
        password: str = "",
        tenant: int = 0,
        sealer: Sealer | None = None,
        connections: int = 0,
    ) -> Store:
        store = cls(location, password, tenant, sealer, connections)
        store._connect()
        return store

    def for_tenant(self, tenant: int) -> Store:
        """This store as ``tenant`` sees it: the same database and connections, that tenant's rows only."""
        scoped = copy.copy(self)
        scoped.tenant = tenant
        scoped.tables = Tables(self.db, tenant)
        scoped.prepared = PreparedQueries()
        scoped.fence = None
        return scoped

    def _connect(self) -> None:
        if self.postgres:
            conninfo = dict(self._conninfo)
            self.db.init(conninfo.pop("dbname", None), **conninfo)
        else:
            memory = is_in_memory(self.path) or str(self.path) == ":memory:"
            if not memory:
                _create_private(self.path)
            self.db.init(
                str(self.path),
                pragmas={
                    "journal_mode": "wal",
                    "busy_timeout": BUSY_TIMEOUT_MS,
                    "foreign_keys": 1,
                    "synchronous": "normal",  # with WAL: durable at checkpoints, never corrupt
                },
                check_same_thread=False,
                uri=is_in_memory(self.path),
            )
        try:
            self.db.connect(reuse_if_open=True)
            migrations.migrate(self.db, self.tables)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"store {self.where} cannot be used: {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith(("peewee", "psycopg")):
                raise StoreError(f"store {self.where} cannot be used: {first_line(exc)}") from None
            raise

    def lease(self, name: str) -> Lease | None:
        """The lock that makes one daemon of many the active one (PostgreSQL); None for SQLite, where the
        lock file beside the store already allows only one."""
        return Lease(self._conninfo, name) if self.postgres else None

    def backup(self, target: Path) -> None:
        """A consistent copy of the store at ``target`` (mode 0600: it holds the tokens), made with SQLite's
        online backup, so the daemon may keep writing meanwhile."""
        if self.postgres:
            raise StoreError(
                "the store is on PostgreSQL: back it up with the database's own tools "
                "(pg_dump, or the provider's snapshots), not with zfsync backup"
            )
        if target.exists():
            raise StoreError(f"{target} exists already: give the backup a new file name")
        _create_private(target)
        source = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        except sqlite3.Error as exc:
            target.unlink(missing_ok=True)
            raise StoreError(f"backup to {target} failed: {exc}") from None
        finally:
            copy.close()
            source.close()

    def copy_into(self, target: Store) -> dict[str, int]:
        """Copy every row into ``target``, an empty store (to move a SQLite store to PostgreSQL, or back),
        in one transaction there; returns how many rows each table had. Ids are kept, so the message map,
        the cursors and the tokens mean the same there. Every tenant's rows are copied."""
        mine, theirs = Tables(self.db, ANY_TENANT), Tables(target.db, ANY_TENANT)
        pairs = [(a, b) for a, b in zip(mine.all, theirs.all, strict=True) if a is not mine.SchemaVersion]
        counts: dict[str, int] = {}
        with target.db.atomic():
            filled = [b._meta.table_name for _, b in pairs if b.select().exists()]
            if filled:
                raise StoreError(
                    f"store {target.where} is not empty (it has {', '.join(filled)} rows): copy into a new database"
                )
            for source, dest in pairs:
                rows = source.select().order_by(*source._meta.get_primary_keys()).dicts().iterator()
                counts[dest._meta.table_name] = 0
                for batch in chunked(rows, COPY_BATCH):
                    dest.insert_many(batch).execute()
                    counts[dest._meta.table_name] += len(batch)
                if target.postgres and dest._meta.primary_key.name == "id":
                    # The copied ids were given explicitly: the id sequence must go on after the largest.
                    table = dest._meta.table_name
                    target.db.execute_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false)"
                        f" FROM {table}"
                    )
        return counts

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    def take_lead(self, token: str) -> None:
        """Name ``token`` the active daemon's: claims of any former one fail from now on."""
        self.set_state(LEASE_KEY, token)
        self.fence = token


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only: it holds OAuth tokens."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)  # a file made by hand, or by an older version, holds tokens too
    except OSError as exc:
        raise StoreError(f"store {path} cannot be created: {exc.strerror}: set store.path to a writable file") from None
