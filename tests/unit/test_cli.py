from __future__ import annotations

import json
import time

import pytest

from tests.conftest import cli_config
from zfsync import cli
from zfsync.domain.outbound import ReplyText
from zfsync.store import NewRow, Store

COMMANDS = [
    "run",
    "status",
    "check",
    "auth",
    "failed",
    "retry",
    "skip",
    "pending",
    "requeue",
    "conversation",
    "setup",
    "import-history",
    "backup",
    "copy-store",
    "sim",
    "demo",
]


def test_help_lists_every_command_of_the_design(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


def test_every_command_is_in_the_operators_guide():
    from pathlib import Path

    guide = (Path(__file__).parents[2] / "docs" / "operating.md").read_text()
    table = "\n".join(line for line in guide.splitlines() if line.startswith("| `zfsync"))
    for command in COMMANDS:
        assert f"`zfsync {command}" in table, f"zfsync {command} is not in docs/operating.md's command table"


@pytest.fixture
def config(tmp_path, monkeypatch, store_url):
    """A config whose store is ``z.db`` beside it, or the PostgreSQL database of ``store_url``."""
    return cli_config(tmp_path, tmp_path / "z.db", monkeypatch, store_url)


def open_store(config) -> Store:
    """The store the config names, as the CLI opens it."""
    from zfsync.config import load

    settings = load(config)
    return Store.open(settings.store_location, settings.store_password)


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text("[zalo]\napp_id = 5\n")
    assert cli.main(["--config", str(path), "status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "zfsync: config key zalo.app_id: expected a non-empty string, got 5"


def test_status_without_a_store_says_down(config, capsys, store_url):
    if store_url:
        pytest.skip("a SQLite file that is not there yet; a PostgreSQL database is made by its operator")
    assert cli.main(["--config", str(config), "status"]) == 2
    assert "no store" in capsys.readouterr().out


def test_failed_retry_skip_round_trip(config, capsys):
    store = open_store(config)
    contact = store.record_zalo_messages(
        "u1",
        "Lan",
        "",
        [NewRow("f2z", "fc-1", "text", ReplyText("hello"), 1.0), NewRow("f2z", "fc-2", "text", ReplyText("bye"), 2.0)],
        (1, "x"),
        1,
        5.0,
    )
    for row in [*store.due_heads("f2z", 10, 10)]:
        store.fail(row.id, "user has not followed the OA", "-213", time.time())
    head = store.due_heads("f2z", 10, 10)[0]
    store.fail(head.id, "too big", "-210", time.time())
    store.close()
    assert contact.display_name == "Lan"

    assert cli.main(["--config", str(config), "failed", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["error_code"] for r in rows] == ["-213", "-210"]
    assert cli.main(["--config", str(config), "retry", str(rows[0]["id"])]) == 0
    assert cli.main(["--config", str(config), "skip", str(rows[1]["id"])]) == 0
    assert cli.main(["--config", str(config), "skip", "999"]) == 1
    capsys.readouterr()
    assert cli.main(["--config", str(config), "failed"]) == 0
    assert "no failed deliveries" in capsys.readouterr().out
    store = open_store(config)
    assert [r.source_id for r in store.due_heads("f2z", time.time(), 10)] == ["fc-1"]
    store.close()


def test_retry_needs_ids_or_all(config, capsys):
    assert cli.main(["--config", str(config), "retry"]) == 2
    assert "--all" in capsys.readouterr().err


def test_status_on_a_corrupt_store_is_down_with_one_line(config, capsys, store_url):
    if store_url:
        pytest.skip("a corrupt SQLite file; PostgreSQL's files are the server's")
    (config.parent / "z.db").write_bytes(b"this is not a database, " * 100)
    assert cli.main(["--config", str(config), "status"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("zfsync: down") and "cannot be used" in out


def test_auth_refuses_an_empty_refresh_token_with_one_line(config, capsys):
    assert cli.main(["--config", str(config), "auth", "zalo", "--refresh-token", ""]) == 2
    assert "--refresh-token is empty" in capsys.readouterr().err


def test_pending_requeue_and_conversation_repair(config, capsys):
    store = open_store(config)
    contact = store.record_zalo_messages("u1", "Lan", "", [], cursor=(1, "m"), last_inbound_ms=1, now=1.0)
    store.insert_rows(contact.id, [NewRow("f2z", "r1", "text", ReplyText("hi"), 1.0)], time.time() - 3600)
    store.postpone(1, time.time() + 500, "zalo timed out", "", outcome_unknown=True)
    store.add_conversation(contact.id, "conv-1", 1.0)
    store.close()
    assert cli.main(["--config", str(config), "pending"]) == 0
    out = capsys.readouterr().out
    assert "Lan" in out and "attempts 1" in out and "zalo timed out" in out
    assert cli.main(["--config", str(config), "requeue", "1"]) == 0
    assert cli.main(["--config", str(config), "conversation", "drop", "u1"]) == 0
    assert "conv-1 dropped" in capsys.readouterr().out
    assert cli.main(["--config", str(config), "conversation", "drop", "u1"]) == 1
    assert cli.main(["--config", str(config), "conversation", "set", "u1", "conv-2"]) == 0
    store = open_store(config)
    (row,) = store.open_rows()
    assert row.next_attempt_at == 0 and row.status == "sending"  # still reconciled before a resend
    assert store.current_conversation(contact.id).fc_conversation_id == "conv-2"
    store.close()


def test_a_token_that_starts_with_a_dash_is_a_value_not_a_flag():
    from zfsync.cli import build_parser, joined_token_flags

    argv = ["--config", "c.toml", "auth", "zalo", "--refresh-token", "-abc_DEF"]
    assert joined_token_flags(argv)[-1] == "--refresh-token=-abc_DEF"
    assert build_parser().parse_args(joined_token_flags(argv)).refresh_token == "-abc_DEF"
    setup = ["setup", "--non-interactive", "--zalo-refresh-token", "-x9", "--yes"]
    assert build_parser().parse_args(joined_token_flags(setup)).zalo_refresh_token == "-x9"
