"""The composition root: the two API clients with their request budgets, and the sync engine with its
parts, built from the settings. The sync core receives ports and parts; it never builds a client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from zfsync import i18n
from zfsync.config import Settings
from zfsync.domain import Z2F, HistoryImport, ZaloContent, part_payload
from zfsync.sides.freshchat import wire
from zfsync.sides.freshchat.client import FreshChatClient
from zfsync.sides.quota import Quota
from zfsync.sides.zalo import permissions
from zfsync.sides.zalo.client import ZaloClient
from zfsync.sides.zalo.oauth import TokenKeeper, ZaloOAuth
from zfsync.sides.zalo.wire import content_of
from zfsync.store import Store
from zfsync.store.base import COPIED_PARTS
from zfsync.sync.decide.plan import AfterResolve
from zfsync.sync.decide.replies import Rules
from zfsync.sync.decide.schedule import Intervals
from zfsync.sync.desk.group_packages import GroupPackages
from zfsync.sync.desk.profiles import ProfileRefresher
from zfsync.sync.desk.ratings import Ratings
from zfsync.sync.desk.reminders import Reminders
from zfsync.sync.desk.unanswered import Unanswered
from zfsync.sync.engine import Engine, Parts
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.read import history
from zfsync.sync.read.freshchat_reader import FreshChatReader, Signatures
from zfsync.sync.read.group_reader import GroupReader
from zfsync.sync.read.zalo_reader import ZaloReader
from zfsync.sync.write.delivery import Deliverer
from zfsync.sync.write.freshchat_writer import FreshChatWriter
from zfsync.sync.write.lanes import Slots
from zfsync.sync.write.zalo_writer import ZaloRules, ZaloWriter


@dataclass
class Clients:
    zalo: ZaloClient
    freshchat: FreshChatClient
    tokens: TokenKeeper


def build_clients(
    settings: Settings,
    store: Store,
    clock: Callable[[], float] = time.time,
    zalo_session: requests.Session | None = None,
    freshchat_session: requests.Session | None = None,
    monotonic: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    zalo_quota: Quota | None = None,
) -> Clients:
    """The two API clients, each with its side's request budget; tests and benchmarks may pass sessions
    that reach the simulators in-process (and one fake clock for ``clock`` and ``monotonic``, with a
    ``sleep`` that moves it). ``zalo_quota``: the budget of the Zalo app, where a fleet's desks share it."""
    pace = monotonic or clock
    zalo_quota = zalo_quota or Quota("zalo", settings.zalo.requests_per_minute, pace, clock, sleep, minute_windows=True)
    fc_quota = Quota("freshchat", settings.freshchat.requests_per_minute, pace, clock, sleep)
    oauth = ZaloOAuth(settings.zalo.oauth_url, settings.zalo.app_id, settings.zalo.app_secret, zalo_session, zalo_quota)
    tokens = TokenKeeper(oauth, store, clock, pace)
    refused = permissions.Ledger(
        clock,
        lambda: store.get_state(permissions.STATE_KEY),
        lambda value: store.set_state(permissions.STATE_KEY, value),
        settings.zalo.app_id,
    )
    zalo = ZaloClient(settings.zalo.api_url, tokens, zalo_session, quota=zalo_quota, permissions=refused)
    zalo.zns_url = settings.zalo.zns_url
    return Clients(
        zalo=zalo,
        freshchat=FreshChatClient(
            settings.freshchat.api_url, settings.freshchat.api_key, freshchat_session, quota=fc_quota
        ),
        tokens=tokens,
    )


def build_engine(
    settings: Settings,
    store: Store,
    zalo: ZaloSide,
    freshchat: FreshChatSide,
    clock: Callable[[], float],
    monotonic: Callable[[], float] | None = None,
    on_lane_crash: Callable[[str, Exception], float] | None = None,
    lane_threads: bool = True,
    slots: Slots | None = None,
) -> Engine:
    """The engine over ``store`` and the two sides; tests pass one fake clock for both clocks, the daemon
    passes time.time and time.monotonic."""
    fc, sync = settings.freshchat, settings.sync
    i18n.use_here(sync.language)  # every note and placeholder in the desk's language (its lanes' workers too)
    reminders = Reminders(zalo, store, clock, sync.window_warning_hours, monotonic or clock)

    def first_history() -> HistoryImport | None:
        """The history import the config asks for at the very first start."""
        return history.request(sync.import_history_days, clock()) if sync.import_history_days else None

    parts = Parts(
        zalo_reader=ZaloReader(
            zalo, store, clock, settings.zalo.feed_page_cap, first_history, sync.retry_when_customer_returns
        ),
        freshchat_reader=FreshChatReader(
            freshchat,
            store,
            clock,
            Intervals(fc.hot_interval, fc.warm_interval, fc.cold_interval),
            Rules(
                sync.resolve_notice,
                sync.long_text,
                fc.forward_bot_messages,
                sync.command_prefix,
                sync.agent_signature_position,
                sync.rating_template,
            ),
            Signatures(freshchat, sync.agent_signature, clock) if sync.agent_signature else None,
        ),
        freshchat_writer=FreshChatWriter(
            freshchat,
            zalo,
            store,
            clock,
            fc.channel_id,
            sync.display_name,
            settings.routes,
            sync.agent_notes,
            AfterResolve(sync.after_resolve, sync.reopen_within_hours),
        ),
        zalo_writer=ZaloWriter(
            zalo,
            store,
            clock,
            freshchat.download,
            ZaloRules(
                sync.resolve_notice_when == "free_reply",
                sync.info_card_title,
                sync.info_card_subtitle,
                sync.info_card_image,
                sync.command_prefix,
                settings.templates,
            ),
            package_seen=reminders.sub_quota_seen,
            conversation_properties=freshchat.conversation_properties,
        ),
        deliverer=Deliverer(store, clock, sync.max_attempts),
        profiles=ProfileRefresher(
            zalo, freshchat, store, clock, sync.display_name, monotonic or clock, sync.share_contact_details
        ),
        reminders=reminders,
        unanswered=Unanswered(freshchat, store, clock, sync.unanswered_minutes, monotonic or clock),
        ratings=Ratings(
            zalo,
            freshchat,
            store,
            clock,
            next((t.template_id for t in settings.templates if t.name == sync.rating_template), ""),
            sync.rating_property,
            monotonic or clock,
        ),
        history=history.HistoryImporter(zalo, store, clock),
        groups=GroupReader(zalo, store, clock, sync.groups, sync.import_history_days),
        group_packages=GroupPackages(
            zalo,
            freshchat,
            store,
            clock,
            monotonic or clock,
            sync.groups,
            sync.group_expiry_warning_days,
            sync.group_expiry_property,
        ),
    )
    return Engine(
        store, zalo, freshchat, parts, settings.zalo.poll_interval, clock, monotonic, on_lane_crash, lane_threads, slots
    )


def upgrade_payloads(store: Store) -> int:
    """Rows queued by an earlier zfsync stored a customer's Zalo row as listed, and the parts with media
    already copied as FreshChat's JSON: store both in zfsync's words (`ZaloContent`, `part_payload`), so
    the core reads one shape and no wire JSON. Run at start; a no-op once done."""
    upgraded = 0
    for row_id, payload in store.unsent_payloads(Z2F):
        changed = dict(payload)
        if not ZaloContent.stored(payload) and "message_id" in payload:  # not a note zfsync wrote
            listed = {k: v for k, v in payload.items() if not k.startswith("_")}
            kept = {k: v for k, v in payload.items() if k.startswith("_")}
            changed = {**content_of(listed).payload(), **kept}
        copied = changed.get(COPIED_PARTS)
        if isinstance(copied, list) and any(isinstance(p, dict) and "kind" not in p for p in copied):
            changed[COPIED_PARTS] = [part_payload(wire.read_part(p)) for p in copied if isinstance(p, dict)]
        if changed != payload:
            store.set_payload(row_id, changed)
            upgraded += 1
    return upgraded
