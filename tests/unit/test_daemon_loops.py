"""The daemon's loops sleep until their work is due or they are woken; a delivery in flight for over a
minute shows in `zfsync status` and the metrics, without making the bridge unhealthy."""

from __future__ import annotations

import threading

from prometheus_client import generate_latest

from zfsync.cli import status_text
from zfsync.runtime import metrics, status
from zfsync.runtime.daemon import Daemon
from zfsync.runtime.steps import Loop
from zfsync.store import Store
from zfsync.sync.write.lanes import Flight

WAIT = 10.0


def test_a_loop_sleeps_as_its_step_asks_and_runs_at_once_when_woken():
    runs: list[int] = []
    ran = threading.Semaphore(0)

    def step() -> float:
        runs.append(len(runs))
        ran.release()
        return 3600.0  # an hour: only a wake runs it again within the test

    stop = threading.Event()
    loop = Loop("test", step, stop, first_in=3600.0)
    loop.thread.start()
    loop.wake()  # the first run waits an hour, or a wake
    assert ran.acquire(timeout=WAIT)
    loop.wake()
    assert ran.acquire(timeout=WAIT)
    stop.set()
    loop.wake()
    loop.thread.join(WAIT)
    assert runs == [0, 1] and not loop.thread.is_alive()


def test_a_step_that_crashes_does_not_end_its_loop():
    calls: list[str] = []
    ran = threading.Semaphore(0)

    def step() -> float:
        calls.append("x")
        ran.release()
        if len(calls) == 1:
            raise RuntimeError("bug")
        return 3600.0

    stop = threading.Event()
    loop = Loop("test", step, stop)
    loop.thread.start()
    assert ran.acquire(timeout=WAIT)
    loop.wake()
    assert ran.acquire(timeout=WAIT)
    stop.set()
    loop.wake()
    loop.thread.join(WAIT)
    assert len(calls) == 2


def test_a_slow_delivery_shows_in_status_and_metrics_but_the_bridge_stays_healthy(tmp_path, monkeypatch):
    store = Store.open(tmp_path / "zfsync.db")
    contact = store.record_zalo_messages("84123", "Minh Khánh", "", [], (1, "x"), 0, 0.0)

    class Lane:
        def __init__(self, flights: list[Flight]) -> None:
            self._flights = flights

        def flights(self) -> list[Flight]:
            return self._flights

    class Engine:
        lanes = {  # noqa: RUF012
            "z2f": Lane([Flight(7, contact.id, "photo", True, 100.0), Flight(8, contact.id, "text", False, 190.0)]),
            "f2z": Lane([]),
        }

    daemon = Daemon(None, store, Engine())  # type: ignore[arg-type]
    monkeypatch.setattr("zfsync.runtime.daemon.time.monotonic", lambda: 200.0)
    daemon.report.note_slow()
    store.set_state(status.HEARTBEAT_KEY, "1000.0")
    report = status.collect(store, now=1001.0)
    assert report["slow"] == [{"direction": "z2f", "row": 7, "kind": "photo", "customer": "Minh Khánh", "seconds": 100}]
    shown = status_text.render(report, now=1001.0)
    assert "in flight  Zalo → FreshChat: photo for Minh Khánh, 100 s so far (row 7; others go meanwhile)" in shown
    assert not any("in flight" in p["what"] for p in report["problems"])
    text = generate_latest(metrics.registry(store, process=False)).decode()
    assert 'zfsync_slow_deliveries{direction="z2f"} 1.0' in text
    assert 'zfsync_longest_delivery_seconds{direction="z2f"} 100.0' in text
    store.close()


def test_the_history_loop_reads_on_while_it_gets_somewhere_and_waits_when_it_does_not(tmp_path):
    from zfsync.domain import HistoryImport
    from zfsync.runtime.steps import HISTORY_LOOK, HISTORY_RETRY
    from zfsync.sync.read import history

    store = Store.open(tmp_path / "zfsync.db")
    job = history.request(7, 1_800_000_000.0)

    class Engine:
        lanes: dict = {}  # noqa: RUF012
        steps: list[object] = []  # noqa: RUF012  (what each step leaves: a state, or None when done)

        def history_state(self):
            return store.history_import()

        def import_history(self) -> int:
            left = self.steps.pop(0)
            store.save_history_import(left)  # type: ignore[arg-type]
            return 0

    engine = Engine()
    daemon = Daemon(None, store, engine)  # type: ignore[arg-type]
    store.save_history_import(job)
    engine.steps = [HistoryImport(7, job.since_ms, job.requested_at, ("u",), 2)]
    assert daemon.steps.history() == 0.0  # a customer read: on at once
    engine.steps = [store.history_import()]
    assert daemon.steps.history() == HISTORY_RETRY  # Zalo refused, or is left alone: not a spin
    engine.steps = [None]
    assert daemon.steps.history() == HISTORY_LOOK  # finished: look now and then for a new one
    store.close()
