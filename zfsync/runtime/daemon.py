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

import functools
import gc
import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from zfsync.config import Settings
from zfsync.domain import SideHealth
from zfsync.errors import Stopping
from zfsync.runtime import app, metrics
from zfsync.runtime.leader import Lead
from zfsync.runtime.status import HEARTBEAT_KEY, PROBE_KEY, QUOTA_KEY, SLOW_KEY, STARTS_KEY
from zfsync.runtime.systemd import Notifier, watchdog_interval
from zfsync.sides import http
from zfsync.store import Store
from zfsync.store.health import Beacon, StoreWatch, is_failure
from zfsync.store.lease import Lease
from zfsync.sync.engine import CycleResult, Engine
from zfsync.sync.write.lanes import CRASH_PAUSE, RECHECK, SLOW

log = structlog.get_logger("zfsync.daemon")

FRESHCHAT_RETRY = 0.5  # seconds before a FreshChat poll that left conversations due (no room) tries again
PROFILE_EVERY = 60.0  # seconds between two profile refresh runs (each checks a few day-old profiles)
STOP_GRACE = 20.0  # seconds a stopping daemon waits for sends in flight (a send cut off is reconciled later)
CLOCK_STEP = 5.0  # seconds the wall clock may drift from the monotonic one between two looks
STALL_FACTOR = 5  # a loop silent for this many of its intervals (at least a minute) is stalled
STORE_RETRY = 5.0  # seconds between two tries of a store that refused a write
HISTORY_LOOK = 15.0  # seconds between two looks for a history import asked for (`zfsync import-history`)
HISTORY_RETRY = 10.0  # seconds before a history step that got nowhere tries again


class Loop:
    """One piece of recurring work in a thread of its own: ``step`` runs, returns how many seconds to sleep,
    and the loop sleeps that long or until `wake` is called."""

    def __init__(self, name: str, step: Callable[[], float], stop: threading.Event, first_in: float = 0.0):
        self.name = name
        self.step = step
        self.stop = stop
        self.first_in = first_in
        self._woken = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def wake(self) -> None:
        self._woken.set()

    def _run(self) -> None:
        self._woken.wait(self.first_in)
        while not self.stop.is_set():
            self._woken.clear()
            try:
                delay = self.step()
            except Exception:  # the step logs its own failures; this is the last line
                log.exception("loop_crashed", loop=self.name)
                delay = FRESHCHAT_RETRY * 10
            self._woken.wait(max(0.0, delay))


class Daemon:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: Engine,
        notifier: Notifier | None = None,
        reload_secrets: Callable[[], None] | None = None,
        lease: Lease | None = None,
    ):
        self.settings = settings
        self.reload_secrets = reload_secrets or (lambda: None)
        self.store = store
        self.engine = engine
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.lead = Lead(lease, store, self.notifier, self.stop_event) if lease is not None else None
        sqlite_file = settings.store_path if settings is not None and not settings.store_url else None
        self.store_watch = StoreWatch(Beacon(sqlite_file) if sqlite_file else None)
        self.progress = {"zalo": time.monotonic(), "freshchat": time.monotonic()}
        self.zalo_interval = 0.0  # set from the engine at start: the configured one, or a quota's longer one
        self.scheduler: BackgroundScheduler | None = None
        self.last_status = ""
        self.loops: dict[str, Loop] = {}
        self._noted: dict[str, str] = {}  # state rows as last written
        self.lane_threads: list[threading.Thread] = []

    def _zalo_step(self) -> float:
        if not self._store_takes_writes("zalo"):
            return STORE_RETRY
        started = time.monotonic()
        self._run_cycle("zalo", self.engine.poll_zalo)
        self._pace_zalo()
        return self.zalo_interval - (time.monotonic() - started)

    def _freshchat_step(self) -> float:
        if not self._store_takes_writes("freshchat"):
            return STORE_RETRY
        self._run_cycle("freshchat", self.engine.poll_freshchat)
        wait = self.engine.freshchat_wait()
        # Still due right after a poll: the budget had no room for it; try again shortly, never spin.
        return wait if wait > 0 else FRESHCHAT_RETRY

    def _profiles_step(self) -> float:
        try:
            self.engine.refresh_profiles()  # and the clocks' reminders
            self.engine.ask_assignees()
        except Exception:
            log.exception("profile_refresh_crashed")
        return PROFILE_EVERY

    def _history_step(self) -> float:
        if not self._store_takes_writes("history"):
            return STORE_RETRY
        before = self.engine.history_state()
        try:
            self.engine.import_history()
        except Stopping:
            return 0.0
        after = self.engine.history_state()
        if after is None:
            return HISTORY_LOOK
        # Reading on at once while it gets somewhere (each read waits for room at the lowest priority);
        # a step that got nowhere (Zalo refused or is left alone, no baseline yet) is tried again later.
        return 0.0 if after != before else HISTORY_RETRY

    def _run_cycle(self, loop: str, cycle: Callable[[], CycleResult]) -> None:
        """A cycle that finishes is progress, even when an API said no: the failure was classified and
        recorded for `zfsync status`, and a restart would not fix it; so is one the store refused (the
        loop runs on, and a restart would not free the disk). A cycle that hangs, or dies of an error
        nobody classified (a bug), is not, and the watchdog restarts the service."""
        try:
            cycle()
        except Stopping:
            log.info("cycle_stopped", loop=loop)
            return
        except Exception as exc:
            if not is_failure(exc):
                log.exception("cycle_crashed", loop=loop)
                return
            self.store_watch.failed(exc, loop)
        self.progress[loop] = time.monotonic()

    def _store_takes_writes(self, loop: str) -> bool:
        """While the store refuses writes, a poll would read what it cannot record: try one small write
        first, and poll only once it goes through. The loop is alive either way."""
        if not self.store_watch.down:
            return True
        try:
            self.store.set_state(PROBE_KEY, f"{time.time():.3f}")
        except Exception as exc:
            if not is_failure(exc):
                raise
            self.store_watch.failed(exc, loop)
            self.progress[loop] = time.monotonic()
            return False
        self.store_watch.worked()
        return True

    def _lane_crashed(self, direction: str, exc: Exception) -> float:
        """A send that died of an error nobody classified: the store's (said once a minute), or a bug."""
        if is_failure(exc):
            self.store_watch.failed(exc, f"deliver-{direction}")
            return STORE_RETRY
        log.error("delivery_crashed", direction=direction, exc_info=exc)
        return CRASH_PAUSE

    def _start_metrics(self, scheduler: BackgroundScheduler) -> None:
        settings = self.settings.metrics
        if not settings.textfile and not settings.listen:
            return
        reg = metrics.registry(
            self.store,
            zalo_interval=self.settings.zalo.poll_interval,
            unanswered_minutes=self.settings.sync.unanswered_minutes,
        )
        if settings.listen:
            metrics.serve(settings.listen, reg)
            log.info("metrics_listening", listen=settings.listen)
        if settings.textfile:
            textfile = settings.textfile

            def write() -> None:
                try:
                    metrics.write_textfile(textfile, reg)
                except OSError as exc:
                    log.warning("metrics_not_written", path=str(textfile), error=str(exc))

            write()
            scheduler.add_job(write, "interval", seconds=settings.interval, id="metrics")

    def _guard_clock(self, scheduler: BackgroundScheduler) -> None:
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
            self._wake_all()
            for job in scheduler.get_jobs():
                job.modify(next_run_time=datetime.now(scheduler.timezone))

    def _wake_all(self) -> None:
        for loop in self.loops.values():
            loop.wake()
        for lane in self.engine.lanes.values():
            lane.wake()

    def healthy(self) -> bool:
        now = time.monotonic()
        limits = {
            "zalo": max(60.0, STALL_FACTOR * (self.zalo_interval or self.settings.zalo.poll_interval)),
            "freshchat": max(60.0, STALL_FACTOR * RECHECK),
        }
        return all(now - self.progress[loop] < limit for loop, limit in limits.items())

    def _pace_zalo(self) -> None:
        """Poll Zalo as often as its quota carries (the limit may have been learned from its headers)."""
        interval = self.engine.zalo_interval()
        if interval != self.zalo_interval:
            log.warning(
                "zalo_poll_interval_changed",
                seconds=interval,
                configured=self.settings.zalo.poll_interval,
                quota_per_minute=self.engine.zalo.quota.limit,
            )
            self.zalo_interval = interval

    def heartbeat(self) -> None:
        health: dict = {}
        try:
            self.store.set_state(HEARTBEAT_KEY, f"{time.time():.3f}")
            self.store_watch.worked()
            if self.scheduler is not None:
                self._note(QUOTA_KEY, json.dumps(self.engine.quotas()))
                self._note_slow()
            health = self.store.health()
        except Exception as exc:
            if not is_failure(exc):
                raise
            self.store_watch.failed(exc, "heartbeat")
        if health.get("freshchat", {}).get("state") == SideHealth.BAD_CREDENTIALS:
            self.reload_secrets()
        if self.healthy():
            self.notifier.watchdog()
        else:
            log.warning(
                "daemon_stalled",
                seconds_since_progress={k: round(time.monotonic() - v, 1) for k, v in self.progress.items()},
            )
        status = self._status_line(health) if health else "store refuses writes"
        if status != self.last_status:
            self.notifier.status(status)
            self.last_status = status

    def _note_slow(self) -> None:
        """Deliveries in flight for over a minute, for `zfsync status` and the metrics (not a fault: a
        large attachment on a slow link takes that long)."""
        now = time.monotonic()
        slow = []
        for direction, lane in self.engine.lanes.items():
            for flight in lane.flights():
                if now - flight.started >= SLOW:
                    contact = self.store.contact_by_id(flight.contact_id)
                    slow.append(
                        {
                            "direction": direction,
                            "row": flight.row_id,
                            "kind": flight.kind,
                            "customer": contact.display_name or contact.zalo_user_id,
                            "seconds": round(now - flight.started),
                        }
                    )
        self._note(SLOW_KEY, json.dumps(slow, ensure_ascii=False))

    def _note(self, key: str, value: str) -> None:
        """Write a state row for `zfsync status` when it changed: an idle daemon writes little."""
        if self._noted.get(key) != value:
            self.store.set_state(key, value)
            self._noted[key] = value

    def _status_line(self, health: dict | None = None) -> str:
        health = self.store.health() if health is None else health
        sides = ", ".join(f"{side} {health.get(side, {}).get('state', 'UNKNOWN')}" for side in ("zalo", "freshchat"))
        return f"{sides}; {self.store.conversation_count()} conversations"

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then finish in-flight work and return."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
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
        upgraded = app.upgrade_payloads(self.store)
        if upgraded:
            log.info("payloads_upgraded", rows=upgraded)
        starts = [t for t in (self.store.get_state(STARTS_KEY) or "").split(",") if t][-9:]
        self.store.set_state(STARTS_KEY, ",".join([*starts, f"{time.time():.0f}"]))
        self.engine.recover_schedule()
        # The first poll of each side runs before READY, so systemd reports "active" only once both sides
        # have been reached (or have answered with a classified error that `zfsync status` shows). No
        # delivery runs before READY: a stuck send must not keep the unit from starting.
        self.zalo_interval = self.engine.zalo_interval()
        self._run_cycle("zalo", self.engine.poll_zalo)
        self._run_cycle("freshchat", self.engine.poll_freshchat)
        self.heartbeat()
        # misfire_grace_time=None: after the clock jumps forward, a job runs late rather than not at all.
        scheduler = BackgroundScheduler(job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None})
        beat = min(10.0, watchdog_interval() or 10.0)
        scheduler.add_job(self.heartbeat, "interval", seconds=beat, id="heartbeat")
        self._start_metrics(scheduler)
        self.loops = {
            name: Loop(name, step, self.stop_event, first_in)
            for name, step, first_in in (
                ("zalo", self._zalo_step, self.zalo_interval),
                ("freshchat", self._freshchat_step, self.engine.freshchat_wait()),
                ("profiles", self._profiles_step, 0.0),
                ("history", self._history_step, 0.0),
            )
        }
        self.engine.on_activity = self.loops["freshchat"].wake  # a customer who wrote is polled for an answer now
        for direction, lane in self.engine.lanes.items():
            lane.on_crash = functools.partial(self._lane_crashed, direction)
        self.lane_threads = [
            threading.Thread(target=lane.serve, args=(self.stop_event,), name=f"lane-{direction}", daemon=True)
            for direction, lane in self.engine.lanes.items()
        ]
        scheduler.start()
        self.scheduler = scheduler
        for thread in [*(loop.thread for loop in self.loops.values()), *self.lane_threads]:
            thread.start()
        guard = threading.Thread(target=self._guard_clock, args=(scheduler,), name="clock-guard", daemon=True)
        guard.start()
        # What start-up made (modules, models, clients) lives as long as the process: the collector need
        # not walk it again at every full pass (idle, collections were about a tenth of the daemon's CPU).
        gc.freeze()
        self.notifier.ready(self._status_line())
        log.info("daemon_ready", zalo_interval=self.zalo_interval, heartbeat=beat)
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
        for side in (self.engine.zalo, self.engine.freshchat):
            side.quota.stop()  # a cycle waiting for its quota ends now, not after a minute of paced polls
        http.stop_transfers()
        self._wake_all()
        for lane in self.engine.lanes.values():
            lane.close(wait=False)
        give_up_at = time.monotonic() + STOP_GRACE
        for thread in [*(loop.thread for loop in self.loops.values()), *self.lane_threads]:
            thread.join(max(0.0, give_up_at - time.monotonic()))
        in_flight = [f.row_id for lane in self.engine.lanes.values() for f in lane.flights()]
        while in_flight and time.monotonic() < give_up_at:
            time.sleep(0.05)  # the sends in flight end soon: their transfers were told to stop
            in_flight = [f.row_id for lane in self.engine.lanes.values() for f in lane.flights()]
        if in_flight:
            log.warning("deliveries_cut_off", rows=in_flight)
