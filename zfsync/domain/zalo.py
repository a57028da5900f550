"""Zalo's side in zfsync's words: what a message says, a listing's row, a profile, the tokens, and where
reading the feed stands."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from zfsync.domain.common import Json


@dataclass(frozen=True)
class ZaloContent:
    """What a Zalo message says, in zfsync's words: what a customer's (or OA staff's) row stores in the
    outbox, and all that rendering and media copying read. ``extra`` holds the fields Zalo sent that have
    no name here (a business card's phone, a type Zalo added), so a placeholder can still show them."""

    type: str
    text: str = ""
    url: str = ""
    thumb: str = ""
    description: str = ""
    links: tuple[str, ...] = ()
    location: str = ""  # as Zalo sent it: "lat,lng", "lng,lat" or a JSON object (`render.location_text`)
    file_name: str = ""
    extra: Json = field(default_factory=dict, compare=False)
    # In a group chat: the member who wrote it (their Zalo id and the name Zalo showed), shown to the agent
    author_id: str = ""
    author_name: str = ""

    FORMAT = "zalo-content-1"  # under "format"; a payload without it is a row as listed (`app.upgrade_payloads`)

    def payload(self) -> Json:
        """The outbox payload: every field, links as a list, and the format tag."""
        return {
            "format": self.FORMAT,
            "type": self.type,
            "text": self.text,
            "url": self.url,
            "thumb": self.thumb,
            "description": self.description,
            "links": list(self.links),
            "location": self.location,
            "file_name": self.file_name,
            "extra": self.extra,
            **({"author_id": self.author_id, "author_name": self.author_name} if self.author_id else {}),
        }

    @classmethod
    def of(cls, payload: Json) -> ZaloContent:
        """The content a payload of `payload()` holds (other keys, such as copied parts, are ignored)."""
        return cls(
            type=str(payload.get("type") or "unknown"),
            text=str(payload.get("text") or ""),
            url=str(payload.get("url") or ""),
            thumb=str(payload.get("thumb") or ""),
            description=str(payload.get("description") or ""),
            links=tuple(str(x) for x in payload.get("links") or ()),
            location=str(payload.get("location") or ""),
            file_name=str(payload.get("file_name") or ""),
            extra=dict(payload.get("extra") or {}),
            author_id=str(payload.get("author_id") or ""),
            author_name=str(payload.get("author_name") or ""),
        )

    @classmethod
    def stored(cls, payload: Json) -> bool:
        return payload.get("format") == cls.FORMAT


FEED = "feed"  # Zalo's OA-wide listing, listrecentchat
CONVERSATION = "conversation"  # one user's listing


@dataclass(frozen=True)
class ZaloMessage:
    """One row of Zalo's ``listrecentchat`` or ``conversation``; ``user_id`` is always the customer.
    ``listing`` says which of the two showed it: they may show one message under two ids (`sync.aliases`)."""

    message_id: str
    user_id: str
    from_oa: bool  # src == 0: sent by the OA (by us, or by staff in OA Manager)
    time_ms: int
    content: ZaloContent
    user_name: str = ""
    user_avatar: str = ""
    listing: str = ""  # FEED or CONVERSATION

    @property
    def key(self) -> tuple[int, str]:
        """Sort key and cursor value: Zalo times can tie to the millisecond, so the id breaks ties."""
        return (self.time_ms, self.message_id)

    @property
    def type(self) -> str:
        return self.content.type

    @property
    def text(self) -> str:
        return self.content.text


@dataclass(frozen=True)
class ZaloProfile:
    """What ``user/detail`` says of a user: their name and avatar, what they chose to share with the OA
    (`shared`: only non-empty values), the OA's tags and notes on them, and Zalo's own view of their last
    interaction (a follow, a message, a call, a menu tap: any of them opens the 7-day window)."""

    user_id: str
    display_name: str
    avatar: str = ""
    shared: tuple[tuple[str, str], ...] = ()  # ("phone", "0901..."), ("address", ...), ("city", ...) ...
    tags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    follower: bool | None = None
    # Zalo gives only a day ("dd/MM/yyyy"): its first millisecond, Vietnamese time (0: none given). The
    # customer interacted at some time that day, so it tells of an interaction only when later than known.
    last_interaction_day_ms: int = 0


@dataclass(frozen=True)
class ZaloQuota:
    """What a send answer said it was paid from (``quota``), or what ``quota/message`` reports.

    ``kind``: "reply" (the free replies within 48 h of the customer's last interaction), "sub_quota"
    (the OA package's), "purchase_quota", "reward_quota", or "" when the answer carried none (a paid
    message). ``remain``/``total`` are None where Zalo did not say (reports from 2026 have it drop them)."""

    kind: str
    remain: int | None = None
    total: int | None = None
    expires: str = ""  # sub_quota's expired_date, as Zalo wrote it (dd/MM/yyyy)


@dataclass(frozen=True)
class ZaloSent:
    """A send Zalo accepted: the message's id, and the quota it was paid from."""

    message_id: str
    quota: ZaloQuota | None = None


@dataclass(frozen=True)
class ZaloPackage:
    """One of the OA's quota assets, as ``quota/message`` with ``quota_owner=OA`` lists them."""

    product: str  # cs (consultation), transaction ...
    kind: str  # sub_quota, purchase_quota, reward_quota
    remain: int
    total: int
    valid_through: str  # dd/MM/yyyy


@dataclass(frozen=True)
class ZaloTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float


@dataclass(frozen=True)
class StoredTokens:
    """Zalo's token pair as the store keeps it: when the access token expires, and why the pair is dead
    (a refused refresh) if it is."""

    access_token: str
    refresh_token: str
    expires_at: float
    dead_reason: str = ""


@dataclass(frozen=True)
class RecordedRow:
    """A Zalo message zfsync recorded, as matching one listing's row against the other's needs it."""

    zalo_id: str  # the id it was recorded under
    listing: str  # which listing showed it then ("" for rows recorded before zfsync kept it)
    from_oa: bool
    content: ZaloContent
    time_ms: int


# --- reading Zalo's feed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """What the feed held at the first start: history, never bridged."""

    time_ms: int
    ids: frozenset[str]  # the rows at exactly `time_ms` that were history

    def holds(self, row: ZaloMessage) -> bool:
        if row.time_ms < 0:
            return False
        return row.time_ms < self.time_ms or (row.time_ms == self.time_ms and row.message_id in self.ids)


@dataclass(frozen=True)
class Mark:
    """Where the last complete cycle left the feed: everything at or below these rows was handled."""

    time_ms: int
    ids: frozenset[str]


@dataclass(frozen=True)
class Resume:
    """A feed scan stopped at its page cap: the next cycle reads on from ``offset`` down to ``floor``."""

    offset: int
    floor: Mark


@dataclass(frozen=True)
class FeedCursor:
    """Where reading Zalo's feed stands; ``mark`` is None before the first start (no baseline yet).
    ``owed``: users a cycle cut short still owes a catch-up from their own conversation."""

    mark: Mark | None
    baseline: Baseline
    resume: Resume | None
    owed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ZnsParam:
    """One parameter of a ZNS template: what Zalo checks a value against before it sends."""

    name: str
    required: bool
    kind: str  # Zalo's validation type: STRING, NUMBER, DATE, ...
    max_length: int | None
    min_length: int = 0
    accept_null: bool = False


@dataclass(frozen=True)
class ZnsTemplate:
    """A Zalo Notification Service template of the OA's: listed (``template/all``) or in detail
    (``template/info/v2``, which adds its parameters, tag, price and preview)."""

    template_id: str
    name: str
    status: str  # ENABLE, PENDING_REVIEW, REJECT, DISABLE, DELETE
    quality: str = ""  # HIGH, MEDIUM, LOW, UNDEFINED ("" when Zalo gives none)
    tag: str = ""  # TRANSACTION, CUSTOMER_CARE, PROMOTION ...
    price: str = ""  # Zalo's unit price, as it writes it
    preview_url: str = ""
    params: tuple[ZnsParam, ...] = ()
    detailed: bool = False  # whether params were read (a listing has none)

    @property
    def approved(self) -> bool:
        return self.status == "ENABLE"


@dataclass(frozen=True)
class ZnsQuota:
    """The OA's ZNS sends for the day (``message/quota``, or a send's answer); None where Zalo gave none."""

    daily: int | None
    remaining: int | None


@dataclass(frozen=True)
class ZnsSent:
    """What ZNS answered a template send: its message id, when, and the OA's ZNS quota after it."""

    message_id: str
    sent_ms: int | None
    quota: ZnsQuota | None


@dataclass(frozen=True)
class ZnsRating:
    """A customer's answer to a rating template (``rating/get``): stars, the feedback they ticked, their
    note, and the ``tracking_id`` the send was given (how it finds its conversation, however late)."""

    message_id: str
    tracking_id: str
    stars: int
    feedbacks: tuple[str, ...]
    note: str
    submitted_ms: int


VIETNAM_OFFSET = 7 * 3600.0  # Zalo's days (its quotas, its counts) are Vietnam's: UTC+7, no daylight saving


def vietnam_day_start(at: float) -> float:
    """When the Vietnamese day of ``at`` (epoch seconds) began."""
    return (at + VIETNAM_OFFSET) // 86_400 * 86_400 - VIETNAM_OFFSET


def vietnam_day(at: float) -> str:
    """The Vietnamese day of ``at`` (epoch seconds), as YYYY-MM-DD."""
    return time.strftime("%Y-%m-%d", time.gmtime(at + VIETNAM_OFFSET))
