"""What the running daemon tells the world: the heartbeat and the state rows `zfsync status` reads (the
quotas, the deliveries in flight for over a minute), systemd's status line and watchdog, and the
Prometheus metrics (a port, or a textfile for node_exporter)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from zfsync.config import MetricsSettings, Settings
from zfsync.domain import SideHealth
from zfsync.runtime import metrics
from zfsync.runtime.status import HEARTBEAT_KEY, QUOTA_KEY, SLOW_KEY
from zfsync.runtime.steps import Steps
from zfsync.runtime.systemd import Notifier
from zfsync.store import Store
from zfsync.store.health import StoreWatch, is_failure
from zfsync.sync.engine import Engine
from zfsync.sync.write.lanes import SLOW

log = structlog.get_logger("zfsync.daemon")


class Reporter:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        steps: Steps,
        store_watch: StoreWatch,
        notifier: Notifier,
        reload_secrets: Callable[[], None],
    ):
        self.store = store
        self.engine = engine
        self.steps = steps
        self.store_watch = store_watch
        self.notifier = notifier
        self.reload_secrets = reload_secrets
        self.running = False  # set once the loops run: only then are quotas and flights worth writing
        self.last_status = ""
        self._noted: dict[str, str] = {}  # state rows as last written

    def heartbeat(self) -> None:
        health: dict = {}
        try:
            self.store.set_state(HEARTBEAT_KEY, f"{time.time():.3f}")
            if not self.store_watch.down:  # back only once a loop's whole cycle went through (`Steps`)
                self.store_watch.worked()
            if self.running:
                self.note(QUOTA_KEY, json.dumps(self.engine.quotas()))
                self.note_slow()
            health = self.store.health()
        except Exception as exc:
            if not is_failure(exc):
                raise
            self.store_watch.failed(exc, "heartbeat")
        if health.get("freshchat", {}).get("state") == SideHealth.BAD_CREDENTIALS:
            self.reload_secrets()
        if self.steps.healthy():
            self.notifier.watchdog()
        else:
            log.warning(
                "daemon_stalled",
                seconds_since_progress={k: round(time.monotonic() - v, 1) for k, v in self.steps.progress.items()},
            )
        status = self.status_line(health) if health else "store refuses writes"
        if status != self.last_status:
            self.notifier.status(status)
            self.last_status = status

    def note_slow(self) -> None:
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
        self.note(SLOW_KEY, json.dumps(slow, ensure_ascii=False))

    def note(self, key: str, value: str) -> None:
        """Write a state row for `zfsync status` when it changed: an idle daemon writes little."""
        if self._noted.get(key) != value:
            self.store.set_state(key, value)
            self._noted[key] = value

    def status_line(self, health: dict | None = None) -> str:
        health = self.store.health() if health is None else health
        sides = ", ".join(f"{side} {health.get(side, {}).get('state', 'UNKNOWN')}" for side in ("zalo", "freshchat"))
        return f"{sides}; {self.store.conversation_count()} conversations"


def start_metrics(settings: Settings, store: Store, scheduler: BackgroundScheduler) -> None:
    """Serve the metrics on ``metrics.listen`` and/or write them to ``metrics.textfile`` every interval."""
    chosen = settings.metrics
    if not chosen.textfile and not chosen.listen:
        return
    reg = metrics.registry(
        store,
        zalo_interval=settings.zalo.poll_interval,
        unanswered_minutes=settings.sync.unanswered_minutes,
    )
    publish(chosen, reg, scheduler)


def publish(chosen: MetricsSettings, reg: CollectorRegistry, scheduler: BackgroundScheduler) -> None:
    """Serve ``reg`` on ``metrics.listen`` and/or write it to ``metrics.textfile`` every interval."""
    if chosen.listen:
        metrics.serve(chosen.listen, reg)
        log.info("metrics_listening", listen=chosen.listen)
    if chosen.textfile:
        textfile = chosen.textfile

        def write() -> None:
            try:
                metrics.write_textfile(textfile, reg)
            except OSError as exc:
                log.warning("metrics_not_written", path=str(textfile), error=str(exc))

        write()
        scheduler.add_job(write, "interval", seconds=chosen.interval, id="metrics")
