"""Every query zfsync runs. Callers get plain rows and never write SQL themselves.

Concurrency: the daemon's two jobs run in their own threads, each with its own SQLite connection (peewee
keeps one per thread). WAL lets readers (`zfsync status`) run beside the writer, and ``busy_timeout``
makes a writer wait for the other instead of failing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peewee import (
    JOIN,
    Case,
    Database,
    InterfaceError,
    OperationalError,
    PostgresqlDatabase,
    SqliteDatabase,
    fn,
)
from playhouse.shortcuts import ReconnectMixin

from zfsync.domain import ZaloTokens, safe_text
from zfsync.errors import StoreError, first_line
from zfsync.store import migrations
from zfsync.store.lease import Lease, conninfo, is_postgres_url
from zfsync.store.models import (
    FAILED,
    OPEN_STATES,
    PENDING,
    SENDING,
    SENT,
    SKIPPED,
    Contact,
    Conversation,
    Health,
    Message,
    State,
    Token,
    database,
)
from zfsync.zalo.oauth import StoredTokens

BUSY_TIMEOUT_MS = 10_000
LEASE_KEY = "daemon.lease"  # the lease token of the active daemon (PostgreSQL)
GONE = 1e18  # the next poll of a conversation FreshChat no longer has: never


class _Postgres(ReconnectMixin, PostgresqlDatabase):  # type: ignore[misc]
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


class _Database(SqliteDatabase):
    def rollback(self) -> None:
        # SQLite itself rolls back on some errors (disk full, I/O error); peewee's own ROLLBACK then fails
        # with "no transaction is active" and hides the error that matters from the log.
        try:
            super().rollback()
        except OperationalError as exc:
            if "no transaction is active" not in str(exc):
                raise


@dataclass(frozen=True)
class NewRow:
    """An outbox row to insert; ``(direction, source_id, part)`` is its identity."""

    direction: str
    source_id: str
    kind: str
    payload: dict[str, Any]
    source_time: float
    part: int = 0
    status: str = PENDING
    dest_id: str | None = None
    conversation_id: str | None = None
    last_error: str = ""


@dataclass(frozen=True)
class OwnSend:
    """One of zfsync's sends to a Zalo user, as echo recognition needs it."""

    row_id: int
    kind: str
    payload: dict[str, Any]
    dest_id: str | None
    echo_id: str | None
    status: str
    listed: bool  # the listing row of this send is known: its echo_id, or a recorded row with its dest_id


@dataclass
class Figures:
    """What `zfsync status` shows about the message flow."""

    by_status: dict[str, dict[str, int]] = field(default_factory=dict)
    carried: dict[str, dict[str, int]] = field(default_factory=dict)
    latency: dict[str, dict[str, float | None]] = field(default_factory=dict)


class Store:
    def __init__(self, location: Path | str, password: str = ""):
        """``location``: a SQLite file, or a ``postgresql://user@host[:port]/db`` URL (the password comes
        from ``password``, else from libpq's own PGPASSWORD or ~/.pgpass, never from the URL)."""
        self.url = str(location) if is_postgres_url(location) else ""
        self.path = Path(location) if not self.url else Path()
        self.postgres = bool(self.url)
        self.db: Database
        if self.postgres:
            self.db = _Postgres(None)
            self._conninfo = conninfo(self.url, password)
        else:
            # BEGIN IMMEDIATE: a transaction that reads and then writes would otherwise fail at once with
            # "database is locked" when another thread wrote in between (SQLite cannot upgrade a stale read
            # snapshot, and the busy timeout does not apply). Taking the write lock first makes it wait.
            self.db = _Database(None, lock_type="IMMEDIATE")
        # The active daemon's lease token (PostgreSQL): a claim succeeds only while the store names this
        # token as the active one, so a daemon that lost the lead can no longer start a send.
        self.fence: str | None = None

    @property
    def where(self) -> str:
        """The store as logs and messages name it: the file, or the URL (which never holds a password)."""
        return self.url or str(self.path)

    @classmethod
    def open(cls, location: Path | str, password: str = "") -> Store:
        store = cls(location, password)
        store._connect()
        return store

    def _connect(self) -> None:
        if self.postgres:
            conninfo = dict(self._conninfo)
            self.db.init(conninfo.pop("dbname", None), **conninfo)
        else:
            if str(self.path) != ":memory:":
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
            )
        database.initialize(self.db)
        try:
            self.db.connect(reuse_if_open=True)
            migrations.migrate(self.db)
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

    def _least(self, a: Any, b: Any) -> Any:
        return fn.LEAST(a, b) if self.postgres else fn.MIN(a, b)

    def _greatest(self, a: Any, b: Any) -> Any:
        return fn.GREATEST(a, b) if self.postgres else fn.MAX(a, b)

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.db.atomic():
            yield

    # --- named state ---------------------------------------------------------------------------------

    def get_state(self, key: str, default: str | None = None) -> str | None:
        row = State.get_or_none(State.key == key)
        return row.value if row else default

    def set_state(self, key: str, value: str) -> None:
        State.insert(key=key, value=value).on_conflict(
            conflict_target=[State.key], update={State.value: value}
        ).execute()

    def delete_state(self, key: str) -> None:
        State.delete().where(State.key == key).execute()

    # --- tokens (the `TokenStore` of zfsync.zalo.oauth) ----------------------------------------------

    def load_tokens(self) -> StoredTokens | None:
        row = Token.get_or_none(Token.provider == "zalo")
        if row is None:
            return None
        return StoredTokens(row.access_token, row.refresh_token, row.expires_at, row.dead_reason)

    def save_tokens(self, tokens: ZaloTokens, now: float) -> None:
        Token.insert(
            provider="zalo",
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=now + tokens.expires_in,
            updated_at=now,
            dead_reason="",
        ).on_conflict(conflict_target=[Token.provider], preserve=_columns(Token)).execute()

    def mark_tokens_dead(self, reason: str) -> None:
        Token.update(dead_reason=reason).where(Token.provider == "zalo").execute()

    def token_expiry(self) -> tuple[float, str] | None:
        row = Token.get_or_none(Token.provider == "zalo")
        return (row.expires_at, row.dead_reason) if row else None

    # --- health --------------------------------------------------------------------------------------

    def set_health(self, side: str, state: str, now: float, error: str = "") -> None:
        row = Health.get_or_none(Health.side == side)
        last_ok = row.last_ok_at if row else None
        last_error_at = row.last_error_at if row else None
        last_error = row.last_error if row else ""
        if state == "OK":
            last_ok = now
        else:
            last_error_at, last_error = now, safe_text(error)
        Health.insert(
            side=side,
            state=state,
            last_ok_at=last_ok,
            last_error_at=last_error_at,
            last_error=last_error,
            updated_at=now,
        ).on_conflict(conflict_target=[Health.side], preserve=_columns(Health)).execute()

    def health(self) -> dict[str, dict[str, Any]]:
        return {row["side"]: row for row in Health.select().dicts()}

    # --- contacts ------------------------------------------------------------------------------------

    def contact(self, zalo_user_id: str) -> Contact | None:
        return Contact.get_or_none(Contact.zalo_user_id == zalo_user_id)

    def contact_by_id(self, contact_id: int) -> Contact:
        return Contact.get_by_id(contact_id)

    def set_fc_user(self, contact_id: int, fc_user_id: str, now: float) -> None:
        # The user was just made from the current name and avatar: the next profile check is due in a day.
        Contact.update(fc_user_id=fc_user_id, profile_checked_at=now).where(Contact.id == contact_id).execute()

    def contacts_for_profile_check(self, checked_before: float, wrote_since_ms: int, limit: int) -> list[Contact]:
        """Contacts with a FreshChat user who wrote since ``wrote_since_ms`` and whose profile was last
        checked before ``checked_before``."""
        return list(
            Contact.select()
            .where(
                Contact.fc_user_id.is_null(False),
                Contact.profile_checked_at < checked_before,
                Contact.last_inbound_ms >= wrote_since_ms,
            )
            .order_by(Contact.profile_checked_at)
            .limit(limit)
        )

    def set_profile(self, contact_id: int, name: str, avatar: str, checked_at: float) -> None:
        Contact.update(display_name=name, avatar_url=avatar, profile_checked_at=checked_at).where(
            Contact.id == contact_id
        ).execute()

    # --- Zalo ingest ---------------------------------------------------------------------------------

    def known_zalo_ids(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` already in the map: customer messages we took, or our own sends."""
        ids = list(ids)
        known: set[str] = set()
        for chunk in _chunks(ids, 400):
            known.update(
                r.source_id
                for r in Message.select(Message.source_id).where(
                    Message.direction == "z2f", Message.source_id.in_(chunk)
                )
            )
            known.update(
                r.dest_id
                for r in Message.select(Message.dest_id).where(Message.direction == "f2z", Message.dest_id.in_(chunk))
            )
        return known

    def recorded_zalo_ids(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` recorded from Zalo's listings (each user's are recorded all at once)."""
        found: set[str] = set()
        for chunk in _chunks(list(ids), 400):
            query = Message.select(Message.source_id).where(Message.direction == "z2f", Message.source_id.in_(chunk))
            found.update(r.source_id for r in query)
        return found

    def record_zalo_messages(
        self,
        user_id: str,
        name: str,
        avatar: str,
        rows: list[NewRow],
        cursor: tuple[int, str],
        last_inbound_ms: int,
        now: float,
    ) -> Contact:
        """Insert one user's new rows and move their cursor, in one transaction."""
        with self.db.atomic():
            contact = Contact.get_or_none(Contact.zalo_user_id == user_id)
            if contact is None:
                contact = Contact.create(
                    zalo_user_id=user_id,
                    display_name=name,
                    avatar_url=avatar,
                    first_seen_ms=cursor[0],
                    cursor_time_ms=cursor[0],
                    cursor_id=cursor[1],
                    last_inbound_ms=last_inbound_ms,
                )
            else:
                updates: dict[Any, Any] = {}
                # The id is that of the newest row in Zalo's order; its time may be older than the newest
                # time seen (clocks differ), and the time never moves back: it is a floor, not an order.
                updates[Contact.cursor_id] = cursor[1]
                if cursor[0] > contact.cursor_time_ms:
                    updates[Contact.cursor_time_ms] = cursor[0]
                if last_inbound_ms > contact.last_inbound_ms:
                    updates[Contact.last_inbound_ms] = last_inbound_ms
                if not contact.display_name and name:
                    updates[Contact.display_name] = name
                if updates:
                    Contact.update(updates).where(Contact.id == contact.id).execute()
            self._insert_rows(contact.id, rows, now)
            if rows:
                # A customer who just wrote is likely to get an answer soon: poll their conversation now.
                Conversation.update(last_activity_at=now, next_poll_at=now).where(
                    Conversation.contact == contact.id,
                    Conversation.is_current == True,  # noqa: E712
                ).execute()
            return Contact.get_by_id(contact.id)

    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int:
        with self.db.atomic():
            return self._insert_rows(contact_id, rows, now)

    def _insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int:
        inserted = 0
        for row in rows:
            query = Message.insert(
                direction=row.direction,
                source_id=row.source_id,
                part=row.part,
                contact=contact_id,
                kind=row.kind,
                payload=_dumps(row.payload),
                source_time=row.source_time,
                status=row.status,
                dest_id=row.dest_id,
                conversation_id=row.conversation_id,
                last_error=safe_text(row.last_error),
                created_at=now,
                done_at=None if row.status in OPEN_STATES else now,
            ).on_conflict_ignore()
            inserted += self.db.execute(query).rowcount
        return inserted

    # --- delivery ------------------------------------------------------------------------------------

    def due_heads(self, direction: str, now: float, limit: int) -> list[Message]:
        """For each contact, its oldest undelivered row in ``direction``, if that row is due.

        Only the head of each contact's queue is offered, so messages leave in source order and a row that
        keeps failing holds back its own contact alone. Source order is the order rows were queued in: the
        readers queue each contact's messages in the order the source lists them (times may tie or disagree).
        """
        Inner = Message.alias()
        head = (
            Inner.select(Inner.id)
            .where(Inner.contact == Message.contact, Inner.direction == direction, Inner.status.in_(OPEN_STATES))
            .order_by(Inner.id)
            .limit(1)
        )
        return list(
            Message.select()
            .where(
                Message.direction == direction,
                Message.status.in_(OPEN_STATES),
                Message.id == head,
                Message.next_attempt_at <= now,
            )
            .order_by(Message.next_attempt_at, Message.source_time)
            .limit(limit)
        )

    def next_due_time(self, direction: str) -> float | None:
        value = (
            Message.select(fn.MIN(Message.next_attempt_at))
            .where(Message.direction == direction, Message.status.in_(OPEN_STATES))
            .scalar()
        )
        return float(value) if value is not None else None

    def claim(self, row: Message, now: float) -> bool:
        """Compare-and-set the row to ``sending``; False if another worker changed it meanwhile."""
        same_claim = Message.claimed_at.is_null() if row.claimed_at is None else Message.claimed_at == row.claimed_at
        query = Message.update(status=SENDING, claimed_at=now).where(
            Message.id == row.id, Message.status == row.status, same_claim
        )
        if self.fence is not None:
            query = query.where(fn.EXISTS(State.select().where(State.key == LEASE_KEY, State.value == self.fence)))
        return query.execute() == 1

    def take_lead(self, token: str) -> None:
        """Name ``token`` the active daemon's: claims of any former one fail from now on."""
        self.set_state(LEASE_KEY, token)
        self.fence = token

    def finish_sent(self, row_id: int, dest_id: str, now: float, conversation_id: str | None = None) -> None:
        updates: dict[Any, Any] = {
            Message.status: SENT,
            Message.dest_id: dest_id,
            Message.done_at: now,
            Message.last_error: "",
            Message.error_code: "",
        }
        if conversation_id:
            updates[Message.conversation_id] = conversation_id
        Message.update(updates).where(Message.id == row_id).execute()

    def postpone(
        self, row_id: int, next_at: float, error: str, code: str, outcome_unknown: bool, count_attempt: bool = True
    ) -> None:
        """Retry later; a row whose last send may have landed stays ``sending`` so it is reconciled first."""
        Message.update(
            status=SENDING if outcome_unknown else PENDING,
            next_attempt_at=next_at,
            last_error=safe_text(error),
            error_code=code,
            attempts=Message.attempts + (1 if count_attempt else 0),
        ).where(Message.id == row_id).execute()

    def fail(self, row_id: int, error: str, code: str, now: float) -> None:
        Message.update(
            status=FAILED, last_error=safe_text(error), error_code=code, done_at=now, attempts=Message.attempts + 1
        ).where(Message.id == row_id).execute()

    def skip(self, row_id: int, reason: str, now: float) -> None:
        Message.update(status=SKIPPED, last_error=safe_text(reason), done_at=now).where(Message.id == row_id).execute()

    def set_payload(self, row_id: int, payload: dict[str, Any]) -> None:
        """Record work done for a row before its send (an upload), so a retry or reconcile reuses it."""
        Message.update(payload=_dumps(payload)).where(Message.id == row_id).execute()

    def dest_taken(self, direction: str, dest_id: str) -> bool:
        return Message.select().where(Message.direction == direction, Message.dest_id == dest_id).exists()

    def listing_claimed(self, zalo_id: str) -> bool:
        """Whether a Zalo listing row is known as the echo of one of our sends (by send id or by match)."""
        return (
            Message.select()
            .where(Message.direction == "f2z", (Message.dest_id == zalo_id) | (Message.echo_id == zalo_id))
            .exists()
        )

    def own_sends(self, contact_id: int, since: float) -> list[OwnSend]:
        """Our sends to a contact claimed since ``since`` that reached Zalo or may have, oldest first."""
        query = (
            Message.select()
            .where(
                Message.contact == contact_id,
                Message.direction == "f2z",
                Message.status.in_((SENT, SENDING)),
                Message.claimed_at >= since,
            )
            .order_by(Message.id)
        )
        sends = list(query)
        recorded = {
            r.source_id
            for r in Message.select(Message.source_id).where(
                Message.direction == "z2f", Message.source_id.in_([m.dest_id for m in sends if m.dest_id])
            )
        }
        return [
            OwnSend(
                m.id,
                m.kind,
                json.loads(m.payload),
                m.dest_id,
                m.echo_id,
                m.status,
                bool(m.echo_id) or m.dest_id in recorded,
            )
            for m in sends
        ]

    def set_echo(self, row_id: int, zalo_id: str) -> bool:
        """Record that ``zalo_id`` is how the listings show our send ``row_id``; False if already known."""
        return Message.update(echo_id=zalo_id).where(Message.id == row_id, Message.echo_id.is_null()).execute() == 1

    def row(self, row_id: int) -> Message | None:
        return Message.get_or_none(Message.id == row_id)

    def open_rows_of(self, contact_id: int, direction: str) -> int:
        return (
            Message.select()
            .where(Message.contact == contact_id, Message.direction == direction, Message.status.in_(OPEN_STATES))
            .count()
        )

    # --- conversations -------------------------------------------------------------------------------

    def current_conversation(self, contact_id: int) -> Conversation | None:
        return (
            Conversation.select()
            .where(Conversation.contact == contact_id, Conversation.is_current == True)  # noqa: E712
            .order_by(Conversation.id.desc())
            .first()
        )

    def previous_conversation(self, contact_id: int) -> str | None:
        """The FreshChat id of the contact's newest conversation, current or not (a forgotten one too)."""
        row = Conversation.select().where(Conversation.contact == contact_id).order_by(Conversation.id.desc()).first()
        return row.fc_conversation_id if row else None

    def conversation(self, fc_conversation_id: str) -> Conversation | None:
        return Conversation.get_or_none(Conversation.fc_conversation_id == fc_conversation_id)

    def add_conversation(self, contact_id: int, fc_conversation_id: str, now: float) -> Conversation:
        with self.db.atomic():
            Conversation.update(is_current=False).where(Conversation.contact == contact_id).execute()
            existing = Conversation.get_or_none(Conversation.fc_conversation_id == fc_conversation_id)
            if existing:
                Conversation.update(is_current=True).where(Conversation.id == existing.id).execute()
                return Conversation.get_by_id(existing.id)
            return Conversation.create(
                contact=contact_id,
                fc_conversation_id=fc_conversation_id,
                created_at=now,
                last_activity_at=now,
                next_poll_at=now,
            )

    def forget_conversation(self, conversation_id: int) -> None:
        """FreshChat no longer has it: never post to it or poll it again (its rows stay, for the record)."""
        Conversation.update(is_current=False, next_poll_at=GONE).where(Conversation.id == conversation_id).execute()

    def forget_fc_user(self, contact_id: int) -> None:
        """FreshChat no longer has the contact's user: the next message finds or creates one again."""
        with self.db.atomic():
            Contact.update(fc_user_id=None).where(Contact.id == contact_id).execute()
            Conversation.update(is_current=False).where(Conversation.contact == contact_id).execute()

    def set_resolved(self, conversation_id: int, resolved: bool) -> None:
        Conversation.update(resolved=resolved).where(Conversation.id == conversation_id).execute()

    def conversations_due(self, now: float, limit: int, active_since: float) -> list[Conversation]:
        """Up to ``limit`` conversations due for a poll: those active since ``active_since`` first, then
        the most overdue. The active ones take at most three quarters when others wait, so a busy day
        slows the quiet conversations down but never stops them."""
        if limit <= 0:
            return []
        due = Conversation.select().where(Conversation.next_poll_at <= now).order_by(Conversation.next_poll_at)
        others_waiting = due.where(Conversation.last_activity_at < active_since).limit(1).exists()
        active_share = limit - limit // 4 if others_waiting else limit
        active = list(due.where(Conversation.last_activity_at >= active_since).limit(active_share))
        rest = limit - len(active)
        others = list(due.where(Conversation.last_activity_at < active_since).limit(rest)) if rest else []
        return active + others

    def clamp_schedule(self, now: float, poll_horizon: float, retry_horizon: float) -> tuple[int, int]:
        """Bring polls and retries planned further ahead than any schedule plans (or activity recorded in
        the future) back to now; returns how many conversations and rows moved."""
        with self.db.atomic():
            conversations = (
                Conversation.update(next_poll_at=now, last_activity_at=self._least(Conversation.last_activity_at, now))
                .where(
                    Conversation.next_poll_at < GONE,
                    (Conversation.next_poll_at > now + poll_horizon) | (Conversation.last_activity_at > now + 60),
                )
                .execute()
            )
            rows = (
                Message.update(next_attempt_at=now)
                .where(Message.status.in_(OPEN_STATES), Message.next_attempt_at > now + retry_horizon)
                .execute()
            )
        return conversations, rows

    def set_next_poll(self, conversation_id: int, at: float) -> None:
        Conversation.update(next_poll_at=at).where(Conversation.id == conversation_id).execute()

    def conversation_count(self) -> int:
        return Conversation.select().count()

    def next_poll_time(self) -> float | None:
        value = Conversation.select(fn.MIN(Conversation.next_poll_at)).scalar()
        return float(value) if value is not None else None

    def record_conversation_read(
        self,
        conversation_id: int,
        contact_id: int,
        rows: list[NewRow],
        cursor: tuple[str, float] | None,
        next_poll_at: float,
        activity_at: float | None,
        resolved: bool | None,
        now: float,
    ) -> int:
        """Insert what one poll of a conversation found and move its cursor, in one transaction."""
        with self.db.atomic():
            inserted = self._insert_rows(contact_id, rows, now)
            updates: dict[Any, Any] = {Conversation.next_poll_at: next_poll_at}
            if cursor is not None:
                updates.update({Conversation.cursor_id: cursor[0], Conversation.cursor_time: cursor[1]})
            if activity_at is not None:
                updates[Conversation.last_activity_at] = activity_at
            if resolved is not None:
                updates[Conversation.resolved] = resolved
            Conversation.update(updates).where(Conversation.id == conversation_id).execute()
            return inserted

    def oldest_open(self, direction: str) -> dict[str, Any] | None:
        """The row of ``direction`` waiting longest to be delivered, with its contact."""
        query = (
            Message.select(Message, Contact.zalo_user_id, Contact.display_name)
            .join(Contact, JOIN.INNER)
            .where(Message.direction == direction, Message.status.in_(OPEN_STATES))
            .order_by(Message.created_at)
            .limit(1)
        )
        return next(iter(query.dicts()), None)

    def open_rows(self) -> list[dict[str, Any]]:
        """Every row still to be delivered, oldest first, with its contact: what `zfsync pending` lists."""
        query = (
            Message.select(Message, Contact.zalo_user_id, Contact.display_name)
            .join(Contact, JOIN.INNER)
            .where(Message.status.in_(OPEN_STATES))
            .order_by(Message.created_at)
        )
        return list(query.dicts())

    def requeue_open(self, row_ids: Iterable[int] | None) -> int:
        """Make rows still to be delivered due now, their backoff forgotten (a row whose outcome is unknown
        stays ``sending``, so it is still looked for on the destination before it is sent again)."""
        query = Message.update(next_attempt_at=0, attempts=0).where(Message.status.in_(OPEN_STATES))
        if row_ids is not None:
            query = query.where(Message.id.in_(list(row_ids)))
        return query.execute()

    def drop_conversation(self, zalo_user_id: str) -> str | None:
        """Forget a contact's current FreshChat conversation; their next message opens a new one."""
        contact = self.contact(zalo_user_id)
        current = self.current_conversation(contact.id) if contact else None
        if current is None:
            return None
        self.forget_conversation(current.id)
        return current.fc_conversation_id

    def map_conversation(self, zalo_user_id: str, fc_conversation_id: str, now: float) -> bool:
        """Make ``fc_conversation_id`` the contact's current conversation (read from now on)."""
        contact = self.contact(zalo_user_id)
        if contact is None:
            return False
        self.add_conversation(contact.id, fc_conversation_id, now)
        Conversation.update(next_poll_at=now).where(Conversation.fc_conversation_id == fc_conversation_id).execute()
        return True

    # --- failed queue --------------------------------------------------------------------------------

    def failed_rows(self) -> list[dict[str, Any]]:
        query = (
            Message.select(Message, Contact.zalo_user_id, Contact.display_name)
            .join(Contact, JOIN.INNER)
            .where(Message.status == FAILED)
            .order_by(Message.done_at)
        )
        return list(query.dicts())

    def requeue(self, row_ids: Iterable[int] | None) -> int:
        query = Message.update(status=PENDING, next_attempt_at=0, attempts=0, done_at=None).where(
            Message.status == FAILED
        )
        if row_ids is not None:
            query = query.where(Message.id.in_(list(row_ids)))
        return query.execute()

    def skip_failed(self, row_id: int, now: float) -> bool:
        return (
            Message.update(status=SKIPPED, done_at=now).where(Message.id == row_id, Message.status == FAILED).execute()
            == 1
        )

    # --- figures -------------------------------------------------------------------------------------

    def delivered_counts(self) -> list[tuple[str, str, int]]:
        """(direction, kind, count) of every message delivered since the store was made."""
        query = (
            Message.select(Message.direction, Message.kind, fn.COUNT(Message.id))
            .where(Message.status == SENT)
            .group_by(Message.direction, Message.kind)
        )
        return [(d, k, int(n)) for d, k, n in query.tuples()]

    def failure_counts(self) -> list[tuple[str, str, int]]:
        """(direction, reason, count) of every delivery that ended failed; the reason is the error code."""
        query = (
            Message.select(Message.direction, Message.error_code, fn.COUNT(Message.id))
            .where(Message.status == FAILED)
            .group_by(Message.direction, Message.error_code)
        )
        return [(d, code or "unknown", int(n)) for d, code, n in query.tuples()]

    def latency_histogram(self, buckets: tuple[float, ...]) -> dict[str, tuple[list[int], float, int]]:
        """Per direction: how many deliveries took at most each bucket's seconds (cumulative), their sum
        and count, over every message ever delivered (so it never goes back, across restarts too)."""
        delay = Message.done_at - Message.source_time
        columns = [fn.SUM(Case(None, [(delay <= bound, 1)], 0)) for bound in buckets]
        query = (
            Message.select(Message.direction, fn.COUNT(Message.id), fn.SUM(self._greatest(delay, 0)), *columns)
            .where(Message.status == SENT, Message.done_at.is_null(False))
            .group_by(Message.direction)
        )
        found: dict[str, tuple[list[int], float, int]] = {}
        for direction, count, total, *cumulative in query.tuples():
            found[direction] = ([int(c or 0) for c in cumulative], float(total or 0.0), int(count))
        return found

    def figures(self, now: float) -> Figures:
        figures = Figures()
        for direction, status, count in (
            Message.select(Message.direction, Message.status, fn.COUNT(Message.id))
            .group_by(Message.direction, Message.status)
            .tuples()
        ):
            figures.by_status.setdefault(direction, {})[status] = count
        for direction in ("z2f", "f2z"):
            figures.carried[direction] = {}
            figures.latency[direction] = {}
            for label, span in (("hour", 3600.0), ("day", 86_400.0)):
                latencies = sorted(
                    done - source
                    for done, source in Message.select(Message.done_at, Message.source_time)
                    .where(Message.direction == direction, Message.status == SENT, Message.done_at >= now - span)
                    .tuples()
                )
                figures.carried[direction][label] = len(latencies)
                if label == "hour":
                    figures.latency[direction]["p50"] = _percentile(latencies, 0.50)
                    figures.latency[direction]["p95"] = _percentile(latencies, 0.95)
        return figures


def _columns(model: Any) -> list[Any]:
    """Every column but the key: what an upsert overwrites."""
    return [f for f in model._meta.sorted_fields if not f.primary_key]


def _dumps(payload: dict[str, Any]) -> str:
    # The clients already make texts safe; this is the last line: a text SQLite cannot encode must never
    # stop a direction (a lone surrogate once did, every round).
    return json.dumps(safe_text(payload), ensure_ascii=False)


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return max(0.0, sorted_values[index])


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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


__all__ = ["FAILED", "PENDING", "SENDING", "SENT", "SKIPPED", "NewRow", "OwnSend", "Store"]
