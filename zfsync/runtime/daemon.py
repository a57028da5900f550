"""`zfsync run`: wire the clients, the store and the sync engine into loops and APScheduler jobs.

Two poll loops (Zalo, FreshChat), the profile refresh, and the two delivery lanes run in threads of their
own, so a slow download never holds back reading either side nor another customer's delivery. A loop
sleeps until its work is due (the Zalo interval, the next FreshChat conversation, the next due row) or
until it is woken: a poll that queued rows wakes the lanes and the FreshChat poll at once. Interval jobs
would instead tick (and warn, when a run outlasts its interval) whether or not anything waits. A heartbeat
job records liveness for `zfsync status` and feeds the systemd watchdog only while both poll loops are
making progress, so a silent stall gets the service restarted; a delivery in progress never counts.

On a PostgreSQL store several daemons may run, one per machine; only the one holding the lead polls and
sends (`zfsync.runtime.leader`). The store is watched as a side of its own (`zfsync.store.health`): while it refuses
writes, the polls back off (what they read could not be recorded), one line a minute says so, and
`zfsync status` learns it from the beacon file beside the store.

APScheduler plans on the wall clock: a clock guard thread (on the monotonic clock) notices a step of it
and runs every job again at once, and persisted polls and retries are brought back within reach.
"""

from __future__ import annotations

import gc
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from zfsync import i18n
from zfsync.config import Settings
from zfsync.runtime.desk import Desk
from zfsync.runtime.leader import Lead
from zfsync.runtime.report import start_metrics
from zfsync.runtime.status import HEARTBEAT_KEY, SLOW_KEY
from zfsync.runtime.steps import STORE_RETRY
from zfsync.runtime.systemd import Notifier, watchdog_interval
from zfsync.sides import http
from zfsync.store import Store, is_in_memory
from zfsync.store.health import Beacon, StoreWatch, is_failure
from zfsync.store.lease import Lease
from zfsync.sync.engine import Engine
from zfsync.sync.write.lanes import CRASH_PAUSE

log = structlog.get_logger("zfsync.daemon")

STOP_GRACE = 20.0  # seconds a stopping daemon waits for sends in flight (a send cut off is reconciled later)
CLOCK_STEP = 5.0  # seconds the wall clock may drift from the monotonic one between two looks


def watch_of(settings: Settings | None) -> StoreWatch:
    """The store's watch: a SQLite store has a beacon file beside it for `zfsync status`."""
    sqlite_file = settings.store_path if settings is not None and not settings.store_url else None
    if sqlite_file is not None and is_in_memory(sqlite_file):
        sqlite_file = None
    return StoreWatch(Beacon(sqlite_file) if sqlite_file else None)


def lane_crash_handler(watch: StoreWatch) -> Callable[[str, Exception], float]:
    """What a lane does with a send that died of an error nobody classified: the store's (said once a
    minute, and the lane rests until it may take writes again), or a bug (logged, a short rest)."""

    def crashed(direction: str, exc: Exception) -> float:
        if is_failure(exc):
            watch.failed(exc, f"deliver-{direction}")
            return STORE_RETRY
        log.error("delivery_crashed", direction=direction, exc_info=exc)
        return CRASH_PAUSE

    return crashed


class Daemon:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: Engine,
        notifier: Notifier | None = None,
        reload_secrets: Callable[[], None] | None = None,
        lease: Lease | None = None,
        store_watch: StoreWatch | None = None,
    ):
        """``store_watch``: the watch the engine's lanes report a failing store to (`lane_crash_handler`);
        one of its own, by default."""
        self.settings = settings
        self.reload_secrets = reload_secrets or (lambda: None)
        self.store = store
        self.engine = engine
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.lead = Lead(lease, store, self.notifier, self.stop_event) if lease is not None else None
        self.store_watch = store_watch or watch_of(settings)
        self.desk = Desk(settings, store, engine, self.store_watch, self.notifier, self.reload_secrets)
        self.desk.stop_event = self.stop_event  # the daemon's stop is its one desk's
        self.steps = self.desk.steps
        self.report = self.desk.report

    def guard_clock(self, scheduler: BackgroundScheduler) -> None:
        """Watch the wall clock against the monotonic one; after a step, run every job now (APScheduler
        would otherwise wait out a backward step) and bring persisted times back within reach."""
        wall, mono = time.time(), time.monotonic()
        while not self.stop_event.wait(1.0):
            step = (time.time() - wall) - (time.monotonic() - mono)
            wall, mono = time.time(), time.monotonic()
            if abs(step) < CLOCK_STEP:
                continue
            log.warning("clock_stepped", seconds=round(step, 1))
            try:
                self.engine.recover_schedule()
            except Exception:
                log.exception("schedule_recovery_failed")
            self.desk.wake_all()
            for job in scheduler.get_jobs():
                job.modify(next_run_time=datetime.now(scheduler.timezone))

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then finish in-flight work and return."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        i18n.use(self.settings.sync.language)  # every thread of a single-OA daemon speaks the desk's
        log.info("daemon_starting", store=self.store.where)
        if self.lead is not None:
            if not self.lead.stand_by():
                return
            self.lead.take()
            if self.stop_event.is_set():
                self.lead.release()
                return
        if self.store_watch.beacon is not None:
            self.store_watch.beacon.open()
        self.desk.prepare()
        # The first poll of each side runs before READY, so systemd reports "active" only once both sides
        # have been reached (or have answered with a classified error that `zfsync status` shows). No
        # delivery runs before READY: a stuck send must not keep the unit from starting.
        steps = self.steps
        steps.run_cycle("zalo", self.engine.poll_zalo)
        steps.run_cycle("freshchat", self.engine.poll_freshchat)
        self.report.heartbeat()
        # misfire_grace_time=None: after the clock jumps forward, a job runs late rather than not at all.
        scheduler = BackgroundScheduler(job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None})
        beat = min(10.0, watchdog_interval() or 10.0)
        scheduler.add_job(self.report.heartbeat, "interval", seconds=beat, id="heartbeat")
        start_metrics(self.settings, self.store, scheduler)
        scheduler.start()
        self.desk.start(first_polls_done=True)
        guard = threading.Thread(target=self.guard_clock, args=(scheduler,), name="clock-guard", daemon=True)
        guard.start()
        # What start-up made (modules, models, clients) lives as long as the process: the collector need
        # not walk it again at every full pass (idle, collections were about a tenth of the daemon's CPU).
        gc.freeze()
        self.notifier.ready(self.report.status_line())
        log.info("daemon_ready", zalo_interval=steps.zalo_interval, heartbeat=beat)
        # The signal handler sets the event; a daemon without a lease to watch has nothing else to do here.
        while not self.stop_event.wait(0.25 if self.lead is not None else None):
            if self.lead is not None and not self.lead.sure():
                self.lead.give_up()
        log.info("daemon_stopping")
        self.notifier.stopping()
        self._stop_work()
        scheduler.shutdown(wait=True)
        self.store.set_state(HEARTBEAT_KEY, "stopped")
        self.store.delete_state(SLOW_KEY)
        if self.lead is not None:
            self.lead.release()  # after the last write: a standby takes over from here
        log.info("daemon_stopped")

    def _stop_work(self) -> None:
        """End every loop: calls waiting for a quota give up, transfers stop at their next piece, and the
        sends in flight get `STOP_GRACE` seconds to finish (one cut off is reconciled at the next start)."""
        http.stop_transfers()
        in_flight = self.desk.stop(time.monotonic() + STOP_GRACE)
        if in_flight:
            log.warning("deliveries_cut_off", rows=in_flight)
