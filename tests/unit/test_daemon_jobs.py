"""How the daemon's jobs hand work to each other."""

from __future__ import annotations

from datetime import UTC

from apscheduler.jobstores.base import JobLookupError

from zfsync.daemon import Daemon
from zfsync.sync.engine import CycleResult


class Scheduler:
    timezone = UTC

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.woken: list[str] = []

    def modify_job(self, job_id: str, next_run_time: object) -> None:
        if not self.running:
            raise JobLookupError(job_id)
        self.woken.append(job_id)


def daemon_with(scheduler: Scheduler) -> Daemon:
    daemon = Daemon(None, None, None)  # type: ignore[arg-type]
    daemon.scheduler = scheduler  # type: ignore[assignment]
    return daemon


def test_a_poll_that_queued_rows_wakes_its_delivery_job_at_once():
    scheduler = Scheduler()
    daemon = daemon_with(scheduler)
    daemon._run_cycle("zalo", lambda: CycleResult(ok=True, queued=0))
    assert scheduler.woken == []  # nothing queued: the delivery keeps its own tick
    daemon._run_cycle("freshchat", lambda: CycleResult(ok=True, queued=2))
    daemon._run_cycle("zalo", lambda: CycleResult(ok=True, queued=1))
    assert scheduler.woken == ["deliver-f2z", "deliver-z2f"]
    daemon._run_cycle("deliver-f2z", lambda: CycleResult(ok=True, queued=1), progress=False)
    assert scheduler.woken == ["deliver-f2z", "deliver-z2f"]  # a delivery wakes nobody


def test_a_poll_finishing_while_the_scheduler_shuts_down_has_nothing_to_wake():
    daemon = daemon_with(Scheduler(running=False))
    daemon._run_cycle("zalo", lambda: CycleResult(ok=True, queued=1))
    assert daemon.progress["zalo"] > 0  # the cycle still counts as progress
