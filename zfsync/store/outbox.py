"""The message map and outbox: what each side showed, what is to be sent, how each send went, and the
failed queue an operator works through.

Only the head of each contact's queue is offered for delivery, so messages leave in source order."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

from peewee import fn

from zfsync import domain
from zfsync.domain import OPEN_STATES, NewRow, OutboxRow, OwnSend, Status, safe_text
from zfsync.store.base import LEASE_KEY, REQUEUED_KEY, StoreBase, chunks, contact_of, dumps, outbox_row_of
from zfsync.store.prepared import Slot


class OutboxStore(StoreBase):
    # --- Zalo ingest ---------------------------------------------------------------------------------

    def known_zalo_ids(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` already in the map: customer messages we took (under either listing's
        id), or our own sends."""
        Message = self.tables.Message
        ids = list(ids)
        known = self.recorded_zalo_ids(ids)
        for chunk in chunks(ids, 400):
            # By the dest_id index alone (`recorded_zalo_ids` says why), the direction checked here.
            query = Message.select(Message.direction, Message.dest_id).where(Message.dest_id.in_(chunk))
            known.update(r.dest_id for r in query if r.direction == "f2z")
        return known

    def recorded_zalo_ids(self, ids: Iterable[str]) -> set[str]:
        """The ids among ``ids`` recorded from Zalo's listings, under the id either listing shows (each
        user's are recorded all at once)."""
        found: set[str] = set()
        for chunk in chunks(list(ids), 400):
            # Two lookups, one per index: "source_id IN ... OR alias_id IN ..." made SQLite read every
            # z2f row of the store, on every poll (three quarters of an idle daemon's CPU at 100,000 rows).
            found.update(self._ids_among("source_id", chunk))
            rest = [i for i in chunk if i not in found]  # an idle poll's rows are all found by their own id
            if rest:
                found.update(self._ids_among("alias_id", rest))
        return found

    def _ids_among(self, column: str, ids: list[str]) -> set[str]:
        """Those of ``ids`` (at most 512) some Zalo-to-FreshChat row has in ``column`` (``source_id`` or
        ``alias_id``). The query is built once per power of two of ids, the last id repeated to fill it."""
        if not ids:
            return set()
        Message = self.tables.Message
        field = getattr(Message, column)
        size = 1 << (len(ids) - 1).bit_length()

        def build() -> Any:
            among = field.in_([Slot(str(n)) for n in range(size)])
            # Only z2f rows have an alias (and naming the direction would steer SQLite off its index).
            return Message.select(field).where(among if column == "alias_id" else (Message.direction == "z2f") & among)

        filled = ids + ids[-1:] * (size - len(ids))
        query = self.prepared(f"ids_among:{column}:{size}", build)
        return {row[0] for row in query.tuples(**{str(n): i for n, i in enumerate(filled)})}

    def zalo_ids_of_posts(self, fc_message_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The Zalo message each of these FreshChat messages was copied from (a quoted message's source):
        its ids, the feed's first, then the one the conversation listing shows where it was seen there too."""
        Message = self.tables.Message
        found: dict[str, tuple[str, ...]] = {}
        for chunk in chunks(list(fc_message_ids), 400):
            query = Message.select(
                Message.direction, Message.kind, Message.dest_id, Message.source_id, Message.listing, Message.alias_id
            ).where(Message.dest_id.in_(chunk))
            for r in query:
                if r.direction != "z2f" or r.kind == "failure_note":
                    continue
                ids = (r.source_id, r.alias_id) if r.listing != domain.CONVERSATION else (r.alias_id, r.source_id)
                found[r.dest_id] = tuple(i for i in ids if i)
        return found

    def recorded_near(self, zalo_user_id: str, since_ms: int, until_ms: int) -> list[domain.RecordedRow]:
        """The user's messages recorded from Zalo with a time in ``[since_ms, until_ms]`` whose other
        listing's id is not known yet: what a row listed under another id may be."""
        Message, Contact = self.tables.Message, self.tables.Contact
        query = (
            Message.select(Message.source_id, Message.listing, Message.kind, Message.payload, Message.source_time)
            .join(Contact)
            .where(
                Contact.zalo_user_id == zalo_user_id,
                Message.direction == "z2f",
                Message.part == 0,
                Message.alias_id.is_null(),
                Message.kind != domain.Kind.FAILURE_NOTE,
                Message.source_time.between(since_ms / 1000, until_ms / 1000),
            )
        )
        return [
            domain.RecordedRow(
                r.source_id,
                r.listing,
                r.kind == domain.Kind.OA_NOTE,
                domain.ZaloContent.of(json.loads(r.payload)),
                round(r.source_time * 1000),
            )
            for r in query
        ]

    def record_zalo_messages(
        self,
        user_id: str,
        name: str,
        avatar: str,
        rows: list[NewRow],
        cursor: tuple[int, str],
        last_inbound_ms: int,
        now: float,
        aliases: dict[str, str] | None = None,
        poll_at: float | None = None,
    ) -> domain.Contact:
        """Insert one user's new rows and move their cursor, in one transaction; ``aliases`` (recorded id
        -> the other listing's id for it) are recorded in the same one, and ``poll_at`` becomes the next
        poll of the user's current conversation (the caller's schedule decides when)."""
        Contact, Conversation = self.tables.Contact, self.tables.Conversation
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
                    if last_inbound_ms > contact.last_interaction_ms:
                        updates[Contact.free_replies_left] = None  # a new 48 h of free replies: count unknown
                if not contact.display_name and name:
                    updates[Contact.display_name] = name
                if updates:
                    Contact.update(updates).where(Contact.id == contact.id).execute()
            self._insert_rows(contact.id, rows, now)
            Message = self.tables.Message
            for recorded_id, alias_id in (aliases or {}).items():
                Message.update(alias_id=alias_id).where(
                    Message.direction == "z2f", Message.source_id == recorded_id, Message.alias_id.is_null()
                ).execute()
            if poll_at is not None:
                Conversation.update(last_activity_at=now, next_poll_at=poll_at).where(
                    Conversation.contact == contact.id,
                    Conversation.is_current == True,  # noqa: E712
                ).execute()
            return contact_of(Contact.get_by_id(contact.id))

    def record_history(
        self,
        user_id: str,
        name: str,
        avatar: str,
        rows: list[NewRow],
        clocks: tuple[int, int],
        now: float,
    ) -> int:
        """Insert one user's imported history (oldest first, each row marked ``history``), making their
        contact if they have none, in one transaction; returns how many rows were new. ``clocks``: the
        customer's last message and the OA's last answer among the rows (ms), which move the contact's
        window and answered times forward, never back."""
        Contact = self.tables.Contact
        last_inbound_ms, answered_ms = clocks
        oldest_ms = min(round(r.source_time * 1000) for r in rows) if rows else 0
        with self.db.atomic():
            contact = Contact.get_or_none(Contact.zalo_user_id == user_id)
            if contact is None:
                contact = Contact.create(
                    zalo_user_id=user_id,
                    display_name=name,
                    avatar_url=avatar,
                    first_seen_ms=oldest_ms,
                    last_inbound_ms=last_inbound_ms,
                    answered_ms=answered_ms,
                )
            else:
                updates: dict[Any, Any] = {}
                if last_inbound_ms > contact.last_inbound_ms:
                    updates[Contact.last_inbound_ms] = last_inbound_ms
                if answered_ms > contact.answered_ms:
                    updates[Contact.answered_ms] = answered_ms
                if oldest_ms and oldest_ms < contact.first_seen_ms:
                    updates[Contact.first_seen_ms] = oldest_ms
                if not contact.display_name and name:
                    updates[Contact.display_name] = name
                if updates:
                    Contact.update(updates).where(Contact.id == contact.id).execute()
            return self._insert_rows(contact.id, rows, now)

    def record_aliases(self, zalo_user_id: str, aliases: dict[str, str]) -> None:
        """Record the other listing's ids of messages already recorded (recorded id -> that id)."""
        Message, Contact = self.tables.Message, self.tables.Contact
        contact = Contact.get_or_none(Contact.zalo_user_id == zalo_user_id)
        if contact is None:
            return
        with self.db.atomic():
            for recorded_id, alias_id in aliases.items():
                Message.update(alias_id=alias_id).where(
                    Message.contact == contact.id,
                    Message.direction == "z2f",
                    Message.source_id == recorded_id,
                    Message.alias_id.is_null(),
                ).execute()

    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int:
        with self.db.atomic():
            return self._insert_rows(contact_id, rows, now)

    # --- delivery ------------------------------------------------------------------------------------

    def _heads(self, direction: str, exclude: Collection[int]) -> Any:
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
        query = (
            self._heads(direction, exclude)
            .where(Message.next_attempt_at <= now)
            .order_by(Message.history, Message.next_attempt_at, Message.source_time)
            .limit(limit)
        )
        return [outbox_row_of(row) for row in query]

    def next_due_head(self, direction: str, exclude: Collection[int] = ()) -> float | None:
        """When the next head in ``direction`` falls due (contacts in ``exclude`` left out); None if none waits."""
        Message = self.tables.Message
        value = self._heads(direction, exclude).select(fn.MIN(Message.next_attempt_at)).scalar()
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
        """Record work done for a row before its send (an upload), so a retry or reconcile reuses it."""
        Message = self.tables.Message
        Message.update(payload=dumps(payload)).where(Message.id == row_id).execute()

    def dest_taken(self, direction: str, dest_id: str) -> bool:
        Message = self.tables.Message
        return any(
            r.direction == direction for r in Message.select(Message.direction).where(Message.dest_id == dest_id)
        )

    def listing_claimed(self, zalo_id: str) -> bool:
        """Whether a Zalo listing row is known as the echo of one of our sends (by send id or by match)."""
        Message = self.tables.Message
        query = Message.select(Message.direction).where((Message.dest_id == zalo_id) | (Message.echo_id == zalo_id))
        return any(r.direction == "f2z" for r in query)

    def own_sends(self, contact_id: int, since: float) -> list[OwnSend]:
        """Our sends to a contact claimed since ``since`` that reached Zalo or may have, oldest first."""
        Message = self.tables.Message
        query = (
            Message.select()
            .where(
                Message.contact == contact_id,
                Message.direction == "f2z",
                Message.status.in_((Status.SENT, Status.SENDING)),
                Message.claimed_at >= since,
            )
            .order_by(Message.id)
        )
        sends = list(query)
        recorded = {
            r.source_id
            for r in Message.select(Message.source_id).where(
                Message.direction == "z2f",
                Message.source_id.in_([m.dest_id for m in sends if m.dest_id]),
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
        Message = self.tables.Message
        return Message.update(echo_id=zalo_id).where(Message.id == row_id, Message.echo_id.is_null()).execute() == 1

    def row(self, row_id: int) -> OutboxRow | None:
        Message = self.tables.Message
        row = Message.get_or_none(Message.id == row_id)
        return outbox_row_of(row) if row else None

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
