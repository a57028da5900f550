"""The lead on a PostgreSQL store several daemons share, one per machine: each first stands by until it holds
the store's lease (an advisory lock, `zfsync.store.lease`), and the one that holds it is the only one that
polls and sends. A holder that can no longer confirm its lease exits at once, before a standby may start.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid

import structlog

from zfsync.domain.errors import first_line
from zfsync.runtime.status import ACTIVE_KEY, STANDBY_PREFIX
from zfsync.runtime.systemd import Notifier
from zfsync.store import Store
from zfsync.store.lease import CHECK_EVERY, STALE, TAKEOVER_GRACE, Lease

log = structlog.get_logger("zfsync.daemon")

STANDBY_RETRY = 2.0  # seconds between a standby's attempts to take the lease
STANDBY_BEAT = 10.0  # seconds between a standby's notes in the store, for `zfsync status`
LOST_LEAD = 75  # exit status of a daemon that lost its lease (EX_TEMPFAIL): systemd starts it again


class Lead:
    def __init__(self, lease: Lease, store: Store, notifier: Notifier, stop: threading.Event):
        self.lease = lease
        self.store = store
        self.notifier = notifier
        self.stop = stop
        self.host = socket.gethostname()
        self.ok_at = time.monotonic()
        self.lost = threading.Event()

    def stand_by(self) -> bool:
        """Wait until this daemon holds the lease; False if it was stopped first."""
        identity = f"zfsync {self.host} {os.getpid()}"
        standby_key = STANDBY_PREFIX + self.host
        shown = ""
        noted_at = -STANDBY_BEAT
        while not self.stop.is_set():
            if self.lease.try_acquire(identity):
                self.store.delete_state(standby_key)
                return True
            active = host_of(self.lease.holder())
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
            self.stop.wait(STANDBY_RETRY)
        self.store.delete_state(standby_key)
        return False

    def take(self) -> None:
        """Fence off any former holder, wait until it has surely stopped, and watch the lease from now on."""
        self.store.take_lead(f"{self.host} {os.getpid()} {uuid.uuid4().hex}")
        self.ok_at = time.monotonic()
        threading.Thread(target=self._watch, name="lease", daemon=True).start()
        log.info("lead_taken", grace=TAKEOVER_GRACE)
        self.notifier.status("taking over")
        self.stop.wait(TAKEOVER_GRACE)
        self.store.set_state(ACTIVE_KEY, json.dumps({"host": self.host, "pid": os.getpid(), "since": time.time()}))

    def _watch(self) -> None:
        while not self.stop.wait(CHECK_EVERY):
            if self.lease.held():
                self.ok_at = time.monotonic()
            else:
                self.lost.set()
                return

    def sure(self) -> bool:
        return not self.lost.is_set() and time.monotonic() - self.ok_at < STALE

    def give_up(self) -> None:
        """Stop sending at once: a standby may take over as soon as this lease's time is up, and a send
        still in flight here could double one of its own. The process ends; systemd starts it again, as a
        standby. A send cut off here is found by the next holder's reconcile, as after a crash."""
        log.error("lead_lost", seconds_since_confirmed=round(time.monotonic() - self.ok_at, 1))
        sys.stderr.flush()
        os._exit(LOST_LEAD)

    def release(self) -> None:
        self.lease.release()


def host_of(identity: str | None) -> str:
    """The host in a lease holder's identity ("zfsync HOST PID")."""
    parts = (identity or "").split()
    return parts[1] if len(parts) == 3 and parts[0] == "zfsync" else "unknown"
