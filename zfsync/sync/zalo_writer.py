"""Write to Zalo: agents' replies (and resolve notices) to the customer through ``message/cs``.

Zalo accepts customer-service messages only within 7 days of the customer's last interaction (research
§7), so a reply outside the window is not attempted: it fails at once and the agent gets a note. Every
failure that ends a row becomes one private note in the FreshChat conversation it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog

from zfsync.domain import Z2F
from zfsync.errors import PermanentError, RemoteError
from zfsync.store import NewRow, Store
from zfsync.store.models import Message
from zfsync.sync import notes
from zfsync.sync.ports import ZaloSide
from zfsync.sync.schedule import ZALO_WINDOW

log = structlog.get_logger("zfsync.sync")

RECONCILE_SLACK_MS = 600_000
RECONCILE_PAGES = 5


class ZaloWriter:
    def __init__(self, zalo: ZaloSide, store: Store, clock: Callable[[], float]):
        self.zalo = zalo
        self.store = store
        self.clock = clock

    def send(self, row: Message) -> tuple[str, str | None]:
        contact = self.store.contact_by_id(row.contact_id)
        payload = json.loads(row.payload)
        if contact.last_inbound_ms and self.clock() - contact.last_inbound_ms / 1000 > ZALO_WINDOW:
            raise PermanentError(
                "the customer's last message is over 7 days old",
                side="zalo",
                endpoint="/v3.0/oa/message/cs",
                code=notes.WINDOW_CODE,
            )
        return self.zalo.send_text(contact.zalo_user_id, payload["text"]), None

    def reconcile(self, row: Message) -> tuple[str, str | None] | None:
        """Our earlier attempt landed if the user's conversation shows an OA message with this text since
        shortly before the attempt that nobody has claimed yet."""
        contact = self.store.contact_by_id(row.contact_id)
        text = json.loads(row.payload)["text"]
        since_ms = int((row.claimed_at or self.clock()) * 1000) - RECONCILE_SLACK_MS
        candidates: list[str] = []
        for number in range(RECONCILE_PAGES):
            page = self.zalo.conversation(contact.zalo_user_id, offset=number * 10, count=10)
            older = False
            for message in page:
                if 0 <= message.time_ms < since_ms:
                    older = True
                    break
                if message.from_oa and message.text == text and not self.store.dest_taken("f2z", message.message_id):
                    candidates.append(message.message_id)
            if older or len(page) < 10:
                break
        return (candidates[-1], None) if candidates else None

    def gave_up(self, row: Message, error: RemoteError, now: float) -> None:
        """Tell the agent, once per failed message, in the conversation the reply came from."""
        payload = json.loads(row.payload)
        code = "" if error.code is None else str(error.code)
        if isinstance(error, PermanentError):
            text = notes.failure_note(code, error.reason, payload.get("text", ""))
        else:
            text = notes.gave_up_note(error.reason, row.attempts + 1, payload.get("text", ""))
        if not row.conversation_id:
            log.error("failure_note_without_conversation", row=row.id)
            return
        note = NewRow(
            Z2F,
            f"note:{row.source_id}",
            "failure_note",
            {
                "text": text,
                "conversation_id": row.conversation_id,
                "actor_id": payload.get("agent_id", ""),
                "actor_type": "agent" if payload.get("agent_id") else "bot",
            },
            now,
        )
        self.store.insert_rows(row.contact_id, [note], now)
        log.warning("agent_notified", row=row.id, code=code, conversation=row.conversation_id)
