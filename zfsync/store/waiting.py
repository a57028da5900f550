"""What waits, as the operator's commands and the health checks see it: rows still to be delivered, the
failed queue, and putting rows back in line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from peewee import JOIN

from zfsync.domain import F2Z, OPEN_STATES, FailedReply, Kind, Status
from zfsync.store.base import REQUEUED_KEY, StoreBase, Waiting, dumps, waiting_of

RETRIED = "retried_on_return"  # a failed reply's payload key: sent again once, when the customer came back


def loads(text: str) -> dict[str, Any]:
    found = json.loads(text or "{}")
    return found if isinstance(found, dict) else {}


class WaitingStore(StoreBase):
    # --- what waits ---------------------------------------------------------------------------------

    def oldest_open(self, direction: str) -> Waiting | None:
        """The live row of ``direction`` waiting longest to be delivered, with its contact (imported history
        waits behind every live message by design: `zfsync status` counts it apart)."""
        Message = self.tables.Message
        rows = self._waiting(
            Message.direction == direction,
            Message.status.in_(OPEN_STATES),
            Message.history == False,  # noqa: E712
        )
        return next((waiting_of(row) for row in rows.order_by(Message.created_at).limit(1).dicts()), None)

    def open_rows(self) -> list[Waiting]:
        """Every row still to be delivered, oldest first, with its contact: what `zfsync pending` lists."""
        Message = self.tables.Message
        rows = self._waiting(Message.status.in_(OPEN_STATES)).order_by(Message.created_at)
        return [waiting_of(row) for row in rows.dicts()]

    def requeue_open(self, row_ids: Iterable[int] | None) -> int:
        """Make rows still to be delivered due now, their backoff forgotten (a row whose outcome is unknown
        stays ``sending``, so it is still looked for on the destination before it is sent again)."""
        Message = self.tables.Message
        query = Message.update(next_attempt_at=0, attempts=0).where(Message.status.in_(OPEN_STATES))
        if row_ids is not None:
            query = query.where(Message.id.in_(list(row_ids)))
        return self._requeued(query)

    # --- failed queue --------------------------------------------------------------------------------

    def failed_rows(self) -> list[Waiting]:
        Message = self.tables.Message
        rows = self._waiting(Message.status == Status.FAILED).order_by(Message.done_at)
        return [waiting_of(row) for row in rows.dicts()]

    def requeue(self, row_ids: Iterable[int] | None) -> int:
        Message = self.tables.Message
        query = Message.update(status=Status.PENDING, next_attempt_at=0, attempts=0, done_at=None).where(
            Message.status == Status.FAILED
        )
        if row_ids is not None:
            query = query.where(Message.id.in_(list(row_ids)))
        return self._requeued(query)

    def failed_replies(self, contact_id: int) -> list[FailedReply]:
        """The agents' replies to this contact that failed for good, oldest first (what a retry may send)."""
        Message = self.tables.Message
        rows = (
            Message.select(Message.id, Message.error_code, Message.conversation_id, Message.payload)
            .where(
                Message.contact == contact_id,
                Message.direction == F2Z,
                Message.status == Status.FAILED,
                Message.kind.not_in([Kind.COMMAND, Kind.RESOLVE_NOTICE]),
            )
            .order_by(Message.source_time, Message.part)
        )
        return [
            FailedReply(r.id, r.error_code or "", r.conversation_id or "", bool(loads(r.payload).get(RETRIED)))
            for r in rows
        ]

    def retry_replies(self, row_ids: list[int], *, on_return: bool = False) -> int:
        """Put these failed replies back in line (in their place: the oldest first); ``on_return``: marked as
        sent again once when the customer came back, so that is done only once."""
        Message = self.tables.Message
        with self.db.atomic():
            if on_return:
                for row in Message.select(Message.id, Message.payload).where(Message.id.in_(row_ids)):
                    payload = {**loads(row.payload), RETRIED: True}
                    Message.update(payload=dumps(payload)).where(Message.id == row.id).execute()
            return self.requeue(row_ids) if row_ids else 0

    def _requeued(self, query: Any) -> int:
        """Run a query that puts rows back in line, and say so where a running daemon's idle lanes look
        (`OutboxStore.outbox_mark`): they do not read the queue again until something changed."""
        with self.db.atomic():
            changed = query.execute()
            self.set_state(REQUEUED_KEY, f"{time.time():.6f}")
        return int(changed)

    def skip_failed(self, row_id: int, now: float) -> bool:
        Message = self.tables.Message
        return (
            Message.update(status=Status.SKIPPED, done_at=now)
            .where(Message.id == row_id, Message.status == Status.FAILED)
            .execute()
            == 1
        )

    def _waiting(self, *conditions: Any) -> Any:
        """Outbox rows matching ``conditions``, joined with their contact's id and name (for `waiting_of`)."""
        Contact, Message = self.tables.Contact, self.tables.Message
        return (
            Message.select(Message, Contact.zalo_user_id, Contact.display_name)
            .join(Contact, JOIN.INNER)
            .where(*conditions)
        )
