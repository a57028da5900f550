"""Keep each contact's FreshChat user in step with Zalo: their name, avatar and last seen; what they chose
to share with the OA (phone, address, city, district, date of birth); the OA's tags and notes on them;
and Zalo's two clocks (when the 7-day reply window and the free replies end).

A profile is checked through ``user/detail`` once a day per customer who wrote in the last 7 days, and
once an hour while they keep writing (the ones agents are talking to; months of past customers cost
nothing). The FreshChat user is written only when what it would show changed, and what a customer did
not share is left out, never blanked: an agent may have typed it. Checks run at most once a minute, a
few contacts at a time, after the cycle's messages are delivered: a profile call never holds a message
back, and a failed one is simply tried again later.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace

import structlog

from zfsync.domain import Contact, FcNewUser, ZaloProfile, group_id_of, reference_id
from zfsync.domain.errors import PermanentError, RemoteError, TransientError
from zfsync.sides.priority import Priority, purpose
from zfsync.sync.decide import render, zalo_clocks
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import Contacts

log = structlog.get_logger("zfsync.sync")

CHECK_EVERY = 86_400.0
CHECK_ACTIVE_EVERY = 3_600.0  # a customer who wrote since their last check: their clocks moved
RECENT = 7 * 86_400.0
RUN_EVERY = 60.0
PER_RUN = 20
# What a customer shared, as FreshChat user properties (the phone goes to the user's own phone field).
SHARED_PROPERTIES = {
    "name": "zalo_shared_name",
    "address": "zalo_address",
    "city": "zalo_city",
    "district": "zalo_district",
    "dob": "zalo_dob",
}
# FreshChat documents no length for a property's value; 255 is Freshworks' single-line text field, and keeps
# a customer with 300 tags or a page of notes from a refused update that would leave every property stale.
PROPERTY_LIMIT = 255
TAG_LIMIT = 64  # one Zalo tag, as zfsync shows it or creates it (`/zalo tag`)
# Properties zfsync alone writes: when Zalo's side empties one (the last tag removed), it is emptied too.
OWN_PROPERTIES = ("zalo_tags", "zalo_notes")
GROUP_DISPLAY_NAME = "{name} (nhóm Zalo)"  # a group chat's FreshChat user: "Khách sỉ Hà Nội (nhóm Zalo)"


def freshchat_user(
    contact: Contact,
    display_name: str,
    now: float,
    profile: ZaloProfile | None = None,
    share: bool = True,
    shown_before: Mapping[str, str] | None = None,
) -> FcNewUser:
    """The FreshChat user that stands for a Zalo contact: name, avatar and the properties agents see.
    ``profile``: what ``user/detail`` said (None: not read yet); ``share``: sync.share_contact_details;
    ``shown_before``: the properties last written, so an emptied tag list is emptied on FreshChat too."""
    last_seen_ms = max(contact.last_inbound_ms, contact.first_seen_ms) or int(now * 1000)
    if contact.is_group:
        return group_user(contact, last_seen_ms)
    name = display_name.format(name=render.one_line(contact.display_name or contact.zalo_user_id, 200))
    properties = [
        ("external_user_provider", "zalo"),
        ("zalo_user_id", contact.zalo_user_id),
        ("zalo_first_contact", zalo_clocks.iso(contact.first_seen_ms)),
        ("zalo_last_seen", zalo_clocks.iso(last_seen_ms)),
    ]
    properties += _clock_properties(contact)
    phone = ""
    if profile is not None:
        # What the customer typed on Zalo is text, not layout: one plain line each (no newline, no control or
        # direction-override character), cut to the property's room.
        shared = {k: render.one_line(v, PROPERTY_LIMIT) for k, v in profile.shared} if share else {}
        phone = shared.get("phone", "")
        properties += [(prop, shared[key]) for key, prop in SHARED_PROPERTIES.items() if shared.get(key)]
        tags = [tag for tag in (render.one_line(t, TAG_LIMIT) for t in profile.tags) if tag]
        notes = [note for note in (render.one_line(n, PROPERTY_LIMIT) for n in profile.notes) if note]
        own = {"zalo_tags": ", ".join(tags), "zalo_notes": "; ".join(notes)}
        before = shown_before or {}
        properties += [(prop, value) for prop, value in own.items() if value or before.get(prop)]
    return FcNewUser(
        reference_id=reference_id(contact.zalo_user_id),
        first_name=name,
        avatar_url=contact.avatar_url,
        properties=tuple((prop, render.cut_on_word(value, PROPERTY_LIMIT)) for prop, value in properties),
        phone=phone,
    )


def group_user(contact: Contact, last_seen_ms: int) -> FcNewUser:
    """The FreshChat user standing for a Zalo group chat: the group's name and avatar, marked as a group
    (`external_user_provider`, the group's id) so agents and FreshChat's own rules can tell it apart."""
    group_id = group_id_of(contact.zalo_user_id)
    name = GROUP_DISPLAY_NAME.format(name=render.one_line(contact.display_name or group_id, 200))
    properties = (
        ("external_user_provider", "zalo_group"),
        ("zalo_group_id", group_id),
        ("zalo_first_contact", zalo_clocks.iso(contact.first_seen_ms)),
        ("zalo_last_seen", zalo_clocks.iso(last_seen_ms)),
    )
    return FcNewUser(
        reference_id(contact.zalo_user_id), first_name=name, avatar_url=contact.avatar_url, properties=properties
    )


def _clock_properties(contact: Contact) -> list[tuple[str, str]]:
    """When the reply window and the free replies end, as an agent in Vietnam reads a time."""
    if not contact.interacted_ms:
        return []
    found = [("zalo_window_closes_at", zalo_clocks.local_iso(zalo_clocks.window_closes_ms(contact)))]
    found.append(("zalo_free_replies_until", zalo_clocks.local_iso(zalo_clocks.free_until_ms(contact))))
    if contact.free_replies_left is not None:
        found.append(("zalo_free_replies_left", str(contact.free_replies_left)))
    return found


def shown(user: FcNewUser) -> str:
    """What a FreshChat user shows, as the store keeps it: written again only when this changes."""
    return json.dumps(
        {"name": user.first_name, "avatar": user.avatar_url, "phone": user.phone, **dict(user.properties)},
        ensure_ascii=False,
        sort_keys=True,
    )


def _shown_properties(text: str) -> dict[str, str]:
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


class ProfileRefresher:
    def __init__(
        self,
        zalo: ZaloSide,
        freshchat: FreshChatSide,
        store: Contacts,
        clock: Callable[[], float],
        display_name: str,
        monotonic: Callable[[], float] | None = None,
        share_contact_details: bool = True,
    ):
        self.zalo = zalo
        self.fc = freshchat
        self.store = store
        self.clock = clock
        self.monotonic = monotonic or clock
        self.display_name = display_name
        self.share = share_contact_details
        self._last_run = float("-inf")

    def refresh_due(self, limit: int = PER_RUN) -> int:
        """Check up to ``limit`` contacts whose profile is due; returns how many FreshChat users were updated."""
        updated = 0
        now = self.clock()
        if abs(self.monotonic() - self._last_run) < RUN_EVERY:
            return 0
        self._last_run = self.monotonic()
        recent_ms = int((now - RECENT) * 1000)
        due = self.store.contacts_for_profile_check(now - CHECK_EVERY, recent_ms, limit, now - CHECK_ACTIVE_EVERY)
        for contact in due:
            if contact.fc_user_id is None:
                continue  # not asked for: only contacts with a FreshChat user are checked
            if contact.is_group:  # a group has no profile to read; its name comes with the group list
                self.store.set_profile(contact.id, contact.display_name, contact.avatar_url, now)
                continue
            # Last in line for both budgets, and never waiting: what the quotas cannot carry now waits a run.
            if not self.zalo.quota.available(Priority.PROFILE) or not self.fc.quota.available(Priority.PROFILE):
                return updated
            try:
                if self._refresh(contact, contact.fc_user_id, now):
                    updated += 1
            except TransientError as exc:
                log.info("profile_check_postponed", contact=contact.zalo_user_id, error=str(exc))
                return updated  # the side is struggling: leave the rest for a later cycle
            except PermanentError as exc:
                # A user who left or blocked the OA has no profile any more; keep what we had.
                log.info("profile_unavailable", contact=contact.zalo_user_id, error=str(exc))
                self.store.set_profile(contact.id, contact.display_name, contact.avatar_url, now)
            except RemoteError:
                raise
        return updated

    def _refresh(self, contact: Contact, fc_user_id: str, now: float) -> bool:
        with purpose(Priority.PROFILE):
            profile = self.zalo.user_profile(contact.zalo_user_id)
        if profile.last_interaction_day_ms > contact.interacted_ms:
            # An interaction on a later day than any message (a follow, a call, a menu tap): the window
            # opened again, at some time that day; its start is the safe side for the free replies.
            self.store.learn_clock(contact.id, interaction_ms=profile.last_interaction_day_ms)
            contact = replace(contact, last_interaction_ms=profile.last_interaction_day_ms)
        contact = replace(
            contact,
            display_name=profile.display_name or contact.display_name,
            avatar_url=profile.avatar or contact.avatar_url,
        )
        before = _shown_properties(contact.shown_profile)
        user = freshchat_user(contact, self.display_name, now, profile, self.share, before)
        showing = shown(user)
        changed = showing != contact.shown_profile
        if changed:
            with purpose(Priority.PROFILE):
                self.fc.update_user(fc_user_id, user)
            log.info("freshchat_user_updated", contact=contact.zalo_user_id)
        self.store.set_profile(contact.id, contact.display_name, contact.avatar_url, now, shown=showing)
        return changed
