"""Contacts (a Zalo user and their FreshChat user), their FreshChat conversations and the poll schedule."""

from __future__ import annotations

from typing import Any

from peewee import Case, fn

from zfsync import domain
from zfsync.store.base import StoreBase, contact_of
from zfsync.store.prepared import Slot


class ContactStore(StoreBase):
    # --- contacts ------------------------------------------------------------------------------------

    def contact(self, zalo_user_id: str) -> domain.Contact | None:
        Contact = self.tables.Contact
        row = Contact.get_or_none(Contact.zalo_user_id == zalo_user_id)
        return contact_of(row) if row else None

    def contact_by_id(self, contact_id: int) -> domain.Contact:
        Contact = self.tables.Contact
        query = self.prepared("contact_by_id", lambda: Contact.select().where(Contact.id == Slot("id")))
        row = query.first(id=contact_id)
        if row is None:
            raise Contact.DoesNotExist(f"no contact {contact_id}")
        return contact_of(row)

    def set_fc_user(self, contact_id: int, fc_user_id: str, now: float) -> None:
        Contact = self.tables.Contact
        # The user was made from the listing's name and avatar: what the customer shared and the OA's tags
        # come with the first profile check, within a minute (profile_checked_at stays as it was).
        Contact.update(fc_user_id=fc_user_id).where(Contact.id == contact_id).execute()

    def contacts_for_profile_check(
        self, checked_before: float, wrote_since_ms: int, limit: int, active_checked_before: float | None = None
    ) -> list[domain.Contact]:
        """Contacts with a FreshChat user who wrote since ``wrote_since_ms`` and whose profile was last
        checked before ``checked_before`` (or before ``active_checked_before`` when they wrote since)."""
        Contact = self.tables.Contact
        active = active_checked_before is not None

        def build() -> Any:
            due = Contact.profile_checked_at < Slot("checked_before")
            if active:
                wrote_since_check = Contact.last_inbound_ms > Contact.profile_checked_at * 1000
                due = due | ((Contact.profile_checked_at < Slot("active_checked_before")) & wrote_since_check)
            return (
                Contact.select()
                .where(Contact.fc_user_id.is_null(False), due, Contact.last_inbound_ms >= Slot("wrote_since_ms"))
                .order_by(Contact.profile_checked_at)
                .limit(Slot("limit"))
            )

        values: dict[str, Any] = {"checked_before": checked_before, "wrote_since_ms": wrote_since_ms, "limit": limit}
        if active:
            values["active_checked_before"] = active_checked_before
        query = self.prepared(f"contacts_for_profile_check:{active}", build)
        return [contact_of(row) for row in query.rows(**values)]

    def set_profile(self, contact_id: int, name: str, avatar: str, checked_at: float, shown: str | None = None) -> None:
        """The name and avatar read, when; ``shown``: the fingerprint of the details now on the FreshChat user."""
        Contact = self.tables.Contact
        updates: dict[Any, Any] = {Contact.display_name: name, Contact.avatar_url: avatar}
        updates[Contact.profile_checked_at] = checked_at
        if shown is not None:
            updates[Contact.shown_profile] = shown
        Contact.update(updates).where(Contact.id == contact_id).execute()

    def mark_answered(self, contact_id: int, up_to_ms: int) -> None:
        """An agent answered the customer's messages up to ``up_to_ms`` (a reply, a resolve, an assignment)."""
        Contact = self.tables.Contact
        Contact.update(answered_ms=self._greatest(Contact.answered_ms, up_to_ms)).where(
            Contact.id == contact_id
        ).execute()

    def set_assign_checked(self, contact_id: int, at: float) -> None:
        Contact = self.tables.Contact
        Contact.update(assign_checked_at=at).where(Contact.id == contact_id).execute()

    def unanswered(self, wrote_before_ms: int, wrote_after_ms: int) -> tuple[int, int]:
        """Customers whose last message, in ``(wrote_after_ms, wrote_before_ms]``, no agent has answered:
        how many, and when the longest-waiting one wrote (0: none)."""
        Contact = self.tables.Contact
        row = (
            Contact.select(fn.COUNT(Contact.id), fn.MIN(Contact.last_inbound_ms))
            .where(*self._waiting_for_agent(wrote_before_ms, wrote_after_ms))
            .tuples()
            .first()
        )
        return (int(row[0]), int(row[1] or 0)) if row else (0, 0)

    def contacts_unanswered(
        self, wrote_before_ms: int, wrote_after_ms: int, checked_before: float, limit: int
    ) -> list[domain.Contact]:
        """The waiting customers whose assignment was not asked of FreshChat since ``checked_before``."""
        Contact = self.tables.Contact

        def build() -> Any:
            waiting = self._waiting_for_agent(Slot("wrote_before_ms"), Slot("wrote_after_ms"))
            return (
                Contact.select()
                .where(*waiting, Contact.assign_checked_at < Slot("checked_before"))
                .order_by(Contact.last_inbound_ms)
                .limit(Slot("limit"))
            )

        query = self.prepared("contacts_unanswered", build).rows(
            wrote_before_ms=wrote_before_ms, wrote_after_ms=wrote_after_ms, checked_before=checked_before, limit=limit
        )
        return [contact_of(row) for row in query]

    def _waiting_for_agent(self, wrote_before_ms: Any, wrote_after_ms: Any) -> tuple[Any, ...]:
        Contact = self.tables.Contact
        return (
            Contact.fc_user_id.is_null(False),
            Contact.last_inbound_ms > Contact.answered_ms,
            Contact.last_inbound_ms <= wrote_before_ms,
            Contact.last_inbound_ms > wrote_after_ms,
        )

    def check_profile_soon(self, contact_id: int) -> None:
        """Something of the profile changed on Zalo (a tag an agent set): check it on the next run."""
        Contact = self.tables.Contact
        Contact.update(profile_checked_at=0).where(Contact.id == contact_id).execute()

    def learn_clock(
        self,
        contact_id: int,
        interaction_ms: int | None = None,
        free_left: int | None = None,
        free_known: bool = False,
        quota_checked_at: float | None = None,
    ) -> None:
        """What Zalo said of a customer's clocks: an interaction (kept if newer), the free replies left
        (``free_known``: replace what was known, None included), when quota/message was asked."""
        Contact = self.tables.Contact
        updates: dict[Any, Any] = {}
        if interaction_ms:
            updates[Contact.last_interaction_ms] = self._greatest(Contact.last_interaction_ms, interaction_ms)
            if not free_known:  # a newer interaction starts a new 48 h of free replies
                later = (Contact.last_interaction_ms < interaction_ms) & (Contact.last_inbound_ms < interaction_ms)
                updates[Contact.free_replies_left] = Case(None, [(later, None)], Contact.free_replies_left)
        if free_known:
            updates[Contact.free_replies_left] = free_left
        if quota_checked_at is not None:
            updates[Contact.quota_checked_at] = quota_checked_at
        if updates:
            Contact.update(updates).where(Contact.id == contact_id).execute()

    def mark_warned(self, contact_id: int, window_ms: int | None = None, free_ms: int | None = None) -> bool:
        """Record that the agent was warned (the window closing, the free replies spent) for the interaction
        ``*_ms``; False if they were already warned for it (so a warning is said once)."""
        Contact = self.tables.Contact
        query = Contact.update(
            {Contact.warned_window_ms: window_ms} if window_ms is not None else {Contact.warned_free_ms: free_ms}
        ).where(Contact.id == contact_id)
        if window_ms is not None:
            query = query.where(Contact.warned_window_ms < window_ms)
        else:
            query = query.where(Contact.warned_free_ms < (free_ms or 0))
        return query.execute() == 1

    def contacts_window_closing(self, opened_after_ms: int, opened_before_ms: int, limit: int) -> list[domain.Contact]:
        """Contacts with a FreshChat user whose last interaction lies in ``(opened_after_ms,
        opened_before_ms]`` (so their window closes within the warning's hours) and who were not warned of it."""
        Contact = self.tables.Contact

        def build() -> Any:
            interacted = self._greatest(Contact.last_inbound_ms, Contact.last_interaction_ms)
            return (
                Contact.select()
                .where(
                    Contact.fc_user_id.is_null(False),
                    interacted > Slot("after"),
                    interacted <= Slot("before"),
                    Contact.warned_window_ms < interacted,
                )
                .limit(Slot("limit"))
            )

        query = self.prepared("contacts_window_closing", build)
        return [contact_of(row) for row in query.rows(after=opened_after_ms, before=opened_before_ms, limit=limit)]
