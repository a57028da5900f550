"""What Zalo showed, recorded: the ids the store knows, the messages each listing brought (live and
imported), the ids one message has in the two listings, and which FreshChat message a Zalo one became."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from zfsync import domain
from zfsync.domain import NewRow
from zfsync.store.base import StoreBase, chunks, contact_of
from zfsync.store.prepared import Slot


class FeedStore(StoreBase):
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
