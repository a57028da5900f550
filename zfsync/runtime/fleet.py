"""`zfsync run` on a fleet's config: serve the tenants this daemon holds, each as a `Desk` of its own.

Every `RENEW_EVERY` seconds the daemon notes itself alive, renews its leases, lets go of paused tenants
and of those beyond its share (the active tenants over the live daemons), and claims free ones up to its
share (`zfsync.store.fleet`). A tenant taken is fenced first (`Store.take_lead`: a former owner's claims
fail from then on) and reconciled as after a crash. A daemon that cannot renew for `OWNER_STALE` seconds
exits before any other may take its tenants, as the single-OA lead does; systemd starts it again.

Desks of one Zalo app share one request budget (`Quota`), of which this daemon takes its part: what its
own feeds need at the intervals all the app's feeds allow together (each daemon notes its feeds beside its
heartbeat), plus an even part of what is left for sends (`daemon_ceiling`). A quiet feed is polled less
often (`Pace`). A tenant's config or secrets that cannot be used (a key that does not open
them) keep its lease and are tried again each minute, with one log line each time: another daemon would
fare no better.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from zfsync import i18n
from zfsync.config.fleet import FleetSettings, tenant_settings
from zfsync.domain.errors import ZfsyncError, first_line
from zfsync.runtime.app import build_clients, build_engine
from zfsync.runtime.daemon import STOP_GRACE, lane_crash_handler
from zfsync.runtime.desk import Background, Desk
from zfsync.runtime.leader import LOST_LEAD
from zfsync.runtime.metrics import FleetCollector, ProcessCollector, StoreCollector
from zfsync.runtime.report import publish
from zfsync.runtime.status import HEARTBEAT_KEY, SLOW_KEY
from zfsync.runtime.steps import Pace, Steps
from zfsync.runtime.systemd import Notifier, watchdog_interval
from zfsync.sides import http
from zfsync.sides.quota import Quota
from zfsync.store import Store
from zfsync.store.fleet import OWNER_STALE, RENEW_EVERY, TenantRecord
from zfsync.store.health import StoreWatch
from zfsync.sync.decide.schedule import daemon_ceiling, shared_feed_intervals
from zfsync.sync.write.lanes import Slots

log = structlog.get_logger("zfsync.fleet")

CLAIM_BATCH = 25  # tenants taken in one round at most: each is a desk to build and reconcile
BROKEN_RETRY = 60.0  # seconds before a tenant whose desk could not be built is tried again
FAST = 2.0  # seconds: the poll interval a daemon's part of an app's budget is reckoned at (zalo.poll_interval)
OWNER_KEY = "fleet.owner"  # in each tenant's state: which daemon serves it, for `zfsync status`


@dataclass
class Held:
    record: TenantRecord
    desk: Desk | None  # None: its config or secrets could not be used (`broken`)
    broken: str = ""
    retry_at: float = 0.0


class Fleet:
    def __init__(self, fleet: FleetSettings, store: Store, notifier: Notifier | None = None):
        self.fleet = fleet
        self.store = store
        self.notifier = notifier or Notifier()
        self.member = fleet.daemon_name or f"{socket.gethostname()} {os.getpid()}"
        self.held: dict[int, Held] = {}
        self.quotas: dict[str, Quota] = {}  # per Zalo app id
        self.members = 1
        self.app_feeds: dict[str, tuple[int, int]] = {}  # each Zalo app's feeds (active, quiet) on every daemon
        self.confirmed_at = time.monotonic()
        self.stop_event = threading.Event()
        self.background = Background(self.stop_event)  # every desk's profile and history steps, in turn
        self.slots = Slots(fleet.sends_in_flight)  # every desk's sends in flight, bounded
        self.watch = StoreWatch(None)

    # --- the leases ------------------------------------------------------------------------------------

    def round(self) -> None:
        """One look at the fleet: renew, let go, claim (`RENEW_EVERY`)."""
        asked_at = time.monotonic()
        self.members = self.store.beat(self.member, len(self.held), feeds_of(list(self.held.values())))
        self.app_feeds = self.store.fleet_feeds()
        _, still = self.store.renew_leases(self.member)
        self.confirmed_at = asked_at
        now_held = {r.id: r for r in still}
        lost = [tid for tid in self.held if tid not in now_held]
        if lost:
            # Another daemon may have them now: stop sending at once, as a single-OA daemon that lost its lead.
            log.error("leases_lost", tenants=[self.held[t].record.name for t in lost])
            sys.stderr.flush()
            os._exit(LOST_LEAD)
        for tid, record in now_held.items():
            if record.paused:
                self.let_go(tid, "paused")
            elif tid in self.held:
                self.held[tid].record = record
            else:
                self.take(record)  # claimed in a round that failed before it was taken up
        share = self.store.share(self.members)
        for tid in sorted(self.held, reverse=True)[: max(0, len(self.held) - share)]:
            self.let_go(tid, "balancing")
        for record in self.store.claim_tenants(self.member, min(CLAIM_BATCH, share - len(self.held))):
            self.take(record)
            self.keep_leases()
        mine = feeds_of(list(self.held.values()))
        for app_id, quota in self.quotas.items():
            quota.ceiling = daemon_ceiling(
                app_limit(self.fleet.zalo_requests_per_minute, quota),
                self.members,
                self.app_feeds.get(app_id, mine.get(app_id, (0, 0))),
                mine.get(app_id, (0, 0)),
                FAST,
                self.fleet.quiet_interval,
            )
        for tid, held in list(self.held.items()):
            if held.desk is None and time.monotonic() >= held.retry_at:
                self.held.pop(tid)
                self.take(held.record)
                self.keep_leases()

    def keep_leases(self) -> None:
        """Renew in the middle of a long round (many tenants taken at a start): a round may not outlast
        the leases it holds."""
        if time.monotonic() - self.confirmed_at >= RENEW_EVERY:
            asked_at = time.monotonic()
            self.store.renew_leases(self.member)
            self.confirmed_at = asked_at

    def take(self, record: TenantRecord) -> None:
        store = self.store.for_tenant(record.id)
        store.take_lead(f"{self.member} {record.fence}")
        try:
            desk = self.desk_for(record, store)
            desk.prepare(note_start=False)  # taking a tenant over is no crash: no crash-loop alarm
        except Exception as exc:
            reason = first_line(exc)
            if isinstance(exc, ZfsyncError):
                log.error("tenant_unusable", tenant=record.name, error=reason, retry_in=BROKEN_RETRY)
            else:  # a bug, or the store failing: said in full, and tried again like an unusable tenant
                log.exception("tenant_start_crashed", tenant=record.name, retry_in=BROKEN_RETRY)
            self.held[record.id] = Held(record, None, reason, time.monotonic() + BROKEN_RETRY)
            return
        store.set_state(OWNER_KEY, json.dumps({"owner": self.member, "since": time.time()}))
        desk.start(first_polls_done=False, background=False)
        self.background.add(desk)
        desk.report.heartbeat()  # `zfsync status` sees it served from now, not from the next beat
        self.held[record.id] = Held(record, desk)
        log.info("tenant_taken", tenant=record.name, fence=record.fence)

    def desk_for(self, record: TenantRecord, store: Store) -> Desk:
        settings = tenant_settings(
            self.fleet, record.name, record.id, record.config, self.store.tenant_secrets(record.id)
        )
        app_id = settings.zalo.app_id
        quota = self.quotas.get(app_id)
        if quota is None:
            share = max(1, self.fleet.zalo_requests_per_minute // max(1, self.members))
            quota = self.quotas[app_id] = Quota("zalo", share, time.monotonic, time.time, minute_windows=True)
        clients = build_clients(settings, store, time.time, monotonic=time.monotonic, zalo_quota=quota)
        engine = build_engine(
            settings,
            store,
            clients.zalo,
            clients.freshchat,
            time.time,
            time.monotonic,
            on_lane_crash=lane_crash_handler(self.watch),
            slots=self.slots,
        )
        configured = settings.zalo.poll_interval
        pace = Pace(lambda: self.feed_intervals(app_id, configured), self.fleet.quiet_after)
        steps = Steps(settings, store, engine, self.watch, pace)
        return Desk(settings, store, engine, self.watch, steps=steps)

    def feed_intervals(self, app_id: str, configured: float) -> tuple[float, float]:
        """How often the active and quiet feeds of ``app_id`` are polled: the same on every daemon, from
        the feeds all of them noted (this daemon's part of the budget follows, `daemon_ceiling`)."""
        counts = self.app_feeds.get(app_id) or feeds_of(list(self.held.values())).get(app_id, (1, 0))
        limit = app_limit(self.fleet.zalo_requests_per_minute, self.quotas.get(app_id))
        return shared_feed_intervals(limit, configured, *counts, self.fleet.quiet_interval)

    def let_go(self, tenant_id: int, why: str) -> None:
        held = self.held.pop(tenant_id, None)
        if held is None:
            return
        if held.desk is not None:
            self.background.remove(held.desk)
            cut = held.desk.stop(time.monotonic() + STOP_GRACE, stop_quotas=False)
            if cut:
                log.warning("deliveries_cut_off", tenant=held.record.name, rows=cut)
            held.desk.store.set_state(HEARTBEAT_KEY, "stopped")
        self.store.release_tenant(self.member, tenant_id)  # after its last write: another daemon may take it
        log.info("tenant_let_go", tenant=held.record.name, why=why)

    # --- the daemon ------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        for held in list(self.held.values()):
            if held.desk is not None:
                try:
                    held.desk.report.heartbeat()
                except Exception as exc:
                    log.warning("heartbeat_failed", tenant=held.record.name, error=first_line(exc))
        if time.monotonic() - self.confirmed_at < OWNER_STALE:
            self.notifier.watchdog()
        counts = Counter("broken" if h.desk is None else "serving" for h in self.held.values())
        self.notifier.status(f"{counts['serving']} tenants served, {counts['broken']} unusable; {self.members} daemons")

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        i18n.use(i18n.DEFAULT)
        log.info("fleet_starting", store=self.store.where, member=self.member)
        scheduler = BackgroundScheduler(job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None})
        beat = min(10.0, watchdog_interval() or 10.0)
        scheduler.add_job(self.heartbeat, "interval", seconds=beat, id="heartbeat")
        self.background.thread.start()
        self.round()
        if self.fleet.metrics.textfile or self.fleet.metrics.listen:
            reg = registry(lambda: list(self.held.values()), self.fleet.metrics_tenants)
            publish(self.fleet.metrics, reg, scheduler)
        scheduler.start()
        self.notifier.ready(f"{len(self.held)} tenants served")
        log.info("fleet_ready", tenants=len(self.held), members=self.members)
        while not self.stop_event.wait(RENEW_EVERY):
            try:
                self.round()
            except Exception as exc:
                log.warning("fleet_round_failed", error=first_line(exc))
            if time.monotonic() - self.confirmed_at >= OWNER_STALE:
                log.error("leases_unconfirmed", seconds=round(time.monotonic() - self.confirmed_at, 1))
                sys.stderr.flush()
                os._exit(LOST_LEAD)
        log.info("fleet_stopping")
        self.notifier.stopping()
        self.stop()
        scheduler.shutdown(wait=True)
        log.info("fleet_stopped")

    def stop(self) -> None:
        for quota in self.quotas.values():
            quota.stop()
        http.stop_transfers()
        give_up_at = time.monotonic() + STOP_GRACE
        for held in self.held.values():
            if held.desk is not None:
                held.desk.stop_event.set()  # every desk stops at once; then each is waited for
        for tid in list(self.held):
            held = self.held.pop(tid)
            if held.desk is not None:
                cut = held.desk.stop(give_up_at, stop_quotas=True)
                if cut:
                    log.warning("deliveries_cut_off", tenant=held.record.name, rows=cut)
                held.desk.store.set_state(HEARTBEAT_KEY, "stopped")
                held.desk.store.delete_state(SLOW_KEY)
            self.store.release_tenant(self.member, tid)
        self.store.leave(self.member)


def registry(held: Callable[[], list[Held]], labelled: int) -> CollectorRegistry:
    """Each served tenant's metrics with a ``tenant`` label, and this process's API counters."""

    def desks() -> list[tuple[str, StoreCollector]]:
        return [
            (
                h.record.name,
                StoreCollector(
                    h.desk.store,
                    zalo_interval=h.desk.settings.zalo.poll_interval,
                    unanswered_minutes=h.desk.settings.sync.unanswered_minutes,
                ),
            )
            for h in held()
            if h.desk is not None
        ]

    reg = CollectorRegistry(auto_describe=False)
    reg.register(FleetCollector(desks, lambda: sum(1 for h in held() if h.desk is None), labelled))
    reg.register(ProcessCollector())
    return reg


def app_limit(configured: int, quota: Quota | None) -> int:
    """An app's requests a minute: as configured, or lower once Zalo's headers said so (an app registered
    on a smaller package, or shared with a system outside this fleet)."""
    learned = quota.learned_limit if quota is not None else None
    return min(configured, learned or configured)


def feeds_of(held: list[Held]) -> dict[str, tuple[int, int]]:
    """The feeds of each Zalo app among ``held``: (active, quiet)."""
    counts: dict[str, tuple[int, int]] = {}
    for h in held:
        if h.desk is not None:
            active, quiet = counts.get(h.desk.settings.zalo.app_id, (0, 0))
            is_quiet = h.desk.steps.quiet()
            counts[h.desk.settings.zalo.app_id] = (active + (not is_quiet), quiet + is_quiet)
    return counts
