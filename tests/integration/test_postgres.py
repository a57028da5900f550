"""The store on PostgreSQL: the bridge's own tests again on it, and one active daemon of several.

The bridge tests imported below run here a second time with every store on a throwaway PostgreSQL (the
``store_url`` fixture of this module). The whole suite can run that way too: ZFSYNC_TEST_STORE=postgres.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import pgcluster
from tests.integration.test_bridge import (  # noqa: F401  (collected again here, on PostgreSQL)
    test_agent_reply_reaches_zalo_and_is_not_echoed,
    test_crash_after_freshchat_accepted_a_post_is_reconciled_not_reposted,
    test_crash_after_zalo_accepted_a_send_is_reconciled_not_resent,
    test_long_reply_is_split_into_ordered_messages,
    test_messages_of_one_user_arrive_in_order_across_many_pages,
    test_minus_213_becomes_one_private_note_and_a_failed_row,
    test_resolve_sends_the_notice_once,
    test_restart_sends_nothing_twice,
    test_transient_zalo_failures_retry_with_backoff_then_deliver,
)
from tests.integration.test_catchup import (  # noqa: F401
    test_a_kill_in_the_middle_of_catch_up_loses_and_doubles_nothing,
    test_fifty_users_times_ten_messages_while_the_daemon_is_down,
)
from tests.integration.test_groups import (  # noqa: F401  (the group chats' store, on PostgreSQL: its counts too)
    test_a_group_of_three_writes_every_content_type_in_order_once_with_their_names,
    test_a_restart_and_a_kill_mid_burst_lose_and_double_nothing,
    test_groups_off_reads_no_group_and_a_missing_permission_stops_only_groups,
    test_the_package_end_is_shown_and_told_once_before_it_comes,
)
from tests.integration.test_hostile import (  # noqa: F401
    test_a_deleted_conversation_stops_nobody_and_is_recreated_on_the_next_message,
)
from tests.integration.test_operations import (  # noqa: F401
    test_refresh_token_used_twice_then_auth_recovers_without_restart_or_loss,
)
from tests.unit.test_cli import (  # noqa: F401
    config,
    test_failed_retry_skip_round_trip,
    test_pending_requeue_and_conversation_repair,
)
from zfsync import cli
from zfsync.cli.demo import Demo, wait_until
from zfsync.config import from_mapping
from zfsync.domain.errors import ConfigError
from zfsync.runtime.leader import LOST_LEAD
from zfsync.runtime.status import ACTIVE_KEY
from zfsync.store import Store

TAKEOVER_LIMIT = 30.0  # what the README promises


@pytest.fixture
def store_url(pg_url: str) -> str:
    return pg_url


@pytest.fixture
def two_ids() -> bool:
    """How Zalo lists a message is the readers' concern, tested on SQLite; here, one id a message."""
    return False


def test_times_keep_their_precision_and_a_claim_is_fenced(pg_url):
    store = Store.open(pg_url, pgcluster.PASSWORD)
    try:
        store.set_state("t", "1")
        now = 1_795_700_000.123456
        store.set_health("zalo", "OK", now)
        assert store.health()["zalo"]["last_ok_at"] == now  # a 4-byte REAL would have made it 1795700000.0
        store.take_lead("a")
        assert store.get_state("daemon.lease") == "a"
    finally:
        store.close()


def test_migrations_of_daemons_starting_at_once_do_not_collide(pg_url):
    import threading

    errors: list[Exception] = []

    def open_one() -> None:
        try:
            Store.open(pg_url, pgcluster.PASSWORD).close()
        except Exception as exc:  # pragma: no cover - the failure is what the test reports
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_password_in_the_url_is_refused_and_the_environment_gives_it(tmp_path):
    base = {"zalo": {"app_id": "1"}, "freshchat": {"api_url": "https://x.freshchat.com", "channel_id": "c"}}
    secrets = {"ZFSYNC_ZALO_APP_SECRET": "s", "ZFSYNC_FRESHCHAT_API_KEY": "k", "ZFSYNC_STORE_PASSWORD": "pw"}
    with pytest.raises(ConfigError, match="ZFSYNC_STORE_PASSWORD"):
        from_mapping({**base, "store": {"url": "postgresql://u:secret@db/zfsync"}}, secrets)
    with pytest.raises(ConfigError, match="name the database"):
        from_mapping({**base, "store": {"url": "postgresql://u@db"}}, secrets)
    with pytest.raises(ConfigError, match="expected sqlite"):
        from_mapping({**base, "store": {"url": "mysql://u@db/zfsync"}}, secrets)
    settings = from_mapping({**base, "store": {"url": "postgresql://u@db:5433/zfsync?sslmode=require"}}, secrets)
    assert settings.store_location == "postgresql://u@db:5433/zfsync?sslmode=require"
    assert settings.store_password == "pw" and "pw" not in repr(settings)
    sqlite = from_mapping({**base, "store": {"url": f"sqlite://{tmp_path}/z.db"}}, secrets)
    assert sqlite.store_location == tmp_path / "z.db" and sqlite.store_url == ""


def test_backup_on_postgresql_points_to_the_database_tools(pg_url, tmp_path, monkeypatch, capsys):
    from tests.conftest import cli_config

    path = cli_config(tmp_path, tmp_path / "unused.db", monkeypatch, pg_url)
    assert cli.main(["--config", str(path), "backup", str(tmp_path / "copy.db")]) != 0
    assert "pg_dump" in capsys.readouterr().err


# --- one active daemon of several ---------------------------------------------------------------------


@pytest.fixture
def shared(pg_url: str, tmp_path: Path) -> Iterator[Demo]:
    """The simulators and a config whose store is one PostgreSQL database, authorised."""
    demo = Demo(tmp_path, store_url=pg_url, store_password=pgcluster.PASSWORD)
    auth = demo.zfsync("auth", "zalo", f"--refresh-token={demo.zalo.mint_tokens()[1]}")
    assert auth.returncode == 0, auth.stderr
    yield demo
    demo.close()


def active_pid(url: str) -> int | None:
    store = Store.open(url, pgcluster.PASSWORD)
    try:
        found = store.get_state(ACTIVE_KEY)
    finally:
        store.close()
    return int(json.loads(found)["pid"]) if found else None


def arrived(demo: Demo, user: str) -> list[str]:
    return [p["text"]["content"] for m in demo.fc_messages(user) for p in m["message_parts"] if "text" in p]


def stop(*daemons: subprocess.Popen[bytes]) -> None:
    for daemon in daemons:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)


def test_a_standby_takes_over_within_seconds_of_the_active_being_killed(shared, pg_url):
    demo = shared
    first = demo.spawn()
    assert wait_until(lambda: active_pid(pg_url) == first.pid, timeout=30), demo.log_path.read_text()[-2000:]
    second = demo.spawn()
    status = lambda: demo.zfsync("status").stdout  # noqa: E731
    assert wait_until(lambda: "standby, active is" in status(), timeout=30), status()
    demo.zalo.add_customer_message("501", "Lan", text="một")
    assert wait_until(lambda: arrived(demo, "501") == ["một"])

    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    assert wait_until(lambda: active_pid(pg_url) == second.pid, timeout=TAKEOVER_LIMIT)
    assert time.monotonic() - killed_at < TAKEOVER_LIMIT
    demo.zalo.add_customer_message("501", "Lan", text="hai")
    assert wait_until(lambda: arrived(demo, "501") == ["một", "hai"])
    with demo.fc.lock:
        (conversation,) = demo.fc.conversations
    demo.fc.add_agent_message(conversation, "Dạ vâng")
    assert wait_until(lambda: [s["text"] for s in demo.zalo.sent] == ["Dạ vâng"])
    assert "standby" not in status()  # nobody stands by now
    stop(second)
    assert second.returncode == 0
    assert arrived(demo, "501") == ["một", "hai"] and [s["text"] for s in demo.zalo.sent] == ["Dạ vâng"]


def test_an_active_daemon_that_loses_its_database_session_stops_and_the_standby_takes_over(shared, pg_url):
    demo = shared
    first = demo.spawn()
    assert wait_until(lambda: active_pid(pg_url) == first.pid, timeout=30)
    second = demo.spawn()
    assert wait_until(lambda: "standby" in demo.zfsync("status").stdout, timeout=30)
    cluster_sql = _admin(pg_url)
    cluster_sql(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'zfsync % {first.pid}'"
    )
    assert first.wait(timeout=15) == LOST_LEAD  # stopped by itself, at once
    assert wait_until(lambda: active_pid(pg_url) == second.pid, timeout=TAKEOVER_LIMIT)
    demo.zalo.add_customer_message("502", "Minh", text="sau khi chuyển")
    assert wait_until(lambda: arrived(demo, "502") == ["sau khi chuyển"])
    stop(second)


def _admin(url: str):  # type: ignore[no-untyped-def]
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)

    def run(statement: str) -> None:
        with psycopg.connect(**params, password=pgcluster.PASSWORD, autocommit=True) as connection:
            connection.execute(statement.encode())

    return run
