"""The store as a side of its own: the real daemon on a store whose disk fills up, then frees up again."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_daemon import until, zfsync
from tests.integration.test_isolation import Daemon, customer_texts, sims  # noqa: F401  (the fixture)
from zfsync.sim.freshchat import CHANNEL_ID

A = "8400000000000000001"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 16 MiB filesystem of its own (tmpfs), for a store to fill (its WAL alone grows to 4 MB)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        if os.environ.get("CI") or os.environ.get("ZFSYNC_REQUIRE_POSTGRES"):
            pytest.fail(f"a tmpfs is needed on CI: {done.stderr.decode().strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    return filler


def status(config: Path) -> tuple[int, dict]:
    done = zfsync(config, "status", "--json")
    return done.returncode, json.loads(done.stdout)


def test_a_full_disk_shows_store_down_logs_a_few_lines_and_loses_nothing(tmp_path, sims, small_disk):  # noqa: F811
    zalo_server, fc_server = sims
    zalo, fc = zalo_server.app, fc_server.app
    config = tmp_path / "config.toml"
    config.write_text(
        f'[zalo]\napp_id = "sim-app"\napi_url = "{zalo_server.url}"\noauth_url = "{zalo_server.url}"\n'
        f'poll_interval = 1\n[freshchat]\napi_url = "{fc_server.url}"\nchannel_id = "{CHANNEL_ID}"\n'
        f'hot_interval = 1\n[store]\npath = "{small_disk}/zfsync.db"\n[log]\nformat = "json"\n'
    )
    (tmp_path / ".env").write_text("ZFSYNC_ZALO_APP_SECRET=sim-secret\nZFSYNC_FRESHCHAT_API_KEY=sim-key\n")
    (tmp_path / ".env").chmod(0o600)
    assert zfsync(config, "auth", "zalo", f"--refresh-token={zalo.mint_tokens()[1]}").returncode == 0
    daemon = Daemon(config)
    zalo.add_customer_message(A, "Khách 1", text="trước khi đầy")
    assert until(lambda: customer_texts(fc, A) == ["trước khi đầy"])

    filler = fill(small_disk)
    for i in range(5):
        zalo.add_customer_message(A, "Khách 1", text=f"trong lúc đầy {i}")
    assert until(lambda: status(config)[0] == 2)  # within a poll or two, not when the heartbeat goes stale
    _, report = status(config)
    assert report["store"]["up"] is False and "free disk space" in report["store"]["fix"]
    shown = zfsync(config, "status").stdout
    assert "store      DOWN" in shown and "fix: free disk space" in shown
    lines_while_full = len(daemon.lines)
    assert until(lambda: any(e["event"] == "store_failing" for e in daemon.events()))

    filler.unlink()
    assert until(lambda: len(customer_texts(fc, A)) == 6)
    assert customer_texts(fc, A) == ["trước khi đầy"] + [f"trong lúc đầy {i}" for i in range(5)]
    assert until(lambda: status(config)[0] == 0)
    assert daemon.stop() == 0
    events = daemon.events()
    store_lines = [e for e in events if e["event"].startswith("store_")]
    assert [e["event"] for e in store_lines] == ["store_failing", "store_recovered"]
    assert not any("exception" in e for e in events)  # no traceback per tick
    assert len(daemon.lines) - lines_while_full < 60  # the outage did not fill the journal
