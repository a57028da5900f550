"""`zfsync run`: wire the clients, the store and the sync engine into loops and APScheduler jobs.

Two poll loops (Zalo, FreshChat), the profile refresh, and the two delivery lanes run in threads of their
own, so a slow download never holds back reading either side nor another customer's delivery. A loop
sleeps until its work is due (the Zalo interval, the next FreshChat conversation, the next due row) or
until it is woken: a poll that queued rows wakes the lanes and the FreshChat poll at once. Interval jobs
would instead tick (and warn, when a run outlasts its interval) whether or not anything waits. A heartbeat
job records liveness for `zfsync status` and feeds the systemd watchdog only while both poll loops are
making progress, so a silent stall gets the service restarted; a delivery in progress never counts.

On a PostgreSQL store several daemons may run, one per machine: each first stands by until it holds the
store's lease (an advisory lock, `zfsync.store.lease`), and the one that holds it is the only one that
polls and sends. A holder that can no longer confirm its lease exits at once, before a standby may start.

APScheduler plans on the wall clock: a clock guard thread (on the monotonic clock) notices a step of it
and runs every job again at once, and persisted polls and retries are brought back within reach.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import structlog
from apscheduler.schedulers.background import BackgroundScheduler

from zfsync import app, http, metrics
from zfsync.config import Settings
from zfsync.domain import SideHealth
from zfsync.errors import Stopping, ZfsyncError, first_line
from zfsync.status import ACTIVE_KEY, HEARTBEAT_KEY, QUOTA_KEY, SLOW_KEY, STANDBY_PREFIX, STARTS_KEY
from zfsync.store import Store
from zfsync.store.lease import CHECK_EVERY, STALE, TAKEOVER_GRACE, Lease
from zfsync.sync.engine import CycleResult, Engine
from zfsync.sync.lanes import RECHECK, SLOW
from zfsync.systemd import Notifier, watchdog_interval

log = structlog.get_logger("zfsync.daemon")

FRESHCHAT_RETRY = 0.5  # seconds before a FreshChat poll that left conversations due (no room) tries again
PROFILE_EVERY = 60.0  # seconds between two profile refresh runs (each checks a few day-old profiles)
STOP_GRACE = 20.0  # seconds a stopping daemon waits for sends in flight (a send cut off is reconciled later)
CLOCK_STEP = 5.0  # seconds the wall clock may drift from the monotonic one between two looks
STALL_FACTOR = 5  # a loop silent for this many of its intervals (at least a minute) is stalled
STANDBY_RETRY = 2.0  # seconds between a standby's attempts to take the lease
STANDBY_BEAT = 10.0  # seconds between a standby's notes in the store, for `zfsync status`
LOST_LEAD = 75  # exit status of a daemon that lost its lease (EX_TEMPFAIL): systemd starts it again


@contextmanager
def only_instance(store_path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the store while the daemon runs: two daemons on one store would both
    send every message. The kernel drops the lock when the process dies, however it dies."""
    lock_path = store_path.with_name(store_path.name + ".lock")
    lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = lock_path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ZfsyncError(
                f"another zfsync daemon (pid {holder}) is running on store {store_path}: stop it first"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()


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
        self.lease = lease
        self.host = socket.gethostname()
        self.lead_ok_at = time.monotonic()
        self.lead_lost = threading.Event()
        self.reload_secrets = reload_secrets or (lambda: None)
        self.store = store
        self.engine = engine
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self.progress = {"zalo": time.monotonic(), "freshchat": time.monotonic()}
        self.zalo_interval = 0.0  # set from the engine at start: the configured one, or a quota's longer one
        self.scheduler: BackgroundScheduler | None = None
        self.last_status = ""
        self.loops: dict[str, Loop] = {}
        self._noted: dict[str, str] = {}  # state rows as last written
        self.lane_threads: list[threading.Thread] = []

    def _zalo_step(self) -> float:
        started = time.monotonic()
        self._run_cycle("zalo", self.engine.poll_zalo)
        self._pace_zalo()
        return self.zalo_interval - (time.monotonic() - started)

    def _freshchat_step(self) -> float:
        self._run_cycle("freshchat", self.engine.poll_freshchat)
        wait = self.engine.freshchat_wait()
        # Still due right after a poll: the budget had no room for it; try again shortly, never spin.
        return wait if wait > 0 else FRESHCHAT_RETRY

    def _profiles_step(self) -> float:
        try:
            self.engine.refresh_profiles()
        except Exception:
            log.exception("profile_refresh_crashed")
        return PROFILE_EVERY

    def _run_cycle(self, loop: str, cycle: Callable[[], CycleResult]) -> None:
        """A cycle that finishes is progress, even when an API said no: the failure was classified and
        recorded for `zfsync status`, and a restart would not fix it. A cycle that hangs, or dies of an
        error nobody classified (a bug, a broken disk), is not, and the watchdog restarts the service."""
        try:
            cycle()
        except Stopping:
            log.info("cycle_stopped", loop=loop)
            return
        except Exception:
            log.exception("cycle_crashed", loop=loop)
            return
        self.progress[loop] = time.monotonic()

    def _start_metrics(self, scheduler: BackgroundScheduler) -> None:
        settings = self.settings.metrics
        if not settings.textfile and not settings.listen:
            return
        reg = metrics.registry(self.store, zalo_interval=self.settings.zalo.poll_interval)
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
        self.store.set_state(HEARTBEAT_KEY, f"{time.time():.3f}")
        if self.scheduler is not None:
            self._note(QUOTA_KEY, json.dumps(self.engine.quotas()))
            self._note_slow()
        health = self.store.health()
        if health.get("freshchat", {}).get("state") == SideHealth.BAD_CREDENTIALS:
            self.reload_secrets()
        if self.healthy():
            self.notifier.watchdog()
        else:
            log.warning(
                "daemon_stalled",
                seconds_since_progress={k: round(time.monotonic() - v, 1) for k, v in self.progress.items()},
            )
        status = self._status_line(health)
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

    # --- the lead, on a store several daemons share ---------------------------------------------------

    def _stand_by(self, lease: Lease) -> bool:
        """Wait until this daemon holds the lease; False if it was stopped first."""
        identity = f"zfsync {self.host} {os.getpid()}"
        standby_key = STANDBY_PREFIX + self.host
        shown = ""
        noted_at = -STANDBY_BEAT
        while not self.stop_event.is_set():
            if lease.try_acquire(identity):
                self.store.delete_state(standby_key)
                return True
            active = _host_of(lease.holder())
            line = f"standby, active is {active}"
            if line != shown:
                log.info("daemon_standby", active=active)
                self.notifier.ready(line) if not shown else self.notifier.status(line)
                shown = line
            if time.monotonic() - noted_at >= STANDBY_BEAT:
                try:
                    self.store.set_state(standby_key, json.dumps({"at": time.time(), "active": active}))
                except Exception as exc:  # the database away: keep standing by, the lease tells when it is back
                    log.warning("standby_note_failed", error=first_line(exc))
                noted_at = time.monotonic()
            self.notifier.watchdog()
            self.stop_event.wait(STANDBY_RETRY)
        self.store.delete_state(standby_key)
        return False

    def _take_lead(self, lease: Lease) -> None:
        """Fence off any former holder, wait until it has surely stopped, and watch the lease from now on."""
        self.store.take_lead(f"{self.host} {os.getpid()} {uuid.uuid4().hex}")
        self.lead_ok_at = time.monotonic()
        threading.Thread(target=self._watch_lease, args=(lease,), name="lease", daemon=True).start()
        log.info("lead_taken", grace=TAKEOVER_GRACE)
        self.notifier.status("taking over")
        self.stop_event.wait(TAKEOVER_GRACE)
        self.store.set_state(ACTIVE_KEY, json.dumps({"host": self.host, "pid": os.getpid(), "since": time.time()}))

    def _watch_lease(self, lease: Lease) -> None:
        while not self.stop_event.wait(CHECK_EVERY):
            if lease.held():
                self.lead_ok_at = time.monotonic()
            else:
                self.lead_lost.set()
                return

    def _lead_sure(self) -> bool:
        return not self.lead_lost.is_set() and time.monotonic() - self.lead_ok_at < STALE

    def _give_up_lead(self) -> None:
        """Stop sending at once: a standby may take over as soon as this lease's time is up, and a send
        still in flight here could double one of its own. The process ends; systemd starts it again, as a
        standby. A send cut off here is found by the next holder's reconcile, as after a crash."""
        log.error("lead_lost", seconds_since_confirmed=round(time.monotonic() - self.lead_ok_at, 1))
        sys.stderr.flush()
        os._exit(LOST_LEAD)

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then finish in-flight work and return."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        log.info("daemon_starting", store=self.store.where)
        if self.lease is not None:
            if not self._stand_by(self.lease):
                return
            self._take_lead(self.lease)
            if self.stop_event.is_set():
                self.lease.release()
                return
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
            )
        }
        self.engine.on_activity = self.loops["freshchat"].wake  # a customer who wrote is polled for an answer now
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
        self.notifier.ready(self._status_line())
        log.info("daemon_ready", zalo_interval=self.zalo_interval, heartbeat=beat)
        # The signal handler sets the event; a daemon without a lease to watch has nothing else to do here.
        while not self.stop_event.wait(0.25 if self.lease is not None else None):
            if self.lease is not None and not self._lead_sure():
                self._give_up_lead()
        log.info("daemon_stopping")
        self.notifier.stopping()
        self._stop_work()
        scheduler.shutdown(wait=True)
        self.store.set_state(HEARTBEAT_KEY, "stopped")
        self.store.delete_state(SLOW_KEY)
        if self.lease is not None:
            self.lease.release()  # after the last write: a standby takes over from here
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


def _host_of(identity: str | None) -> str:
    """The host in a lease holder's identity ("zfsync HOST PID")."""
    parts = (identity or "").split()
    return parts[1] if len(parts) == 3 and parts[0] == "zfsync" else "unknown"
