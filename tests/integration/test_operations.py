"""Token lifecycle and credential recovery against the simulators: nothing lost, no restart needed."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from devtools import pgcluster
from tests.conftest import SIMS, SIMS_IN_PROCESS, cli_config, on, store_section
from zfsync import cli
from zfsync.cli import status_text
from zfsync.runtime import status
from zfsync.runtime.daemon import Daemon
from zfsync.sync.engine import BAD_CREDENTIALS, OK

KHANH = "2512007384617209999"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def write_config(b, tmp_path):
    """A config file for the CLI that points at the bridge's simulators and store."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[zalo]\napp_id = "sim-app"\napi_url = "{b.zalo_url}"\noauth_url = "{b.zalo_url}"\n'
        f'[freshchat]\napi_url = "{b.fc_url}"\nchannel_id = "{b.settings.freshchat.channel_id}"\n'
        + store_section(b.settings.store_path, b.settings.store_url)
    )
    (tmp_path / ".env").write_text(
        "ZFSYNC_ZALO_APP_SECRET=sim-secret\nZFSYNC_FRESHCHAT_API_KEY=sim-key\n"
        f"ZFSYNC_STORE_PASSWORD={pgcluster.PASSWORD}\n"
    )
    (tmp_path / ".env").chmod(0o600)
    return path


def zalo_health(b) -> str:
    return b.store.health()["zalo"]["state"]


@on(SIMS)
def test_tokens_are_refreshed_ahead_of_expiry_and_the_old_refresh_token_is_spent(bridge):
    old = bridge.store.load_tokens()
    bridge.zalo.clock_offset += 21 * 3600  # both clocks move 21 h: the 25 h token has 4 h left
    bridge.clock.advance(21 * 3600)
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="sau 21 giờ")
    bridge.cycle()
    new = bridge.store.load_tokens()
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token
    assert old.refresh_token not in bridge.zalo.refresh_tokens  # single use: spent by the refresh
    assert texts(bridge.customer_messages(KHANH)) == ["sau 21 giờ"]
    assert zalo_health(bridge) == OK


@on(SIMS)
def test_a_token_that_expires_in_the_middle_of_a_batch_is_refreshed_once_and_the_call_retried(bridge):
    for i in range(25):
        bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"m{i}")
    # Zalo's clock runs ahead of ours: our token looks valid to us, Zalo answers -220 part-way through.
    real = bridge.zalo.listrecentchat
    calls = []

    def expire_after_first_page(request):
        calls.append(1)
        if len(calls) == 2:
            bridge.zalo.clock_offset += 26 * 3600
        return real(request)

    bridge.zalo.listrecentchat = expire_after_first_page
    bridge.cycle()
    assert texts(bridge.customer_messages(KHANH)) == [f"m{i}" for i in range(25)]
    assert zalo_health(bridge) == OK


@on(SIMS)
def test_refresh_token_used_twice_then_auth_recovers_without_restart_or_loss(bridge, tmp_path):
    config = write_config(bridge, tmp_path)
    stored = bridge.store.load_tokens()
    bridge.zalo.refresh_tokens.discard(stored.refresh_token)  # another copy already redeemed it
    bridge.zalo.clock_offset += 26 * 3600  # and the access token has expired
    bridge.clock.advance(26 * 3600)
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="trong lúc hỏng")
    bridge.cycle()
    assert zalo_health(bridge) == BAD_CREDENTIALS
    report = status.collect(bridge.store, now=bridge.clock())
    assert report["sides"]["zalo"]["fix"].startswith("run `zfsync auth zalo --refresh-token TOKEN`")
    assert report["zalo_token"]["dead"]
    requests_while_dead = sum(bridge.zalo.requests.values())
    bridge.cycle(5)
    assert sum(bridge.zalo.requests.values()) == requests_while_dead  # no calls with a dead token

    # The operator imports a fresh refresh token; the same engine carries on once the pause is over.
    # (in its own process, as an operator runs it: the models bind to one store per process)
    auth = subprocess.run(
        [
            sys.executable,
            "-m",
            "zfsync",
            "--config",
            str(config),
            "auth",
            "zalo",
            f"--refresh-token={bridge.zalo.mint_tokens()[1]}",  # tokens may start with "-"
        ],
        capture_output=True,
        text=True,
    )
    assert auth.returncode == 0, auth.stderr
    assert "refresh token redeemed" in auth.stdout
    bridge.clock.advance(31)
    bridge.cycle()
    assert zalo_health(bridge) == OK
    assert texts(bridge.customer_messages(KHANH)) == ["trong lúc hỏng"]


@on(SIMS)
def test_freshchat_401_shows_the_fix_and_a_replaced_key_is_picked_up_without_restart(bridge, tmp_path):
    config = write_config(bridge, tmp_path)
    bridge.settings = replace(bridge.settings, source=config)
    client = bridge.engine.freshchat_reader.fc
    daemon = Daemon(
        bridge.settings, bridge.store, bridge.engine, reload_secrets=cli.secret_reloader(bridge.settings, client)
    )
    bridge.fc.api_key = "rotated-key"  # an admin revoked the key zfsync uses
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="chờ khóa mới")
    bridge.cycle()
    assert bridge.store.health()["freshchat"]["state"] == BAD_CREDENTIALS
    report = status.collect(bridge.store, now=bridge.clock())
    assert "ZFSYNC_FRESHCHAT_API_KEY" in report["sides"]["freshchat"]["fix"]
    assert "rotated-key" not in status_text.render(report, now=bridge.clock())

    (tmp_path / "zfsync.env").write_text("ZFSYNC_FRESHCHAT_API_KEY=rotated-key\n")
    daemon.report.heartbeat()
    bridge.clock.advance(31)
    bridge.cycle()
    assert bridge.store.health()["freshchat"]["state"] == OK
    assert texts(bridge.customer_messages(KHANH)) == ["chờ khóa mới"]


@on(SIMS_IN_PROCESS)
def test_a_backup_made_while_running_restores_without_duplicates(bridge, tmp_path, monkeypatch):
    import os
    import stat

    from zfsync import cli

    b = bridge
    b.zalo.add_customer_message("2512007384617209999", "Khánh", text="trước khi sao lưu")
    b.cycle()
    b.fc.add_agent_message(b.conversation_of("2512007384617209999"), "đã nhận")
    b.settle(rounds=2)
    config = cli_config(tmp_path, b.settings.store_path, monkeypatch)
    copy = tmp_path / "backup" / "zfsync.db"
    assert cli.main(["--config", str(config), "backup", str(copy)]) == 0  # the bridge's store stays open
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert cli.main(["--config", str(config), "backup", str(copy)]) == 1  # never overwrites
    # Restore onto a fresh install: the copy becomes the store, and everything resumes once.
    b.store.close()
    os.replace(copy, b.settings.store_path)
    b.restart()
    b.zalo.add_customer_message("2512007384617209999", "Khánh", text="sau khi khôi phục")
    b.settle(rounds=3)
    customer = [p["text"]["content"] for m in b.customer_messages("2512007384617209999") for p in m["message_parts"]]
    assert customer == ["trước khi sao lưu", "sau khi khôi phục"]
    assert b.sent_to("2512007384617209999") == ["đã nhận"]
