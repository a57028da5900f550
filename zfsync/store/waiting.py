"""What waits, as the operator's commands and the health checks see it: rows still to be delivered, the
failed queue, and putting rows back in line."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from peewee import JOIN

from zfsync.domain import OPEN_STATES, Status
from zfsync.store.base import REQUEUED_KEY, StoreBase, Waiting, waiting_of


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
