"""What every part of the store shares: its tables and database, the values it hands out, small helpers.

The store hands out frozen domain values (`Contact`, `Conversation`, `OutboxRow`), never live rows, so a
caller cannot change a row behind the store's back, and a payload is parsed once, here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from peewee import Database, fn

from zfsync.domain import OPEN_STATES, Contact, Conversation, Json, NewRow, OutboxRow, part_of, safe_text
from zfsync.domain.outbound import row_content, row_payload
from zfsync.store.models import Tables
from zfsync.store.prepared import PreparedQueries, Slot
from zfsync.store.secrets import Sealer

LEASE_KEY = "daemon.lease"  # the lease token of the active daemon (PostgreSQL)
REQUEUED_KEY = "outbox.requeued"  # when an operator last put rows back in line (`zfsync retry`, `requeue`)
# where a customer's row keeps its parts once their media were copied into FreshChat (`OutboxRow.copied`)
COPIED_PARTS = "_freshchat_parts"
GONE = 1e18  # the next poll of a conversation FreshChat no longer has: never


@dataclass(frozen=True)
class Waiting:
    """A row as the operator's commands and the health checks show it: failed, or still to be delivered,
    with its customer. `zfsync failed --json` and `pending --json` print these fields."""

    id: int
    direction: str
    kind: str
    status: str
    payload: Json
    attempts: int
    last_error: str
    error_code: str
    created_at: float
    next_attempt_at: float
    done_at: float | None
    zalo_user_id: str
    display_name: str

    @property
    def customer(self) -> str:
        return self.display_name or self.zalo_user_id

    def preview(self, size: int = 60) -> str:
        text = str(self.payload.get("text") or self.kind)
        return text if len(text) <= size else text[:size] + "…"


def waiting_of(row: dict[str, Any]) -> Waiting:
    """A `Waiting` from a row of the outbox joined with its contact (``.dicts()``)."""
    return Waiting(
        id=row["id"],
        direction=row["direction"],
        kind=row["kind"],
        status=row["status"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        error_code=row["error_code"],
        created_at=row["created_at"],
        next_attempt_at=row["next_attempt_at"],
        done_at=row["done_at"],
        zalo_user_id=row["zalo_user_id"],
        display_name=row["display_name"],
    )


@dataclass
class Figures:
    """What `zfsync status` shows about the message flow."""

    by_status: dict[str, dict[str, int]] = field(default_factory=dict)
    carried: dict[str, dict[str, int]] = field(default_factory=dict)
    latency: dict[str, dict[str, float | None]] = field(default_factory=dict)


class StoreBase:
    """The attributes the parts of `Store` work with (set by `Store.__init__`)."""

    db: Database
    tables: Tables
    postgres: bool
    fence: str | None
    prepared: PreparedQueries  # the lookups every idle poll makes, built once
    sealer: Sealer  # seals the tokens in a fleet's store (`zfsync.store.secrets`)
    tenant: int

    # --- named state (every part keeps some) -----------------------------------------------------------

    def get_state(self, key: str, default: str | None = None) -> str | None:
        State = self.tables.State
        query = self.prepared("state", lambda: State.select(State.value).where(State.key == Slot("key")))
        found = query.tuples(key=key)
        return str(found[0][0]) if found else default

    def set_state(self, key: str, value: str) -> None:
        State = self.tables.State
        self.prepared(
            "set_state",
            lambda: State.insert(key=Slot("key"), value=Slot("value")).on_conflict(
                conflict_target=[State.tenant_id, State.key], update={State.value: Slot("value")}
            ),
        ).execute(key=key, value=value)

    def delete_state(self, key: str) -> None:
        State = self.tables.State
        State.delete().where(State.key == key).execute()

    def _least(self, a: Any, b: Any) -> Any:
        return fn.LEAST(a, b) if self.postgres else fn.MIN(a, b)

    def _greatest(self, a: Any, b: Any) -> Any:
        return fn.GREATEST(a, b) if self.postgres else fn.MAX(a, b)

    def _insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int:
        """Insert the rows not there yet (inside the caller's transaction); returns how many were new."""
        Message = self.tables.Message
        inserted = 0
        for row in rows:
            query = Message.insert(
                direction=row.direction,
                source_id=row.source_id,
                part=row.part,
                contact=contact_id,
                kind=row.kind,
                payload=dumps(row_payload(row.content)),
                source_time=row.source_time,
                status=row.status,
                dest_id=row.dest_id,
                conversation_id=row.conversation_id,
                listing=row.listing,
                alias_id=row.alias_id,
                history=row.history,
                last_error=safe_text(row.last_error),
                created_at=now,
                done_at=None if row.status in OPEN_STATES else now,
            ).on_conflict_ignore()
            inserted += self.db.execute(query).rowcount
        return inserted


def contact_of(row: Any) -> Contact:
    return Contact(
        id=row.id,
        zalo_user_id=row.zalo_user_id,
        display_name=row.display_name,
        avatar_url=row.avatar_url,
        fc_user_id=row.fc_user_id,
        first_seen_ms=row.first_seen_ms,
        last_inbound_ms=row.last_inbound_ms,
        cursor_time_ms=row.cursor_time_ms,
        cursor_id=row.cursor_id,
        profile_checked_at=row.profile_checked_at,
        last_interaction_ms=row.last_interaction_ms,
        free_replies_left=row.free_replies_left,
        warned_window_ms=row.warned_window_ms,
        warned_free_ms=row.warned_free_ms,
        quota_checked_at=row.quota_checked_at,
        shown_profile=row.shown_profile,
        answered_ms=row.answered_ms,
        assign_checked_at=row.assign_checked_at,
    )


def conversation_of(row: Any) -> Conversation:
    return Conversation(
        id=row.id,
        contact_id=row.contact_id,
        fc_conversation_id=row.fc_conversation_id,
        is_current=row.is_current,
        resolved=row.resolved,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        next_poll_at=row.next_poll_at,
        cursor_id=row.cursor_id,
        cursor_time=row.cursor_time,
        resolved_at=row.resolved_at,
    )


def outbox_row_of(row: Any) -> OutboxRow:
    payload = json.loads(row.payload)
    copied = payload.get(COPIED_PARTS)
    return OutboxRow(
        id=row.id,
        direction=row.direction,
        source_id=row.source_id,
        part=row.part,
        contact_id=row.contact_id,
        kind=row.kind,
        content=row_content(row.direction, row.kind, payload),
        source_time=row.source_time,
        status=row.status,
        dest_id=row.dest_id,
        conversation_id=row.conversation_id,
        attempts=row.attempts,
        claimed_at=row.claimed_at,
        history=bool(row.history),
        copied=tuple(part_of(p) for p in copied if isinstance(p, dict)) if isinstance(copied, list) else None,
    )


def columns(model: Any) -> list[Any]:
    """Every column but the key: what an upsert overwrites."""
    return [f for f in model._meta.sorted_fields if not f.primary_key]


def dumps(payload: Json) -> str:
    # The clients already make texts safe; this is the last line: a text SQLite cannot encode must never
    # stop a direction (a lone surrogate once did, every round).
    return json.dumps(safe_text(payload), ensure_ascii=False)


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
