"""The daemon's recurring work, as steps: each runs once and returns how many seconds until it is due again;
a `Loop` runs one step after another in a thread of its own, sleeping in between or until woken. The
steps are what production runs and what tests call (tests/unit/test_daemon_loops.py).

A cycle that finishes is progress, and the heartbeat feeds the systemd watchdog only while both poll
loops make it (`Steps.healthy`); while the store refuses writes, a poll first tries one small write and
backs off (`zfsync.store.health`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from zfsync import i18n
from zfsync.config import Settings
from zfsync.domain.errors import Stopping
from zfsync.runtime.status import PROBE_KEY
from zfsync.store import Store
from zfsync.store.health import StoreWatch, is_failure
from zfsync.sync.engine import CycleResult, Engine
from zfsync.sync.write.lanes import RECHECK

log = structlog.get_logger("zfsync.daemon")

FRESHCHAT_RETRY = 0.5  # seconds before a FreshChat poll that left conversations due (no room) tries again
LOOP_CRASH_PAUSE = 5.0  # seconds before a step that died of an error nobody classified runs again
PROFILE_EVERY = 60.0  # seconds between two profile refresh runs (each checks a few day-old profiles)
STALL_FACTOR = 5  # a loop silent for this many of its intervals (at least a minute) is stalled
STORE_RETRY = 5.0  # seconds between two tries of a store that refused a write
HISTORY_LOOK = 15.0  # seconds between two looks for a history import asked for (`zfsync import-history`)
HISTORY_RETRY = 10.0  # seconds before a history step that got nowhere tries again


class Loop:
    """One piece of recurring work in a thread of its own: ``step`` runs, returns how many seconds to sleep,
    and the loop sleeps that long or until `wake` is called."""

    def __init__(
        self,
        name: str,
        step: Callable[[], float],
        stop: threading.Event,
        first_in: float = 0.0,
        woken: threading.Event | None = None,
        language: str = "",
    ):
        """``woken``: an event others set to wake the loop (its own, by default); ``language``: the desk's,
        which the thread speaks (a fleet's daemon serves desks in several)."""
        self.name = name
        self.language = language
        self.step = step
        self.stop = stop
        self.first_in = first_in
        self._woken = woken or threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def wake(self) -> None:
        self._woken.set()

    def _run(self) -> None:
        if self.language:
            i18n.use_here(self.language)
        self._woken.wait(self.first_in)
        while not self.stop.is_set():
            self._woken.clear()
            try:
                delay = self.step()
            except Exception:  # the step logs its own failures; this is the last line
                log.exception("loop_crashed", loop=self.name)
                delay = LOOP_CRASH_PAUSE
            self._woken.wait(max(0.0, delay))


@dataclass(frozen=True)
class Pace:
    """How a fleet's desk polls Zalo within its app's shared budget: ``intervals`` gives the seconds between
    two polls of an active and of a quiet feed (`shared_feed_intervals` over the desks of the app), and a
    feed is quiet once nothing happened in the OA for ``quiet_after`` seconds. None and 0: a single OA,
    polled as its own quota allows."""

    intervals: Callable[[], tuple[float, float]] | None = None
    quiet_after: float = 0.0


class Steps:
    """One step per loop (`zalo`, `freshchat`, `profiles`, `history`) and what they share: the progress
    the watchdog checks, the Zalo interval the quota allows."""

    def __init__(
        self, settings: Settings, store: Store, engine: Engine, store_watch: StoreWatch, pace: Pace | None = None
    ):
        self.settings = settings
        self.store = store
        self.engine = engine
        self.store_watch = store_watch
        self.pace = pace or Pace()
        self.progress = {"zalo": time.monotonic(), "freshchat": time.monotonic()}
        self.zalo_interval = 0.0  # set from the engine at start: the configured one, or a quota's longer one
        self.active_at = time.monotonic()  # when something last happened in the OA (a message either way)
        self.zalo_woken = threading.Event()  # set on activity: a quiet feed is polled at once, and fast again

    def zalo(self) -> float:
        if not self.store_takes_writes("zalo"):
            return STORE_RETRY
        started = time.monotonic()
        self.noticed(self.run_cycle("zalo", self.engine.poll_zalo))
        self.pace_zalo()
        return self.zalo_wait() - (time.monotonic() - started)

    def quiet(self) -> bool:
        """Whether nothing happened in the OA for a while (a fleet polls such a feed less often)."""
        return bool(self.pace.quiet_after) and time.monotonic() - self.active_at >= self.pace.quiet_after

    def zalo_wait(self) -> float:
        """The fast interval, or the quiet one for a feed where nothing happened for a while."""
        if self.pace.intervals is not None and self.quiet():
            return max(self.zalo_interval, self.pace.intervals()[1])
        return self.zalo_interval

    def noticed(self, result: CycleResult | None) -> None:
        if result is not None and (result.queued or result.delivered):
            was_quiet = self.quiet()
            self.active_at = time.monotonic()
            if was_quiet:
                self.zalo_woken.set()  # polled at once, and fast from now on

    def freshchat(self) -> float:
        if not self.store_takes_writes("freshchat"):
            return STORE_RETRY
        self.noticed(self.run_cycle("freshchat", self.engine.poll_freshchat))
        wait = self.engine.freshchat_wait()
        # Still due right after a poll: the budget had no room for it; try again shortly, never spin.
        return wait if wait > 0 else FRESHCHAT_RETRY

    def profiles(self) -> float:
        try:
            self.engine.refresh_profiles()  # and the clocks' reminders
            self.engine.ask_assignees()
        except Exception:
            log.exception("profile_refresh_crashed")
        return PROFILE_EVERY

    def history(self) -> float:
        if not self.store_takes_writes("history"):
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

    def run_cycle(self, loop: str, cycle: Callable[[], CycleResult]) -> CycleResult | None:
        """A cycle that finishes is progress, even when an API said no: the failure was classified and
        recorded for `zfsync status`, and a restart would not fix it; so is one the store refused (the
        loop runs on, and a restart would not free the disk). A cycle that hangs, or dies of an error
        nobody classified (a bug), is not, and the watchdog restarts the service."""
        result = None
        try:
            result = cycle()
        except Stopping:
            log.info("cycle_stopped", loop=loop)
            return None
        except Exception as exc:
            if not is_failure(exc):
                log.exception("cycle_crashed", loop=loop)
                return None
            self.store_watch.failed(exc, loop)
        else:
            if self.store_watch.down:
                self.store_watch.worked()  # a whole cycle's writes went through: the store is back
        self.progress[loop] = time.monotonic()
        return result

    def store_takes_writes(self, loop: str) -> bool:
        """While the store refuses writes, a poll would read what it cannot record: try one small write
        first, and poll only once it goes through. The loop is alive either way. The store counts as back
        only once a whole cycle's writes went through (`run_cycle`): a full disk takes a small write and
        refuses the next message, and a watch that believed the small one would say "failing" and
        "recovered" at every poll."""
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
        return True

    def healthy(self) -> bool:
        now = time.monotonic()
        limits = {
            "zalo": max(60.0, STALL_FACTOR * (self.zalo_interval or self.settings.zalo.poll_interval)),
            "freshchat": max(60.0, STALL_FACTOR * RECHECK),
        }
        return all(now - self.progress[loop] < limit for loop, limit in limits.items())

    def pace_zalo(self) -> None:
        """Poll Zalo as often as its quota carries (the limit may have been learned from its headers), or
        as this desk's part of its app's budget allows, where a fleet's desks share it."""
        interval = self.engine.zalo_interval() if self.pace.intervals is None else self.pace.intervals()[0]
        if interval != self.zalo_interval:
            # A fleet's desks follow their app's shared budget, which moves as feeds go quiet and wake:
            # that is routine there (`zfsync status` shows it), and a warning for one OA alone.
            (log.debug if self.pace.intervals is not None else log.warning)(
                "zalo_poll_interval_changed",
                seconds=interval,
                configured=self.settings.zalo.poll_interval,
                quota_per_minute=self.engine.zalo.quota.limit,
            )
            self.zalo_interval = interval
