"""The group chats' clocks and names: each group runs on a package of its own (GMF, ``quota/group``) that ends on a
day, after which Zalo disables the group. Read hourly; the end is written on the group's FreshChat
conversation (``sync.group_expiry_property``, if set) and, ``sync.group_expiry_warning_days`` before it,
the agents get one private note in that conversation (once per end: a renewed package is told again when
its own end comes near). A group renamed on Zalo has its FreshChat user renamed in the same hourly run, and
each group's members are listed by name for mentions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import structlog

from zfsync.domain import Contact, Conversation, GroupBook, KnownGroup, group_key
from zfsync.domain.errors import PermanentError, RemoteError
from zfsync.sides.priority import Priority, purpose
from zfsync.sync.decide import groups, notes
from zfsync.sync.desk.profiles import group_user, shown
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import GroupPackageRecord

log = structlog.get_logger("zfsync.sync")

RUN_EVERY = 3600.0
Places = dict[str, tuple[Contact | None, Conversation | None]]  # group id -> its contact and conversation


class GroupPackages:
    def __init__(
        self,
        zalo: ZaloSide,
        freshchat: FreshChatSide,
        store: GroupPackageRecord,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        enabled: bool,
        warning_days: int,
        conversation_property: str,
    ):
        self.zalo, self.fc, self.store = zalo, freshchat, store
        self.clock, self.monotonic = clock, monotonic
        self.enabled = enabled  # sync.groups
        self.warning_days = warning_days  # sync.group_expiry_warning_days; 0: no note
        self.property = conversation_property  # sync.group_expiry_property; "": none
        self._last = float("-inf")

    def run_due(self) -> bool:
        """Read the packages if an hour passed; returns whether a note was queued."""
        if not self.enabled or abs(self.monotonic() - self._last) < RUN_EVERY:
            return False
        self._last = self.monotonic()
        try:
            with purpose(Priority.PROFILE):
                assets = self.zalo.group_assets()
        except RemoteError as exc:  # the next hour asks again; names and members are still read
            log.info("zalo_group_packages_unread", error=str(exc))
            assets = []
        ends = {a.group_id: a.valid_through for a in assets if a.group_id and a.valid_through}
        now = self.clock()

        def learn(book: GroupBook) -> GroupBook:
            updated = tuple(replace(g, valid_through=ends.get(g.group_id, g.valid_through)) for g in book.groups)
            return replace(book, groups=updated, assets_at=now)

        book = self.store.change_group_book(learn)
        # The note is queued before the group is marked warned: queued twice (a kill between), it is one
        # row all the same (its id names the group and the end).
        places = {g.group_id: self._place(g) for g in book.groups}  # each group's contact and conversation, once
        warned = [
            g
            for g in book.groups
            if groups.expiry_warning_due(g, now, self.warning_days) and self._tell(g, places, now)
        ]
        if warned:
            ends_told = {g.group_id: g.valid_through for g in warned}

            def mark(book: GroupBook) -> GroupBook:
                marked = (
                    replace(g, warned_through=ends_told[g.group_id]) if g.group_id in ends_told else g
                    for g in book.groups
                )
                return replace(book, groups=tuple(marked))

            self.store.change_group_book(mark)
        for group in book.groups:
            contact, conversation = places[group.group_id]
            self._show(group, conversation)
            self._rename(group, contact, now)
        self._learn_members([g.group_id for g in book.groups if g.enabled])
        return bool(warned)

    def _learn_members(self, group_ids: list[str]) -> None:
        """Each group's members by name (``listmember``), so an agent's ``@Name`` reaches one who has not
        written yet, and a mention of them shows by name."""
        listed: dict[str, dict[str, str]] = {}
        for group_id in group_ids:
            try:
                with purpose(Priority.PROFILE):
                    listed[group_id] = dict(self.zalo.group_members(group_id))
            except PermanentError as exc:  # this group only (disabled, left)
                log.info("zalo_group_members_unread", group=group_id, error=str(exc))
            except RemoteError as exc:  # the side's trouble: the rest waits for the next hour
                log.info("zalo_group_members_unread", group=group_id, error=str(exc))
                break

        def learn(book: GroupBook) -> GroupBook:
            learned = (
                replace(g, members=groups.members_after(g, listed[g.group_id])) if g.group_id in listed else g
                for g in book.groups
            )
            return replace(book, groups=tuple(learned))

        if listed:
            self.store.change_group_book(learn)

    def _place(self, group: KnownGroup) -> tuple[Contact | None, Conversation | None]:
        """The group's contact and its current FreshChat conversation (None: none yet)."""
        contact = self.store.contact(group_key(group.group_id))
        return contact, self.store.current_conversation(contact.id) if contact else None

    def _tell(self, group: KnownGroup, places: Places, now: float) -> bool:
        """Queue the note in the group's conversation; False when it has none yet (told once it has)."""
        contact, conversation = places[group.group_id]
        if contact is None or conversation is None:
            return False
        text = notes.group_expiry_note(group.name, group.valid_through, groups.days_left(group.valid_through, now))
        note = notes.note_row(
            f"gmf-expiry:{group.group_id}:{group.valid_through}", text, conversation.fc_conversation_id, "", now
        )
        self.store.insert_rows(contact.id, [note], now)
        log.info("zalo_group_package_ending", group=group.group_id, valid_through=group.valid_through)
        return True

    def _rename(self, group: KnownGroup, contact: Contact | None, now: float) -> None:
        """A group renamed (or given another avatar) on Zalo: its FreshChat user follows."""
        if contact is None or not contact.fc_user_id or not group.name:
            return
        if (contact.display_name, contact.avatar_url) == (group.name, group.avatar or contact.avatar_url):
            return
        renamed = replace(contact, display_name=group.name, avatar_url=group.avatar or contact.avatar_url)
        user = group_user(renamed, max(contact.last_inbound_ms, contact.first_seen_ms))
        try:
            with purpose(Priority.PROFILE):
                self.fc.update_user(contact.fc_user_id, user)
        except RemoteError as exc:  # the next hour tries again
            log.info("group_user_unrenamed", group=group.group_id, error=str(exc))
            return
        self.store.set_profile(contact.id, renamed.display_name, renamed.avatar_url, now, shown=shown(user))
        log.info("group_user_renamed", group=group.group_id)

    def _show(self, group: KnownGroup, conversation: Conversation | None) -> None:
        if not self.property or not group.valid_through or conversation is None:
            return
        try:
            with purpose(Priority.PROFILE):
                self.fc.set_conversation_properties(
                    conversation.fc_conversation_id, {self.property: group.valid_through}
                )
        except RemoteError as exc:
            log.info("group_package_property_unwritten", group=group.group_id, error=str(exc))
