"""The directions, the kinds and states of an outbox row, and the frozen values the store hands out (so
nothing outside the store can change a row behind its back)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from zfsync.domain.groups import is_group

if TYPE_CHECKING:  # outbound builds on the kinds defined here
    from zfsync.domain.freshchat import Part
    from zfsync.domain.outbound import Reply, RowContent


class Direction(StrEnum):
    Z2F = "z2f"  # a Zalo customer's message, to FreshChat
    F2Z = "f2z"  # an agent's reply, to Zalo


Z2F, F2Z = Direction.Z2F, Direction.F2Z


class Kind(StrEnum):
    """The kinds of outbox row zfsync itself makes. A customer's row is of the Zalo type it was listed with
    (text, photo, sticker, link, location, voice, file ...: Zalo adds types, so those stay open strings)."""

    OA_NOTE = "oa_note"  # OA staff wrote to the customer from OA Manager: a private note for the agent
    FAILURE_NOTE = "failure_note"  # a private note telling the agent a reply did not reach the customer
    TEXT = "text"  # an agent's text (or one part of a long one)
    IMAGE = "image"  # an agent's image
    FILE = "file"  # an agent's file
    TEXT_FILE = "text_file"  # an agent's long text, sent as a document
    RESOLVE_NOTICE = "resolve_notice"  # the text sent to the customer when an agent resolves (sync.resolve_notice)
    COMMAND = "command"  # an agent's "/zalo ..." private note: done on Zalo (a card, a tag), never sent as text
    HISTORY_MARKER = "history_marker"  # the private note that opens a customer's imported history


class Status(StrEnum):
    """Where one outbox row (one message, or one part of a split message) stands."""

    PENDING = "pending"  # waiting to be sent
    SENDING = "sending"  # claimed; if found again, the outcome of the last attempt is unknown: reconcile first
    SENT = "sent"
    FAILED = "failed"  # gave up; listed by `zfsync failed`, can be retried or skipped
    SKIPPED = "skipped"  # deliberately not sent (echo, skipped by an operator)


OPEN_STATES = (Status.PENDING, Status.SENDING)


class SideHealth(StrEnum):
    """The outcome of a side's last poll, as `zfsync status` and the metrics show it."""

    OK = "OK"
    TRANSIENT_ERROR = "TRANSIENT_ERROR"  # the side or the network failed for a while: retried on its own
    RATE_LIMITED = "RATE_LIMITED"
    BAD_CREDENTIALS = "BAD_CREDENTIALS"  # a human must act: the token or the API key
    PERMANENT_ERROR = "PERMANENT_ERROR"


# --- what the store keeps: frozen values, so nothing outside the store can change a row behind its back ---


@dataclass(frozen=True)
class Contact:
    """A Zalo user and the FreshChat user that stands for them."""

    id: int
    zalo_user_id: str
    display_name: str
    avatar_url: str
    fc_user_id: str | None
    first_seen_ms: int
    last_inbound_ms: int  # the customer's last message: Zalo's 7-day window
    cursor_time_ms: int
    cursor_id: str
    profile_checked_at: float
    # Zalo's two clocks, as zfsync last learned them (from messages, user/detail, quota/message, send answers)
    last_interaction_ms: int = 0  # any interaction (a message, a follow, a call, a menu tap): the window
    free_replies_left: int | None = None  # of the free replies within 48 h, where Zalo says how many
    warned_window_ms: int = 0  # the interaction whose closing window the agent was warned of
    warned_free_ms: int = 0  # the interaction after which the agent was told the free replies are spent
    quota_checked_at: float = 0.0  # when quota/message was last asked about this customer
    shown_profile: str = ""  # what was last written of their details on the FreshChat user (its fingerprint)
    answered_ms: int = 0  # an agent's last reply, resolve or assignment seen: a later message waits for one
    assign_checked_at: float = 0.0  # when FreshChat was last asked whether a waiting customer is assigned

    @property
    def is_group(self) -> bool:
        """A Zalo group chat of the OA's, not a customer (`zfsync.domain.groups`)."""
        return is_group(self.zalo_user_id)

    @property
    def interacted_ms(self) -> int:
        """The customer's last interaction as far as zfsync knows: their last message, or Zalo's word."""
        return max(self.last_inbound_ms, self.last_interaction_ms)


@dataclass(frozen=True)
class Conversation:
    """A FreshChat conversation carrying one contact's messages; ``is_current`` marks the one posted to."""

    id: int
    contact_id: int
    fc_conversation_id: str
    is_current: bool
    resolved: bool
    created_at: float
    last_activity_at: float
    next_poll_at: float
    cursor_id: str  # newest FreshChat message already read
    cursor_time: float
    resolved_at: float = 0.0  # when an agent last resolved it (0: not known)


@dataclass(frozen=True)
class OutboxRow:
    """One message (or one part of a split one) to copy to the other side, and how far it got."""

    id: int
    direction: str  # Z2F or F2Z
    source_id: str
    part: int
    contact_id: int
    kind: str
    content: RowContent  # what to send, typed (`outbound.row_content`)
    source_time: float  # epoch seconds at the source: the delivery order per contact
    status: str
    dest_id: str | None
    conversation_id: str | None
    attempts: int
    claimed_at: float | None
    history: bool = False  # imported history (`zfsync import-history`): delivered after live messages
    # a customer's message whose media an earlier attempt copied into FreshChat: the parts it posts
    copied: tuple[Part, ...] | None = None


@dataclass(frozen=True)
class NewRow:
    """An outbox row to insert; ``(direction, source_id, part)`` is its identity."""

    direction: str
    source_id: str
    kind: str
    content: RowContent
    source_time: float
    part: int = 0
    status: str = Status.PENDING
    dest_id: str | None = None
    conversation_id: str | None = None
    last_error: str = ""
    listing: str = ""  # z2f: which Zalo listing showed the message (FEED or CONVERSATION)
    alias_id: str | None = None  # z2f: the id the other listing shows it under, when known
    history: bool = False  # z2f: imported history, not a live message


@dataclass(frozen=True)
class FailedReply:
    """An agent's reply to a customer that failed for good, as a retry needs it."""

    row_id: int
    code: str  # why: Zalo's error code ("-213"), zfsync's own ("window"), or a transient one's
    conversation_id: str
    retried: bool  # already sent again once when the customer came back


@dataclass(frozen=True)
class OwnSend:
    """One of zfsync's sends to a Zalo user, as echo recognition needs it."""

    row_id: int
    reply: Reply
    dest_id: str | None
    echo_id: str | None
    status: str
    listed: bool  # the listing row of this send is known: its echo_id, or a recorded row with its dest_id


@dataclass(frozen=True)
class Route:
    """A ``[[route]]`` of the config: where a customer's new conversation opens when it matches
    (`zfsync.sync.decide.routing`)."""

    channel_id: str
    group_id: str = ""  # "" : FreshChat's own assignment rules
    tag: str = ""
    keyword: str = ""
    oa: str = ""
    zalo_group: str = ""  # a Zalo group chat's id, or "*": every group chat of the OA


# The codes a reply refused for the customer's closed 7-day window ends with: zfsync's own "window" (it knew
# before sending), Zalo's -230 and -232.
WINDOW_REFUSALS = ("window", "-230", "-232")


@dataclass(frozen=True)
class TemplateChoice:
    """A ``[[template]]`` of the config: the short name agents type after ``/zalo template``, the ZNS
    template it sends, and default values (``{customer.name}``, ``{customer.phone}`` filled in)."""

    name: str
    template_id: str
    defaults: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HistoryImport:
    """A history import asked for (`zfsync import-history`, or ``sync.import_history_days`` at the first
    start) and how far it got: each listed customer's Zalo messages since ``since_ms`` that were history
    at the first start are queued, oldest first, below every live message."""

    days: int
    since_ms: int  # messages written at or after this time are imported
    requested_at: float
    users: tuple[str, ...] | None = None  # customers still to read; None: not listed yet
    listed: int = 0  # customers listed
    queued: int = 0  # messages queued so far
