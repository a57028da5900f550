"""The real `zfsync run` process against the simulators, watched through a fake NOTIFY_SOCKET."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.zalo import ZaloSim

DEADLINE = 30.0


def write_config(tmp_path: Path, zalo_url: str, fc_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[zalo]\napp_id = "sim-app"\napi_url = "{zalo_url}"\noauth_url = "{zalo_url}"\npoll_interval = 1\n'
        f'[freshchat]\napi_url = "{fc_url}"\nchannel_id = "{CHANNEL_ID}"\nhot_interval = 1\n'
        '[store]\npath = "zfsync.db"\n[metrics]\ntextfile = "zfsync.prom"\ninterval = 1\n[log]\nformat = "json"\n'
    )
    (tmp_path / ".env").write_text("ZFSYNC_ZALO_APP_SECRET=sim-secret\nZFSYNC_FRESHCHAT_API_KEY=sim-key\n")
    (tmp_path / ".env").chmod(0o600)
    return path


def zfsync(config: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zfsync", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


class NotifyListener:
    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(DEADLINE)

    def wait_for(self, wanted: str) -> list[str]:
        """Block on the socket (no sleeping) until a datagram carries ``wanted``."""
        seen = []
        while True:
            states = self.sock.recv(4096).decode().split("\n")
            seen += states
            if wanted in states:
                return seen


def until(condition) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_daemon_bridges_both_ways_notifies_systemd_and_restarts_cleanly(sims, tmp_path):
    zalo_server, fc_server = sims
    zalo: ZaloSim = zalo_server.app
    fc: FreshChatSim = fc_server.app
    config = write_config(tmp_path, zalo_server.url, fc_server.url)
    auth = zfsync(config, "auth", "zalo", f"--refresh-token={zalo.mint_tokens()[1]}")
    assert auth.returncode == 0, auth.stderr
    listener = NotifyListener(tmp_path / "notify.sock")
    env = {**os.environ, "NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "2000000"}
    env["WATCHDOG_PID"] = ""

    def start() -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "zfsync", "--config", str(config), "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        listener.wait_for("READY=1")
        return process

    daemon = start()
    listener.wait_for("WATCHDOG=1")
    zalo.add_customer_message("777", "Minh Khánh", text="Xin chào")
    assert until(lambda: any(m["actor_type"] == "user" for msgs in fc.messages.values() for m in msgs))
    (conversation_id,) = fc.conversations
    fc.add_agent_message(conversation_id, "Chào anh")
    assert until(lambda: [s["text"] for s in zalo.sent] == ["Chào anh"])
    # The daemon writes its metrics for node_exporter on its own, counters included.
    textfile = tmp_path / "zfsync.prom"
    assert until(lambda: 'zfsync_messages_total{direction="f2z",kind="text"} 1.0' in _read(textfile))
    assert 'zfsync_api_requests_total{endpoint="/v3.0/oa/message/cs",outcome="ok",side="zalo"}' in _read(textfile)

    daemon.send_signal(signal.SIGTERM)
    listener.wait_for("STOPPING=1")
    output, _ = daemon.communicate(timeout=DEADLINE)
    assert daemon.returncode == 0
    assert "sim-secret" not in output and "sim-key" not in output

    zalo.add_customer_message("777", "Minh Khánh", text="written while stopped")
    daemon = start()
    polls = zalo.requests["/v2.0/oa/listrecentchat"]
    assert until(lambda: zalo.requests["/v2.0/oa/listrecentchat"] >= polls + 3)
    daemon.send_signal(signal.SIGTERM)
    second_output, _ = daemon.communicate(timeout=DEADLINE)
    customer = [
        m["message_parts"][0]["text"]["content"] for m in fc.messages[conversation_id] if m["actor_type"] == "user"
    ]
    assert customer == ["Xin chào", "written while stopped"]
    assert [s["text"] for s in zalo.sent] == ["Chào anh"]
    status = zfsync(config, "status", "--json")
    assert status.returncode == 2  # the daemon is stopped: down
    assert '"state": "OK"' in status.stdout
    printed = [output, second_output, auth.stdout, auth.stderr, status.stdout]
    for args in (["status"], ["failed"], ["status", "--prometheus", str(tmp_path / "p.prom")]):
        printed.append(zfsync(config, *args).stdout)
    assert_no_secret_anywhere(tmp_path, printed)


def assert_no_secret_anywhere(tmp_path: Path, printed: list[str]) -> None:
    """Secrets may live in the token table and the .env file, and nowhere else: not in anything printed,
    not in any other table, not in the Prometheus file."""
    import sqlite3

    db = sqlite3.connect(tmp_path / "zfsync.db")
    (access, refresh) = db.execute("SELECT access_token, refresh_token FROM token").fetchone()
    secrets = ["sim-secret", "sim-key", access, refresh]
    stored = []
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'token'"):
        stored += [repr(row) for row in db.execute(f'SELECT * FROM "{table}"')]
    db.close()
    everything = "\n".join(printed + stored + [(tmp_path / "p.prom").read_text()])
    assert len(everything) > 1000  # the scan saw a real session
    for secret in secrets:
        assert secret not in everything


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
