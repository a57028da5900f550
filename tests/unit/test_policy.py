from __future__ import annotations

import io
import logging

import pytest

from zfsync import log
from zfsync.sync.decide.schedule import Intervals, next_poll_at
from zfsync.sync.write.delivery import MAX_DELAY, backoff


def test_backoff_grows_and_is_capped():
    assert backoff(1, rng=lambda: 0.0) == 1.0
    assert backoff(3, rng=lambda: 1.0) == 8.0
    assert backoff(50, rng=lambda: 1.0) == MAX_DELAY


def test_schedule_hot_warm_cold_and_window():
    intervals = Intervals(3, 30, 600)
    now = 1_000_000.0
    assert next_poll_at(now, now - 10, now - 10, intervals) == now + 3
    assert next_poll_at(now, now - 1000, now - 1000, intervals) == now + 30
    assert next_poll_at(now, now - 7200, now - 7200, intervals) == now + 600
    assert next_poll_at(now, now - 8 * 86400, now - 8 * 86400, intervals) == now + 6 * 3600


def test_journald_lines_carry_priority_and_mask_secrets():
    out = io.StringIO()
    log.setup("info", "journald", out)
    logger = log.structlog.get_logger("t")
    logger.warning("side_unhealthy", side="zalo", access_token="abc123")
    logger.debug("hidden")
    line = out.getvalue().strip()
    assert line.startswith("<4>event='side_unhealthy'")
    assert "abc123" not in line and "***" in line
    assert "hidden" not in out.getvalue()


def test_a_crash_under_journald_keeps_its_traceback_at_error_priority():
    out = io.StringIO()
    log.setup("info", "journald", out)
    logger = log.structlog.get_logger("t")
    try:
        raise RuntimeError("disk I/O error")
    except RuntimeError:
        logger.exception("cycle_crashed", loop="zalo")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("<3>event='cycle_crashed'")
    assert any(line.startswith("<3>  Traceback") for line in lines)
    assert lines[-1] == "<3>  RuntimeError: disk I/O error"
    assert all(line.startswith("<3>") for line in lines)


def test_every_library_record_goes_through_structlog_and_routine_ones_stay_quiet():
    import json
    import logging
    import threading

    out = io.StringIO()
    log.setup("info", "json", out)
    try:
        logging.getLogger("apscheduler.executors.default").warning(
            'Execution of job "x" skipped: maximum number of running instances reached (1)'
        )  # a job still running is no warning: said at debug, so not at all here
        logging.getLogger("apscheduler.scheduler").info("Running job")  # libraries narrate at info: unheard
        logging.getLogger("urllib3.connectionpool").warning("Retrying after connection broken")
        # What Python's warnings become once captured (pytest records them itself around each test).
        logging.getLogger("py.warnings").warning("lib.py:1: DeprecationWarning: something deprecated")

        def broken() -> None:
            raise RuntimeError("thread bug")

        thread = threading.Thread(target=broken, name="worker-1")
        thread.start()
        thread.join()
        events = [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        logging.captureWarnings(False)
        threading.excepthook = threading.__excepthook__
    assert [(e["event"], e["level"], e.get("logger")) for e in events] == [
        ("library_log", "warning", "urllib3.connectionpool"),
        ("library_log", "warning", "py.warnings"),
        ("thread_crashed", "error", None),
    ]
    assert events[0]["message"] == "Retrying after connection broken"
    assert "RuntimeError: thread bug" in events[2]["exception"] and events[2]["thread"] == "worker-1"


@pytest.mark.parametrize("fmt", ["journald", "json", "console"])
def test_a_known_secret_is_masked_wherever_it_appears_in_a_line(fmt):
    out = io.StringIO()
    log.setup("debug", fmt, out)
    log.remember_secret("tok-3f9a8b7c6d5e", "short")  # under 8 characters: too short to be a secret
    logger = log.structlog.get_logger("t")
    logging.getLogger("peewee").debug("('INSERT INTO \"token\" VALUES (?)', ['tok-3f9a8b7c6d5e'])")
    try:
        raise RuntimeError("refused tok-3f9a8b7c6d5e")
    except RuntimeError:
        logger.exception("cycle_crashed", detail="short and tok-3f9a8b7c6d5e")
    written = out.getvalue()
    assert "tok-3f9a8b7c6d5e" not in written and written.count("***") >= 3 and "short" in written
    log.setup("info", "json", io.StringIO())
