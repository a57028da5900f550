"""The message map and outbox: what each side showed, what is to be sent, how each send went, and the
failed queue an operator works through.

Only the head of each contact's queue is offered for delivery, so messages leave in source order."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from peewee import fn

from zfsync.domain import OPEN_STATES, NewRow, OutboxRow, Part, Status, part_payload, safe_text
from zfsync.store.base import COPIED_PARTS, LEASE_KEY, REQUEUED_KEY, dumps, outbox_row_of
from zfsync.store.prepared import Slot
from zfsync.store.sends import SendsStore


class OutboxStore(SendsStore):
    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int:
        with self.db.atomic():
            return self._insert_rows(contact_id, rows, now)

    # --- delivery ------------------------------------------------------------------------------------

    def _heads(self, direction: str, exclude: Sequence[Any]) -> Any:
        """The head of each contact's queue in ``direction`` (its oldest undelivered live row, or with none
        its oldest undelivered imported one), leaving out the contacts in ``exclude`` (those with a send in
        flight): grouped passes over the open rows, not a subquery per row (a backlog of a thousand rows for
        one customer made that quadratic)."""
        Message = self.tables.Message
        Live, History, Waiting = Message.alias(), Message.alias(), Message.alias()
        live = (
            Live.select(fn.MIN(Live.id).alias("head"))
            .where(Live.direction == direction, Live.status.in_(OPEN_STATES), Live.history == False)  # noqa: E712
            .group_by(Live.contact)
        )
        live_waiting = Waiting.select(Waiting.id).where(
            Waiting.contact == History.contact,
            Waiting.direction == direction,
            Waiting.status.in_(OPEN_STATES),
            Waiting.history == False,  # noqa: E712
        )
        history = (
            History.select(fn.MIN(History.id).alias("head"))
            .where(
                History.direction == direction,
                History.status.in_(OPEN_STATES),
                History.history == True,  # noqa: E712
                ~fn.EXISTS(live_waiting),
            )
            .group_by(History.contact)
        )
        heads = live.union_all(history).alias("heads")
        query = Message.select().join(heads, on=(Message.id == heads.c.head))
        if exclude:
            query = query.where(Message.contact.not_in(list(exclude)))
        return query

    def due_heads(self, direction: str, now: float, limit: int, exclude: Collection[int] = ()) -> list[OutboxRow]:
        """For each contact, its oldest undelivered row in ``direction``, if that row is due.

        Only the head of each contact's queue is offered, so messages leave in source order and a row that
        keeps failing holds back its own contact alone. Source order is the order rows were queued in: the
        readers queue each contact's messages in the order the source lists them (times may tie or disagree).
        Contacts in ``exclude`` (a send of theirs is in flight) are left out. Imported history comes after
        every live message, of the contact's own and of everyone else's.
        """
        Message = self.tables.Message
        excluded = sorted(exclude)

        def build() -> Any:
            return (
                self._heads(direction, _slots(len(excluded)))
                .where(Message.next_attempt_at <= Slot("now"))
                .order_by(Message.history, Message.next_attempt_at, Message.source_time)
                .limit(Slot("limit"))
            )

        # Every lane turn asks this: built once per direction and number of contacts left out.
        query = self.prepared(f"due_heads:{direction}:{len(excluded)}", build)
        return [outbox_row_of(row) for row in query.rows(now=now, limit=limit, **_filled(excluded))]

    def next_due_head(self, direction: str, exclude: Collection[int] = ()) -> float | None:
        """When the next head in ``direction`` falls due (contacts in ``exclude`` left out); None if none waits."""
        Message = self.tables.Message
        excluded = sorted(exclude)

        def build() -> Any:
            return self._heads(direction, _slots(len(excluded))).select(fn.MIN(Message.next_attempt_at))

        [(value,)] = self.prepared(f"next_due_head:{direction}:{len(excluded)}", build).tuples(**_filled(excluded))
        return float(value) if value is not None else None

    def outbox_mark(self) -> tuple[int, str]:
        """What changes whenever rows are queued, here or by another process, or put back in line by an
        operator: the newest row's id and the time of the last requeue. Two index lookups, so an idle lane
        looks at this and not at the queue itself."""
        Message, State = self.tables.Message, self.tables.State

        def build() -> Any:
            requeued = State.select(State.value).where(State.key == REQUEUED_KEY)
            return Message.select(fn.MAX(Message.id), requeued)

        [(newest, stamp)] = self.prepared("outbox_mark", build).tuples()
        return int(newest or 0), str(stamp or "")

    def claim(self, row: OutboxRow, now: float) -> bool:
        """Compare-and-set the row to ``sending``; False if another worker changed it meanwhile."""
        Message, State = self.tables.Message, self.tables.State
        same_claim = Message.claimed_at.is_null() if row.claimed_at is None else Message.claimed_at == row.claimed_at
        query = Message.update(status=Status.SENDING, claimed_at=now).where(
            Message.id == row.id, Message.status == row.status, same_claim
        )
        if self.fence is not None:
            query = query.where(fn.EXISTS(State.select().where(State.key == LEASE_KEY, State.value == self.fence)))
        return query.execute() == 1

    def finish_sent(self, row_id: int, dest_id: str, now: float, conversation_id: str | None = None) -> None:
        Message = self.tables.Message
        updates: dict[Any, Any] = {
            Message.status: Status.SENT,
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
        Message = self.tables.Message
        Message.update(
            status=Status.SENDING if outcome_unknown else Status.PENDING,
            next_attempt_at=next_at,
            last_error=safe_text(error),
            error_code=code,
            attempts=Message.attempts + (1 if count_attempt else 0),
        ).where(Message.id == row_id).execute()

    def fail(self, row_id: int, error: str, code: str, now: float) -> None:
        Message = self.tables.Message
        Message.update(
            status=Status.FAILED,
            last_error=safe_text(error),
            error_code=code,
            done_at=now,
            attempts=Message.attempts + 1,
        ).where(Message.id == row_id).execute()

    def skip(self, row_id: int, reason: str, now: float) -> None:
        Message = self.tables.Message
        Message.update(status=Status.SKIPPED, last_error=safe_text(reason), done_at=now).where(
            Message.id == row_id
        ).execute()

    def unsent_payloads(self, direction: str) -> list[tuple[int, dict[str, Any]]]:
        """The id and payload of every row of ``direction`` not delivered (nor skipped): pending, sending
        and failed ones."""
        Message = self.tables.Message
        query = Message.select(Message.id, Message.payload).where(
            Message.direction == direction, Message.status.not_in([Status.SENT, Status.SKIPPED])
        )
        return [(row.id, json.loads(row.payload)) for row in query.order_by(Message.id)]

    def set_payload(self, row_id: int, payload: dict[str, Any]) -> None:
        """Replace a row's payload (`keep_copied_parts`, and `zfsync.runtime.app.upgrade_payloads`)."""
        Message = self.tables.Message
        Message.update(payload=dumps(payload)).where(Message.id == row_id).execute()

    def keep_copied_parts(self, row_id: int, parts: Sequence[Part]) -> None:
        """Record the parts of a customer's message once its media are copied into FreshChat, before the
        post: a retry or a reconcile after a crash posts (and looks for) the same parts."""
        Message = self.tables.Message
        with self.db.atomic():
            found = Message.get_or_none(Message.id == row_id)
            if found is not None:
                self.set_payload(row_id, {**json.loads(found.payload), COPIED_PARTS: [part_payload(p) for p in parts]})

    def row(self, row_id: int) -> OutboxRow | None:
        Message = self.tables.Message
        row = Message.get_or_none(Message.id == row_id)
        return outbox_row_of(row) if row else None

    def failed_count(self, contact_id: int, direction: str) -> int:
        """How many of the contact's rows in ``direction`` failed for good (the failed queue's, for them)."""
        Message = self.tables.Message
        return (
            Message.select()
            .where(Message.contact == contact_id, Message.direction == direction, Message.status == Status.FAILED)
            .count()
        )

    def open_rows_of(self, contact_id: int, direction: str) -> int:
        Message = self.tables.Message
        return (
            Message.select()
            .where(
                Message.contact == contact_id,
                Message.direction == direction,
                Message.status.in_(OPEN_STATES),
            )
            .count()
        )


def _slots(count: int) -> list[Slot]:
    return [Slot(f"x{n}") for n in range(count)]


def _filled(ids: list[int]) -> dict[str, int]:
    return {f"x{n}": contact for n, contact in enumerate(ids)}
