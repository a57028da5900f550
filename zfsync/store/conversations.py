"""The FreshChat conversations that carry each contact's messages, and their poll schedule."""

from __future__ import annotations

from typing import Any

from peewee import fn

from zfsync import domain
from zfsync.domain import OPEN_STATES
from zfsync.store.base import GONE, NewRow, conversation_of
from zfsync.store.contacts import ContactStore
from zfsync.store.prepared import Slot


class ConversationStore(ContactStore):
    """A contact's conversations (a part of the store that builds on the contacts)."""

    def current_conversation(self, contact_id: int) -> domain.Conversation | None:
        Conversation = self.tables.Conversation

        def build() -> Any:
            current = (Conversation.contact == Slot("contact"), Conversation.is_current == True)  # noqa: E712
            return Conversation.select().where(*current).order_by(Conversation.id.desc()).limit(1)

        row = self.prepared("current_conversation", build).first(contact=contact_id)
        return conversation_of(row) if row else None

    def previous_conversation(self, contact_id: int) -> str | None:
        """The FreshChat id of the contact's newest conversation, current or not (a forgotten one too)."""
        Conversation = self.tables.Conversation
        row = Conversation.select().where(Conversation.contact == contact_id).order_by(Conversation.id.desc()).first()
        return row.fc_conversation_id if row else None

    def conversation(self, fc_conversation_id: str) -> domain.Conversation | None:
        Conversation = self.tables.Conversation
        row = Conversation.get_or_none(Conversation.fc_conversation_id == fc_conversation_id)
        return conversation_of(row) if row else None

    def add_conversation(
        self, contact_id: int, fc_conversation_id: str, now: float, active_at: float | None = None
    ) -> domain.Conversation:
        """Make it the contact's current conversation; ``active_at``: its last activity, when not now (one
        opened by imported history is as old as that history, so it is not polled as an active one)."""
        Conversation = self.tables.Conversation
        with self.db.atomic():
            Conversation.update(is_current=False).where(Conversation.contact == contact_id).execute()
            existing = Conversation.get_or_none(Conversation.fc_conversation_id == fc_conversation_id)
            if existing:
                Conversation.update(is_current=True).where(Conversation.id == existing.id).execute()
                return conversation_of(Conversation.get_by_id(existing.id))
            created = Conversation.create(
                contact=contact_id,
                fc_conversation_id=fc_conversation_id,
                created_at=now,
                last_activity_at=now if active_at is None else min(active_at, now),
                next_poll_at=now,
            )
            return conversation_of(created)

    def forget_conversation(self, conversation_id: int) -> None:
        """FreshChat no longer has it: never post to it or poll it again (its rows stay, for the record)."""
        Conversation = self.tables.Conversation
        Conversation.update(is_current=False, next_poll_at=GONE).where(Conversation.id == conversation_id).execute()

    def forget_fc_user(self, contact_id: int) -> None:
        """FreshChat no longer has the contact's user: the next message finds or creates one again."""
        Contact, Conversation = self.tables.Contact, self.tables.Conversation
        with self.db.atomic():
            Contact.update(fc_user_id=None).where(Contact.id == contact_id).execute()
            Conversation.update(is_current=False).where(Conversation.contact == contact_id).execute()

    def set_resolved(self, conversation_id: int, resolved: bool) -> None:
        Conversation = self.tables.Conversation
        Conversation.update(resolved=resolved).where(Conversation.id == conversation_id).execute()

    def conversations_due(self, now: float, limit: int, active_since: float) -> list[domain.Conversation]:
        """Up to ``limit`` conversations due for a poll: those active since ``active_since`` first, then
        the most overdue. The active ones take at most three quarters when others wait, so a busy day
        slows the quiet conversations down but never stops them."""
        Conversation = self.tables.Conversation
        if limit <= 0:
            return []

        def due(active: bool) -> Any:
            since = Slot("active_since")
            recent = Conversation.last_activity_at >= since if active else Conversation.last_activity_at < since
            return (
                Conversation.select()
                .where(Conversation.next_poll_at <= Slot("now"), recent)
                .order_by(Conversation.next_poll_at)
                .limit(Slot("limit"))
            )

        active_share = limit - limit // 4  # when others wait
        active = self.prepared("due_active", lambda: due(True)).rows(now=now, active_since=active_since, limit=limit)
        room = limit - min(len(active), active_share)
        others = (
            self.prepared("due_others", lambda: due(False)).rows(now=now, active_since=active_since, limit=room)
            if room
            else []
        )
        if others:
            active = active[:active_share]
        return [conversation_of(row) for row in active + others]

    def clamp_schedule(self, now: float, poll_horizon: float, retry_horizon: float) -> tuple[int, int]:
        """Bring polls and retries planned further ahead than any schedule plans (or activity recorded in
        the future) back to now; returns how many conversations and rows moved."""
        Conversation, Message = self.tables.Conversation, self.tables.Message
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
                .where(
                    Message.status.in_(OPEN_STATES),
                    Message.next_attempt_at > now + retry_horizon,
                )
                .execute()
            )
        return conversations, rows

    def set_next_poll(self, conversation_id: int, at: float) -> None:
        Conversation = self.tables.Conversation
        Conversation.update(next_poll_at=at).where(Conversation.id == conversation_id).execute()

    def conversation_count(self) -> int:
        Conversation = self.tables.Conversation
        return Conversation.select().count()

    def next_poll_time(self) -> float | None:
        Conversation = self.tables.Conversation
        [(value,)] = self.prepared("next_poll", lambda: Conversation.select(fn.MIN(Conversation.next_poll_at))).tuples()
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
        answered_at: float | None = None,
        resolved_at: float | None = None,
    ) -> int:
        """Insert what one poll of a conversation found and move its cursor, in one transaction;
        ``answered_at``: when an agent last replied or resolved in what was read; ``resolved_at``: when it
        was resolved, if it was."""
        Conversation = self.tables.Conversation
        with self.db.atomic():
            inserted = self._insert_rows(contact_id, rows, now)
            values: dict[str, Any] = {"next_poll_at": next_poll_at}
            if cursor is not None:
                values.update(cursor_id=cursor[0], cursor_time=cursor[1])
            if activity_at is not None:
                values["last_activity_at"] = activity_at
            if resolved is not None:
                values["resolved"] = resolved
            if resolved and resolved_at is not None:
                values["resolved_at"] = resolved_at
            names = sorted(values)  # a few shapes, each built once: an idle poll only moves next_poll_at
            self.prepared(
                "conversation_read:" + ",".join(names),
                lambda: Conversation.update({getattr(Conversation, n): Slot(n) for n in names}).where(
                    Conversation.id == Slot("id")
                ),
            ).execute(id=conversation_id, **values)
            if answered_at is not None:
                self.mark_answered(contact_id, int(answered_at * 1000))
            return inserted

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
        Conversation = self.tables.Conversation
        contact = self.contact(zalo_user_id)
        if contact is None:
            return False
        self.add_conversation(contact.id, fc_conversation_id, now)
        Conversation.update(next_poll_at=now).where(Conversation.fc_conversation_id == fc_conversation_id).execute()
        return True
