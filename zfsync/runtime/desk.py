"""One desk's work in a running daemon: its engine's poll loops and delivery lanes, in threads of their own.

A single-OA daemon runs one desk for its whole life (`zfsync.runtime.daemon`); a fleet's daemon runs one
per tenant it holds, started when it takes the tenant and stopped when it lets it go
(`zfsync.runtime.fleet`). Each desk has its own stop, so stopping one never touches another's threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from zfsync import i18n
from zfsync.config import Settings
from zfsync.runtime import app
from zfsync.runtime.report import Reporter
from zfsync.runtime.status import STARTS_KEY
from zfsync.runtime.steps import Loop, Steps
from zfsync.runtime.systemd import Notifier
from zfsync.store import Store
from zfsync.store.health import StoreWatch
from zfsync.sync.engine import Engine

log = structlog.get_logger("zfsync.daemon")


class Desk:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: Engine,
        store_watch: StoreWatch,
        notifier: Notifier | None = None,
        reload_secrets: Callable[[], None] | None = None,
        steps: Steps | None = None,
    ):
        self.settings = settings
        self.store = store
        self.engine = engine
        self.store_watch = store_watch
        self.stop_event = threading.Event()
        self.steps = steps or Steps(settings, store, engine, store_watch)
        self.report = Reporter(
            store, engine, self.steps, store_watch, notifier or Notifier(""), reload_secrets or (lambda: None)
        )
        self.loops: dict[str, Loop] = {}
        self.lane_threads: list[threading.Thread] = []

    def prepare(self, note_start: bool = True) -> None:
        """What a start does before the first poll: queued rows in today's shape, the start noted for
        `zfsync status` (its crash-loop check; ``note_start=False`` for a fleet's daemon taking a tenant
        over, which is no restart), persisted times brought within reach."""
        upgraded = app.upgrade_payloads(self.store)
        if upgraded:
            log.info("payloads_upgraded", rows=upgraded, tenant=self.settings.tenant or None)
        if note_start:
            starts = [t for t in (self.store.get_state(STARTS_KEY) or "").split(",") if t][-9:]
            self.store.set_state(STARTS_KEY, ",".join([*starts, f"{time.time():.0f}"]))
        self.engine.recover_schedule()
        self.steps.zalo_interval = self.engine.zalo_interval()

    def start(self, first_polls_done: bool, background: bool = True) -> None:
        """Start the loops and the lanes; ``first_polls_done``: each side was polled once already (the
        single-OA daemon does that before telling systemd it is ready); ``background``: the profile and
        history loops too (a fleet's daemon runs those of all its desks in turn, `Background`)."""
        steps, language = self.steps, self.settings.sync.language
        self.loops = {
            name: Loop(name, step, self.stop_event, first_in, woken, language)
            for name, step, first_in, woken in (
                ("zalo", steps.zalo, steps.zalo_interval if first_polls_done else 0.0, steps.zalo_woken),
                # a customer who wrote is polled for an answer at once: the engine's activity wakes it
                (
                    "freshchat",
                    steps.freshchat,
                    self.engine.freshchat_wait() if first_polls_done else 0.0,
                    self.engine.activity,
                ),
                ("profiles", steps.profiles, 0.0, None),
                ("history", steps.history, 0.0, None),
            )
            if background or name in ("zalo", "freshchat")
        }
        self.lane_threads = [
            threading.Thread(
                target=_speaking(language, lane.serve), args=(self.stop_event,), name=f"lane-{direction}", daemon=True
            )
            for direction, lane in self.engine.lanes.items()
        ]
        self.report.running = True
        for thread in self.threads():
            thread.start()

    def threads(self) -> list[threading.Thread]:
        return [*(loop.thread for loop in self.loops.values()), *self.lane_threads]

    def wake_all(self) -> None:
        for loop in self.loops.values():
            loop.wake()
        for lane in self.engine.lanes.values():
            lane.wake()

    def stop(self, give_up_at: float, stop_quotas: bool = True) -> list[int]:
        """End every loop; the sends in flight get until ``give_up_at`` (monotonic) to finish. Returns the
        rows still in flight then (a send cut off is reconciled at the next start, as after a crash).
        ``stop_quotas``: calls waiting for a quota give up now (not when the quota is shared with desks
        that go on)."""
        self.stop_event.set()
        if stop_quotas:
            for side in (self.engine.zalo, self.engine.freshchat):
                side.quota.stop()
        self.wake_all()
        for lane in self.engine.lanes.values():
            lane.close(wait=False)
        for thread in self.threads():
            thread.join(max(0.0, give_up_at - time.monotonic()))
        in_flight = self.in_flight()
        while in_flight and time.monotonic() < give_up_at:
            time.sleep(0.05)  # the sends in flight end soon: their transfers were told to stop
            in_flight = self.in_flight()
        return in_flight

    def in_flight(self) -> list[int]:
        return [f.row_id for lane in self.engine.lanes.values() for f in lane.flights()]


def _speaking(language: str, target: Callable[..., None]) -> Callable[..., None]:
    def run(*args: object) -> None:
        i18n.use_here(language)
        target(*args)

    return run


class Background:
    """The profile and history steps of many desks, in one thread, in turn: neither is urgent (profiles are
    checked once a minute, a history import reads behind live messages), and a thread of each per desk
    would cost a fleet two threads a tenant. A desk whose step is due runs it once; the next due desk goes
    next, so a long import of one desk only takes its turns."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self._due: dict[int, dict[str, float]] = {}  # id(desk) -> step name -> monotonic due time
        self._desks: dict[int, Desk] = {}
        self._lock = threading.Lock()
        self._woken = threading.Event()
        self.thread = threading.Thread(target=self._run, name="background", daemon=True)

    def add(self, desk: Desk) -> None:
        with self._lock:
            self._desks[id(desk)] = desk
            self._due[id(desk)] = {"profiles": 0.0, "history": 0.0}
        self._woken.set()

    def remove(self, desk: Desk) -> None:
        with self._lock:
            self._desks.pop(id(desk), None)
            self._due.pop(id(desk), None)

    def _next(self) -> tuple[Desk, str] | float:
        """The desk and step due first, or the seconds until one is."""
        with self._lock:
            due = [(at, key, step) for key, steps in self._due.items() for step, at in steps.items()]
            if not due:
                return 60.0
            at, key, step = min(due)
            wait = at - time.monotonic()
            return (self._desks[key], step) if wait <= 0 else wait

    def _run(self) -> None:
        while not self.stop.is_set():
            found = self._next()
            if isinstance(found, float):
                self._woken.wait(min(found, 60.0))
                self._woken.clear()
                continue
            desk, step = found
            if desk.stop_event.is_set():
                self.remove(desk)
                continue
            i18n.use_here(desk.settings.sync.language)
            try:
                delay = desk.steps.profiles() if step == "profiles" else desk.steps.history()
            except Exception:
                log.exception("background_step_crashed", step=step, tenant=desk.settings.tenant)
                delay = 60.0
            with self._lock:
                if id(desk) in self._due:
                    # A history step that got somewhere goes on at its next turn, behind what else is due.
                    self._due[id(desk)][step] = time.monotonic() + max(delay, 0.05)
