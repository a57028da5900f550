"""The fault matrix: every kind of trouble the APIs or the disk can cause, injected through the
simulators. Each case checks the state `zfsync status` shows while it lasts, then that once it stops,
everything arrives exactly once."""

from __future__ import annotations

import sqlite3

import pytest
import structlog

from tests.conftest import SIMS_IN_PROCESS, on
from zfsync.sim.base import Fault
from zfsync.store import store as store_module
from zfsync.sync.engine import OK, RATE_LIMITED, TRANSIENT_ERROR

KHANH = "2512007384617209999"
LAN = "2512007384617200001"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def traffic(b, tag: str) -> None:
    for i in range(3):
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"{tag} k{i}")
        b.zalo.add_customer_message(LAN, "Lan", text=f"{tag} l{i}")


def delivered_exactly_once(b, tags: list[str]) -> None:
    assert texts(b.customer_messages(KHANH)) == [f"{t} k{i}" for t in tags for i in range(3)]
    assert texts(b.customer_messages(LAN)) == [f"{t} l{i}" for t in tags for i in range(3)]


def health(b, side: str) -> str:
    return b.store.health()[side]["state"]


ZALO_READ = "/v2.0/oa/listrecentchat"
ZALO_SEND = "/v3.0/oa/message/cs"
FC = "/v2/"


@pytest.mark.parametrize(
    ("where", "fault", "state"),
    [
        ("zalo", Fault(ZALO_READ, "status", code=503, count=5), TRANSIENT_ERROR),
        ("zalo", Fault(ZALO_READ, "status", code=429, seconds=20, count=3), RATE_LIMITED),
        ("zalo", Fault(ZALO_READ, "status", code=429, count=3), RATE_LIMITED),  # no Retry-After
        ("zalo", Fault(ZALO_READ, "zalo_error", code=-32, count=2), RATE_LIMITED),
        ("zalo", Fault(ZALO_READ, "zalo_error", code=-200, count=2), TRANSIENT_ERROR),  # an error envelope at 200
        ("zalo", Fault(ZALO_READ, "timeout", count=2), TRANSIENT_ERROR),
        ("zalo", Fault(ZALO_READ, "reset", count=2), TRANSIENT_ERROR),
        ("zalo", Fault(ZALO_READ, "html", count=2), TRANSIENT_ERROR),
        ("zalo", Fault(ZALO_READ, "malformed", count=2), TRANSIENT_ERROR),
        ("freshchat", Fault(FC, "status", code=502, count=6), TRANSIENT_ERROR),
        ("freshchat", Fault(FC, "status", code=429, seconds=30, count=4), RATE_LIMITED),
        ("freshchat", Fault(FC, "status", code=429, count=4), RATE_LIMITED),
        ("freshchat", Fault(FC, "timeout", count=3), TRANSIENT_ERROR),
        ("freshchat", Fault(FC, "reset", count=3), TRANSIENT_ERROR),
        ("freshchat", Fault(FC, "html", count=3), TRANSIENT_ERROR),
        ("freshchat", Fault(FC, "malformed", count=3), TRANSIENT_ERROR),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.kind}{v.code or ''}",
)
@on(SIMS_IN_PROCESS)
def test_each_fault_shows_in_status_then_everything_arrives_once(bridge, where, fault, state):
    b = bridge
    traffic(b, "before")
    b.cycle()
    conversation = b.conversation_of(KHANH)
    (b.zalo if where == "zalo" else b.fc).faults.append(fault)
    traffic(b, "during")
    b.fc.add_agent_message(conversation, "trả lời trong sự cố")
    b.cycle()
    assert health(b, where) == state
    b.settle(rounds=12, step=61)
    assert health(b, "zalo") == OK and health(b, "freshchat") == OK
    delivered_exactly_once(b, ["before", "during"])
    assert b.sent_to(KHANH) == ["trả lời trong sự cố"]
    assert b.notes() == []


@on(SIMS_IN_PROCESS)
def test_a_storm_of_sends_refused_with_429_backs_off_instead_of_spinning(bridge):
    b = bridge
    traffic(b, "a")
    b.cycle()
    conversation = b.conversation_of(KHANH)
    for i in range(5):
        b.fc.add_agent_message(conversation, f"r{i}")
    b.zalo.faults.append(Fault(ZALO_SEND, "zalo_error", code=-32, count=1000))
    before = b.zalo.requests.get(ZALO_SEND, 0)
    for _ in range(30):  # 30 s of cycles
        b.cycle()
    assert b.zalo.requests.get(ZALO_SEND, 0) - before <= 2  # waits for the next minute, no hammering
    b.zalo.faults.clear()
    b.settle(rounds=6, step=61)
    assert b.sent_to(KHANH) == [f"r{i}" for i in range(5)]


@on(SIMS_IN_PROCESS)
def test_sqlite_locked_by_another_process_loses_nothing(bridge, monkeypatch):
    b = bridge
    if b.settings.store_url:
        pytest.skip("SQLite's file lock: there is no such lock on PostgreSQL")
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    b.restart()
    traffic(b, "a")
    blocker = sqlite3.connect(b.settings.store_path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # e.g. a backup tool holding the write lock
    b.drive.zalo()  # the write is refused: the daemon's step says so once and backs off, losing nothing
    watch = b.drive.steps.store_watch
    assert watch.down and "locked" in watch.state.error
    b.drive.zalo()  # still locked: each step only tries one small write, and polls nothing
    assert watch.down and watch.state.failures > 1
    blocker.rollback()
    blocker.close()
    b.settle()
    delivered_exactly_once(b, ["a"])


@on(SIMS_IN_PROCESS)
def test_disk_full_loses_nothing(bridge):
    b = bridge
    if b.settings.store_url:
        pytest.skip("SQLite's page limit stands for a full disk; PostgreSQL's disk is the server's")
    traffic(b, "a")
    b.cycle()
    pages = b.store.db.execute_sql("PRAGMA page_count").fetchone()[0]
    b.store.db.execute_sql(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
    for i in range(40):
        b.zalo.add_customer_message(KHANH, "Minh Khánh", text="x" * 2000 + f" full{i}")
    watch = b.drive.steps.store_watch
    with structlog.testing.capture_logs() as said:
        for _ in range(3):
            b.drive.zalo()  # the store refuses the writes: said, backed off, nothing lost
    assert watch.down and "full" in watch.state.error and watch.state.failures >= 3
    # One outage, said once: a small probe write that goes through is no recovery while messages fail.
    assert [e["event"] for e in said if e["event"].startswith("store_")] == ["store_failing"]
    b.store.db.execute_sql("PRAGMA max_page_count = 1073741823")  # space freed
    b.settle()
    got = [t.split()[-1] for t in texts(b.customer_messages(KHANH))]
    assert got == ["k0", "k1", "k2"] + [f"full{i}" for i in range(40)]
