"""What the sync core needs from the store, one small protocol per seam. `zfsync.store.Store` fits them all;
each part of the core names only the seams it uses, and speaks domain values through them.

- `Outbox`: the queued rows, their delivery, and what zfsync itself sent (echoes);
- `ZaloRecord`: what was read from Zalo, and where reading its feed stands;
- `Contacts`: the contacts, their FreshChat users and conversations, and when each is polled;
- `Health`: each side's last outcome, for `zfsync status`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Protocol

from zfsync.domain import (
    Baseline,
    Contact,
    Conversation,
    FailedReply,
    FeedCursor,
    GroupBook,
    HistoryImport,
    Mark,
    NewRow,
    OutboxRow,
    OwnSend,
    Part,
    RecordedRow,
    Resume,
    ZnsQuota,
    ZnsRating,
)


class Outbox(Protocol):
    def due_heads(self, direction: str, now: float, limit: int, exclude: Collection[int] = ()) -> list[OutboxRow]:
        """Each contact's oldest open row, if due, but for the contacts in ``exclude``."""
        ...

    def failed_count(self, contact_id: int, direction: str) -> int:
        """How many of the contact's rows in ``direction`` failed for good."""
        ...

    def failed_replies(self, contact_id: int) -> list[FailedReply]:
        """The agents' replies to this contact that failed for good, oldest first."""
        ...

    def retry_replies(self, row_ids: list[int], *, on_return: bool = False) -> int:
        """Put these failed replies back in line; ``on_return``: marked as sent again once for that."""
        ...

    def next_due_head(self, direction: str, exclude: Collection[int] = ()) -> float | None: ...

    def outbox_mark(self) -> tuple[int, str]:
        """Changes whenever rows are queued or put back in line, by any process."""
        ...

    def claim(self, row: OutboxRow, now: float) -> bool:
        """Compare-and-set the row to ``sending``; False if another worker (or daemon) changed it."""
        ...

    def finish_sent(self, row_id: int, dest_id: str, now: float, conversation_id: str | None = None) -> None: ...

    def postpone(
        self, row_id: int, next_at: float, error: str, code: str, outcome_unknown: bool, count_attempt: bool = True
    ) -> None: ...

    def fail(self, row_id: int, error: str, code: str, now: float) -> None: ...

    def skip(self, row_id: int, reason: str, now: float) -> None: ...

    def keep_copied_parts(self, row_id: int, parts: Sequence[Part]) -> None:
        """Keep a customer's message's parts once its media are copied, so a retry posts the same ones."""
        ...

    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int: ...

    def dest_taken(self, direction: str, dest_id: str) -> bool: ...

    def listing_claimed(self, zalo_id: str) -> bool: ...

    def open_rows_of(self, contact_id: int, direction: str) -> int: ...

    def own_sends(self, contact_id: int, since: float) -> list[OwnSend]: ...

    def set_echo(self, row_id: int, zalo_id: str) -> bool: ...


class NearRecords(Protocol):
    def recorded_near(self, zalo_user_id: str, since_ms: int, until_ms: int) -> list[RecordedRow]: ...


class MessageRecord(Protocol):
    """Which Zalo messages are recorded, and recording one contact's new ones: a customer's or a group's."""

    def known_zalo_ids(self, ids: Iterable[str]) -> set[str]: ...

    def recorded_zalo_ids(self, ids: Iterable[str]) -> set[str]: ...

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
    ) -> Contact:
        """One user's new rows, their cursor and aliases in one transaction; ``poll_at``: when to poll the
        user's FreshChat conversation next (the caller's schedule decides)."""
        ...

    def record_history(
        self, user_id: str, name: str, avatar: str, rows: list[NewRow], clocks: tuple[int, int], now: float
    ) -> int: ...


class ZaloRecord(MessageRecord, Protocol):
    def feed_cursor(self) -> FeedCursor: ...

    def start_feed(self, baseline: Baseline, mark: Mark, history: HistoryImport | None = None) -> None: ...

    def move_feed(self, mark: Mark, resume: Resume | None, owed: frozenset[str] = frozenset()) -> None: ...

    def recorded_near(self, zalo_user_id: str, since_ms: int, until_ms: int) -> list[RecordedRow]: ...

    def record_aliases(self, zalo_user_id: str, aliases: dict[str, str]) -> None: ...

    def failed_replies(self, contact_id: int) -> list[FailedReply]: ...

    def retry_replies(self, row_ids: list[int], *, on_return: bool = False) -> int: ...

    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int: ...

    def note_user_list_cut(self, at: float, cut: Sequence[tuple[str, int]]) -> None: ...

    def zalo_ids_of_posts(self, fc_message_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The Zalo message each FreshChat message was copied from: its ids, the feed's first."""
        ...


class HistoryRecord(Protocol):
    """What the history import reads and records (`zfsync.sync.read.history`)."""

    def note_user_list_cut(self, at: float, cut: Sequence[tuple[str, int]]) -> None:
        """Zalo listed more users for these days than it lets be read: (period, how many it counted)."""
        ...

    def feed_cursor(self) -> FeedCursor: ...

    def history_import(self) -> HistoryImport | None: ...

    def advance_history_import(self, asked_at: float, history: HistoryImport | None) -> bool: ...

    def known_zalo_ids(self, ids: Iterable[str]) -> set[str]: ...

    def recorded_near(self, zalo_user_id: str, since_ms: int, until_ms: int) -> list[RecordedRow]: ...

    def record_history(
        self, user_id: str, name: str, avatar: str, rows: list[NewRow], clocks: tuple[int, int], now: float
    ) -> int: ...


class Contacts(Protocol):
    def contact_by_id(self, contact_id: int) -> Contact: ...

    def set_fc_user(self, contact_id: int, fc_user_id: str, now: float) -> None: ...

    def forget_fc_user(self, contact_id: int) -> None: ...

    def contacts_for_profile_check(
        self, checked_before: float, active_since_ms: int, limit: int, active_checked_before: float | None = None
    ) -> list[Contact]: ...

    def set_profile(
        self, contact_id: int, name: str, avatar: str, checked_at: float, shown: str | None = None
    ) -> None: ...

    def check_profile_soon(self, contact_id: int) -> None: ...

    def learn_clock(
        self,
        contact_id: int,
        interaction_ms: int | None = None,
        free_left: int | None = None,
        free_known: bool = False,
        quota_checked_at: float | None = None,
    ) -> None:
        """What Zalo said of a customer's window (an interaction) and free replies."""
        ...

    def mark_warned(self, contact_id: int, window_ms: int | None = None, free_ms: int | None = None) -> bool:
        """Record a warning for the interaction ``*_ms``; False if it was given already."""
        ...

    def contacts_window_closing(self, opened_after_ms: int, opened_before_ms: int, limit: int) -> list[Contact]: ...

    def current_conversation(self, contact_id: int) -> Conversation | None: ...

    def previous_conversation(self, contact_id: int) -> str | None: ...

    def add_conversation(
        self, contact_id: int, fc_conversation_id: str, now: float, active_at: float | None = None
    ) -> Conversation: ...

    def forget_conversation(self, conversation_id: int) -> None: ...

    def set_resolved(self, conversation_id: int, resolved: bool) -> None: ...

    def conversations_due(self, now: float, limit: int, active_since: float) -> list[Conversation]: ...

    def next_poll_time(self) -> float | None: ...

    def set_next_poll(self, conversation_id: int, at: float) -> None: ...

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
    ) -> int: ...

    def mark_answered(self, contact_id: int, up_to_ms: int) -> None: ...

    def set_assign_checked(self, contact_id: int, at: float) -> None: ...

    def contacts_unanswered(
        self, wrote_before_ms: int, wrote_after_ms: int, checked_before: float, limit: int
    ) -> list[Contact]:
        """Customers waiting for an agent whose assignment was not asked since ``checked_before``."""
        ...

    def clamp_schedule(self, now: float, poll_horizon: float, retry_horizon: float) -> tuple[int, int]: ...


class Health(Protocol):
    def set_health(self, side: str, state: str, now: float, error: str = "") -> None: ...


class RouteRecord(Protocol):
    """The ``[[route]]`` tables found wrong, for `zfsync status` (`zfsync.sync.decide.routing`)."""

    def route_problems(self) -> dict[int, tuple[str, float]]: ...

    def set_route_problems(self, found: Mapping[int, str], now: float, *, add: bool = False) -> None: ...


class Replies(Protocol):
    def agent_replied(self, contact_id: int, fc_conversation_id: str) -> bool:
        """Whether an agent's reply from this FreshChat conversation was ever queued to the customer."""
        ...


class RatingRecord(Protocol):
    """The customers' ratings read back from Zalo (`zfsync.sync.desk.ratings`)."""

    def ratings_read_until(self) -> int: ...

    def set_ratings_read_until(self, until_ms: int) -> None: ...

    def rating_origin(self, tracking_id: str) -> tuple[int, str] | None: ...

    def rating_seen(self, message_id: str) -> bool: ...

    def record_rating(self, rating: ZnsRating, now: float) -> bool: ...

    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int: ...


class ZnsRecord(Protocol):
    def save_zns_quota(self, quota: ZnsQuota, now: float) -> None: ...


class GroupBooks(Protocol):
    def group_book(self) -> GroupBook: ...

    def save_group_book(self, book: GroupBook) -> None: ...

    def change_group_book(self, change: Callable[[GroupBook], GroupBook]) -> GroupBook:
        """Read the book, change it and write it back, with no other change of it in between."""
        ...


class GroupRecord(GroupBooks, MessageRecord, Protocol):
    """What reading the OA's group chats keeps (`zfsync.sync.read.group_reader`) and records."""


class GroupPackageRecord(GroupBooks, Protocol):
    """What the group packages' check reads and queues (`zfsync.sync.desk.group_packages`)."""

    def contact(self, zalo_user_id: str) -> Contact | None: ...

    def current_conversation(self, contact_id: int) -> Conversation | None: ...

    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int: ...

    def set_profile(
        self, contact_id: int, name: str, avatar: str, checked_at: float, shown: str | None = None
    ) -> None: ...


class WriterStore(Outbox, Contacts, RouteRecord, ZnsRecord, GroupBooks, Protocol):
    """What the writers use: the outbox, the contacts they write for, the routes found wrong."""


class ReaderStore(ZaloRecord, Contacts, Replies, Protocol):
    """What the readers use: what was read, and the contacts it belongs to."""


class EngineStore(
    Outbox,
    ZaloRecord,
    HistoryRecord,
    Contacts,
    RouteRecord,
    Health,
    Replies,
    RatingRecord,
    GroupRecord,
    GroupPackageRecord,
    Protocol,
):
    """What the engine hands its parts: every seam (the store fits it)."""
