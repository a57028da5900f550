"""Zalo's two clocks for a customer, decided with no I/O: the 7-day window in which the OA may reply at all,
and the free replies within 48 h of their last interaction (research §7). Zalo's rules move (reports from
2026 say the 48-hour replies became free without a count, `remain` fixed at "8" and then dropped from the
answer), so zfsync never decides a reply is impossible on its own count: it reads what each send answer
says it was paid from, and asks Zalo (`quota/message`) before it holds a reply back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from zfsync.domain import Contact, ZaloQuota

WINDOW_MS = 7 * 86_400_000  # the OA may reply within 7 days of the customer's last interaction
FREE_MS = 48 * 3_600_000  # the replies within 48 h of it are free (some of them, or all: Zalo decides)
QUOTA_RECHECK = 3600.0  # seconds: quota/message is asked about one customer at most once an hour
VIETNAM = timezone(timedelta(hours=7))


def window_closes_ms(contact: Contact) -> int:
    """When the OA can no longer reply (0: no interaction known)."""
    return contact.interacted_ms + WINDOW_MS if contact.interacted_ms else 0


def free_until_ms(contact: Contact) -> int:
    return contact.interacted_ms + FREE_MS if contact.interacted_ms else 0


def window_open(contact: Contact, now: float) -> bool:
    """Whether a reply can reach the customer, as far as zfsync knows (no known interaction: Zalo decides)."""
    closes = window_closes_ms(contact)
    return not closes or now * 1000 < closes


def should_ask_zalo(contact: Contact, now: float) -> bool:
    """A reply zfsync thinks is outside the window: ask Zalo's own view first (another interaction may
    have opened it), unless it was asked within the hour."""
    return now - contact.quota_checked_at >= QUOTA_RECHECK


def reply_is_free(contact: Contact, now: float) -> bool:
    """Whether a reply now would be one of the free ones: within 48 h of the last interaction, and (where
    Zalo counts them) not the ninth."""
    return now * 1000 < free_until_ms(contact) and (contact.free_replies_left is None or contact.free_replies_left > 0)


@dataclass(frozen=True)
class Learned:
    """What a send answer taught of the customer's free replies."""

    free_left: int | None  # None: Zalo gave no count
    spent: bool  # the free replies are spent: this send, or the next one, is paid


@dataclass(frozen=True)
class AskZalo:
    """The answer does not say whether the send was free: ask `quota/message` (at most hourly)."""


def after_send(quota: ZaloQuota | None, contact: Contact, now: float) -> Learned | AskZalo | None:
    """``quota``: what the answer said the send was paid from (None: the client could not tell).

    An answer with no ``quota`` is a paid message in the docs, but Zalo stops returning ``remain`` from
    2026-03-01 and does not say whether the whole object goes too: within the 48 free hours such an answer
    is not taken as paid until `quota/message` says the free replies are spent (`after_quota_check`)."""
    if quota is None:
        return None
    if quota.kind == "reply":
        return Learned(quota.remain, spent=quota.remain == 0)
    if quota.kind == "" and now * 1000 < free_until_ms(contact):
        return AskZalo() if should_ask_zalo(contact, now) else None
    return Learned(0, spent=True)  # from the package, bought, rewarded, or billed: the free ones are spent


def after_quota_check(reply: ZaloQuota | None) -> Learned:
    """What `quota/message`'s ``cs_reply`` says of the free replies (absent or uncounted: free, no count)."""
    if reply is None or reply.remain is None:
        return Learned(None, spent=False)
    return Learned(reply.remain, spent=reply.remain == 0)


def local_time(ms: int) -> str:
    """A time as an agent in Vietnam reads it: "14:05 02/12/2026"."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")


def local_iso(ms: int) -> str:
    """A time in Vietnam, machine-readable: "2026-12-09T14:05:00+07:00"."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(VIETNAM).isoformat(timespec="seconds")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
