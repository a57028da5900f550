"""Keep each contact's FreshChat user in step with their Zalo profile: name, avatar and last seen.

A profile is checked through ``user/detail`` at most once a day per contact, and only for customers who
wrote in the last 7 days (the ones agents are talking to; months of past customers cost nothing). Checks
run at most once a minute, a few contacts at a time, after the cycle's messages are delivered: a profile
call never holds a message back, and a failed one is simply tried again later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from zfsync.domain import Contact, FcNewUser, reference_id
from zfsync.errors import PermanentError, RemoteError, TransientError
from zfsync.priority import Priority, purpose
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import Contacts

log = structlog.get_logger("zfsync.sync")

CHECK_EVERY = 86_400.0
RECENT = 7 * 86_400.0
RUN_EVERY = 60.0
PER_RUN = 20


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def freshchat_user(contact: Contact, display_name: str, now: float) -> FcNewUser:
    """The FreshChat user that stands for a Zalo contact: name, avatar and the properties agents see."""
    name = display_name.format(name=(contact.display_name or contact.zalo_user_id)[:200])
    last_seen_ms = max(contact.last_inbound_ms, contact.first_seen_ms) or int(now * 1000)
    return FcNewUser(
        reference_id=reference_id(contact.zalo_user_id),
        first_name=name,
        avatar_url=contact.avatar_url,
        properties=(
            ("external_user_provider", "zalo"),
            ("zalo_user_id", contact.zalo_user_id),
            ("zalo_first_contact", _iso(contact.first_seen_ms)),
            ("zalo_last_seen", _iso(last_seen_ms)),
        ),
    )


class ProfileRefresher:
    def __init__(
        self,
        zalo: ZaloSide,
        freshchat: FreshChatSide,
        store: Contacts,
        clock: Callable[[], float],
        display_name: str,
        monotonic: Callable[[], float] | None = None,
    ):
        self.zalo = zalo
        self.fc = freshchat
        self.store = store
        self.clock = clock
        self.monotonic = monotonic or clock
        self.display_name = display_name
        self._last_run = float("-inf")

    def refresh_due(self, limit: int = PER_RUN) -> int:
        """Check up to ``limit`` contacts whose profile is a day old; returns how many were updated."""
        updated = 0
        now = self.clock()
        if abs(self.monotonic() - self._last_run) < RUN_EVERY:
            return 0
        self._last_run = self.monotonic()
        recent_ms = int((now - RECENT) * 1000)
        for contact in self.store.contacts_for_profile_check(now - CHECK_EVERY, recent_ms, limit):
            if contact.fc_user_id is None:
                continue  # not asked for: only contacts with a FreshChat user are checked
            fc_user_id = contact.fc_user_id
            # Last in line for both budgets, and never waiting: what the quotas cannot carry now waits a run.
            if not self.zalo.quota.available(Priority.PROFILE) or not self.fc.quota.available(Priority.PROFILE):
                return updated
            try:
                with purpose(Priority.PROFILE):
                    profile = self.zalo.user_profile(contact.zalo_user_id)
                name = profile.display_name or contact.display_name
                avatar = profile.avatar or contact.avatar_url
                seen_since = contact.last_inbound_ms > contact.profile_checked_at * 1000
                if name != contact.display_name or avatar != contact.avatar_url or seen_since:
                    contact = replace(contact, display_name=name, avatar_url=avatar)
                    with purpose(Priority.PROFILE):
                        self.fc.update_user(fc_user_id, freshchat_user(contact, self.display_name, now))
                    updated += 1
                    log.info("freshchat_user_updated", contact=contact.zalo_user_id)
            except TransientError as exc:
                log.info("profile_check_postponed", contact=contact.zalo_user_id, error=str(exc))
                return updated  # the side is struggling: leave the rest for a later cycle
            except PermanentError as exc:
                # A user who left or blocked the OA has no profile any more; keep what we had.
                log.info("profile_unavailable", contact=contact.zalo_user_id, error=str(exc))
            except RemoteError:
                raise
            self.store.set_profile(contact.id, contact.display_name, contact.avatar_url, now)
        return updated
