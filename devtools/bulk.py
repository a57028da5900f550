"""Contacts already mapped to FreshChat, with months of delivered history, written in bulk (tens of
thousands take seconds): for the benchmarks and the schedule tests, never for a production store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zfsync.domain import Direction, Status
from zfsync.store import Store
from zfsync.store.base import dumps


@dataclass(frozen=True)
class MappedContact:
    """A contact already mapped to a FreshChat user and conversation: what a bulk import brings in."""

    zalo_user_id: str
    fc_user_id: str
    fc_conversation_id: str
    last_activity_at: float  # of the conversation, and the contact's last message
    next_poll_at: float


def import_mapped(store: Store, mapped: list[MappedContact], delivered_each: int = 0, chunk: int = 500) -> None:
    """Bring in contacts already mapped to FreshChat, with ``delivered_each`` delivered messages apiece,
    in bulk (tens of thousands take seconds): months of history for the benchmarks and schedule tests."""
    Contact, Conversation, Message = store.tables.Contact, store.tables.Conversation, store.tables.Message
    with store.db.atomic():
        for part in _parts(mapped, chunk):
            Contact.insert_many(
                [
                    {
                        "zalo_user_id": m.zalo_user_id,
                        "display_name": m.zalo_user_id,
                        "fc_user_id": m.fc_user_id,
                        "first_seen_ms": int(m.last_activity_at * 1000),
                        "last_inbound_ms": int(m.last_activity_at * 1000),
                        "cursor_time_ms": int(m.last_activity_at * 1000),
                        "cursor_id": f"seed-{m.zalo_user_id}",
                        "profile_checked_at": m.last_activity_at,
                    }
                    for m in part
                ]
            ).execute()
        ids = dict(
            Contact.select(Contact.zalo_user_id, Contact.id)
            .where(Contact.zalo_user_id.in_([m.zalo_user_id for m in mapped]))
            .tuples()
        )
        for part in _parts(mapped, chunk):
            Conversation.insert_many(
                [
                    {
                        "contact": ids[m.zalo_user_id],
                        "fc_conversation_id": m.fc_conversation_id,
                        "created_at": m.last_activity_at,
                        "last_activity_at": m.last_activity_at,
                        "next_poll_at": m.next_poll_at,
                    }
                    for m in part
                ]
            ).execute()
            rows = [
                {
                    "direction": Direction.Z2F,
                    "source_id": f"hist-{m.zalo_user_id}-{i}",
                    "contact": ids[m.zalo_user_id],
                    "kind": "text",
                    "payload": dumps({"type": "text", "message": f"old {i}"}),
                    "source_time": m.last_activity_at,
                    "status": Status.SENT,
                    "dest_id": f"fcm-{m.zalo_user_id}-{i}",
                    "created_at": m.last_activity_at,
                    "done_at": m.last_activity_at,
                }
                for m in part
                for i in range(delivered_each)
            ]
            for rows_part in _parts(rows, chunk):
                Message.insert_many(rows_part).execute()


def _parts(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
