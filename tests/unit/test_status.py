"""`zfsync status` in each state, and the watchdog's idea of progress."""

from __future__ import annotations

import json
import os

import pytest

from zfsync.cli import status_text
from zfsync.domain import ZaloTokens
from zfsync.runtime import status
from zfsync.runtime.daemon import Daemon
from zfsync.runtime.status import HEARTBEAT_KEY
from zfsync.store import Store
from zfsync.sync.engine import BAD_CREDENTIALS, OK, PERMANENT_ERROR, RATE_LIMITED, TRANSIENT_ERROR

NOW = 1_800_000_000.0


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "s.db")
    store.save_tokens(ZaloTokens("ACCESS-SECRET", "REFRESH-SECRET", 90_000), NOW)
    store.set_state(HEARTBEAT_KEY, str(NOW - 2))
    for side in ("zalo", "freshchat"):
        store.set_health(side, OK, NOW - 1)
    yield store
    store.close()


def report(store):
    return status.collect(store, now=NOW)


def exposition(store) -> str:
    from prometheus_client import generate_latest

    from zfsync.runtime import metrics

    return generate_latest(metrics.registry(store, process=False)).decode()


def test_healthy(store):
    r = report(store)
    assert r["exit_code"] == status.HEALTHY
    text = status_text.render(r, now=NOW)
    assert text.startswith("zfsync: healthy") and "heartbeat 2.0s ago" in text
    assert "ACCESS-SECRET" not in text + json.dumps(r) + exposition(store)


@pytest.mark.parametrize(
    ("side", "state", "code", "words"),
    [
        ("zalo", TRANSIENT_ERROR, status.DEGRADED, "last error: zalo timed out"),
        ("freshchat", RATE_LIMITED, status.DEGRADED, "RATE_LIMITED"),
        ("zalo", BAD_CREDENTIALS, status.DOWN, "fix: run `zfsync auth zalo --refresh-token TOKEN`"),
        ("freshchat", BAD_CREDENTIALS, status.DOWN, "fix: put a valid ZFSYNC_FRESHCHAT_API_KEY"),
        ("freshchat", PERMANENT_ERROR, status.DOWN, "PERMANENT_ERROR"),
    ],
)
def test_each_side_state_sets_the_exit_code_and_says_what_is_wrong(store, side, state, code, words):
    store.set_health(side, state, NOW, f"{side} timed out")
    r = report(store)
    assert r["exit_code"] == code
    assert r["sides"][side]["state"] == state
    assert words in status_text.render(r, now=NOW)
    written = exposition(store)
    assert f'zfsync_side_state{{side="{side}",state="{state}"}} 1.0' in written
    assert f'zfsync_side_up{{side="{side}"}} 0.0' in written


def test_the_oas_package_quota_is_a_line_and_a_gauge(store):
    from zfsync.domain import ZaloPackage
    from zfsync.sync.desk.reminders import PACKAGE_KEY, package_state, with_sub_quota

    assets = [ZaloPackage("cs", "sub_quota", 1990, 2000, "10/10/2024"), ZaloPackage("cs", "purchase_quota", 5, 50, "")]
    store.set_state(PACKAGE_KEY, json.dumps(with_sub_quota(package_state(assets, NOW), 1989, 2000, "10/10/2024")))
    text = status_text.render(report(store))
    assert (
        "zalo package consultation messages left: 1,989 of 2,000 the package's until 10/10/2024; 5 of 50 bought" in text
    )
    assert report(store)["exit_code"] == 0  # a low package is a warning for Prometheus, not a fault
    shown = exposition(store)
    assert 'zfsync_zalo_package_remaining{kind="sub_quota"} 1989.0' in shown
    assert 'zfsync_zalo_package_total{kind="purchase_quota"} 50.0' in shown


def test_a_package_count_or_day_no_zalo_answer_could_mean_is_not_shown(store):
    from zfsync.sync.desk.reminders import PACKAGE_KEY

    kinds = {
        "sub_quota": {"remain": 99_999_999_999_999_999_999_999, "total": 10**25, "valid_through": "32/13/2026"},
        "purchase_quota": {"remain": "5", "total": 50, "valid_through": ""},
        "reward_quota": {"remain": 3, "total": 10, "valid_through": "32/13/2026"},
    }
    store.set_state(PACKAGE_KEY, json.dumps({"checked_at": NOW, "kinds": kinds}))
    text = status_text.render(report(store))
    assert "99,999" not in text and "32/13" not in text and "bought" not in text
    assert "3 of 10 rewarded" in text


def test_a_stale_heartbeat_or_a_stopped_daemon_is_down(store):
    store.set_state(HEARTBEAT_KEY, str(NOW - 600))
    assert report(store)["exit_code"] == status.DOWN
    store.set_state(HEARTBEAT_KEY, "stopped")
    r = report(store)
    assert r["exit_code"] == status.DOWN and "not running" in status_text.render(r, now=NOW)


def test_a_dead_or_expiring_token(store):
    store.save_tokens(ZaloTokens("A", "R", 1800), NOW)
    assert report(store)["exit_code"] == status.DEGRADED  # under an hour left and not refreshed
    store.mark_tokens_dead("refresh refused: invalid refresh token")
    r = report(store)
    assert r["exit_code"] == status.DOWN and "zalo token dead: refresh refused" in status_text.render(r, now=NOW)


def test_the_watchdog_counts_finished_cycles_even_failed_ones_but_not_crashed_ones(tmp_path, monkeypatch):
    from zfsync.sync.engine import CycleResult

    class FakeEngine:
        def poll_zalo(self):
            return CycleResult(ok=False)  # Zalo said no: classified and recorded, the loop is alive

        def poll_freshchat(self):
            raise RuntimeError("disk I/O error")  # unclassified: the loop is broken

    class Settings:
        store_url = "postgresql://zfsync@db/zfsync"  # no beacon file for this test
        store_path = tmp_path / "unused.db"

        class zalo:
            poll_interval = 3

    daemon = Daemon(Settings(), None, FakeEngine())  # type: ignore[arg-type]
    clock = [1000.0]
    monkeypatch.setattr("zfsync.runtime.daemon.time.monotonic", lambda: clock[0])
    daemon.steps.progress = {"zalo": 1000.0, "freshchat": 1000.0}
    clock[0] = 1100.0
    daemon.steps.run_cycle("zalo", daemon.engine.poll_zalo)
    daemon.steps.run_cycle("freshchat", daemon.engine.poll_freshchat)
    assert daemon.steps.progress["zalo"] == 1100.0 and daemon.steps.progress["freshchat"] == 1000.0
    assert not daemon.steps.healthy()  # freshchat made no progress for 100 s: no WATCHDOG=1, systemd restarts


def test_a_second_daemon_on_the_same_store_is_refused(tmp_path):
    from zfsync.domain.errors import ZfsyncError
    from zfsync.store.lock import only_instance

    store_path = tmp_path / "state" / "zfsync.db"
    refused = pytest.raises(ZfsyncError, match=r"another zfsync daemon \(pid \d+\) is running on store")
    with only_instance(store_path), refused, only_instance(store_path):
        pass
    with only_instance(store_path):  # released when the first one ended
        pass


def test_a_second_daemon_reaching_the_store_by_another_path_is_refused_too(tmp_path):
    from zfsync.domain.errors import ZfsyncError
    from zfsync.store.lock import only_instance

    store_path = tmp_path / "state" / "zfsync.db"
    store_path.parent.mkdir()
    (tmp_path / "link.db").symlink_to(store_path)
    (tmp_path / "state-link").symlink_to(tmp_path / "state", target_is_directory=True)
    others = [
        tmp_path / "link.db",  # a symlink to the file
        tmp_path / "state-link" / "zfsync.db",  # a second directory path to it
        tmp_path / "state" / ".." / "state" / "zfsync.db",
    ]
    refused = rf"another zfsync daemon \(pid {os.getpid()}\) is running on store"
    for other in others:
        with only_instance(store_path), pytest.raises(ZfsyncError, match=refused), only_instance(other):
            pass
    with only_instance(store_path):
        (tmp_path / "moved.db").unlink(missing_ok=True)
        store_path.rename(tmp_path / "moved.db")  # renamed while held: still the same file, still locked
        with pytest.raises(ZfsyncError), only_instance(tmp_path / "moved.db"):
            pass


def test_a_user_list_zalo_cut_short_is_a_line_for_a_day(store):
    store.note_user_list_cut(NOW - 60, [("2026_12_06:2026_12_06", 10_250)])
    (line,) = [p for p in report(store)["problems"] if "10,000" in p["what"]]
    assert "2026-12-06 (10250)" in line["what"] and "zalo_user_list_cut" in line["fix"]
    assert not [p for p in status.collect(store, now=NOW + 86_400)["problems"] if "10,000" in p["what"]]
