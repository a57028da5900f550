"""`zfsync setup` as a person meets it, through a real pseudo-terminal, and as Ansible runs it
(``--non-interactive``), against the simulators: then `zfsync run` carries a message both ways with nothing
else configured."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import requests

from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.zalo import ZaloSim

DEADLINE = 30.0


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ZFSYNC_")}


def until(condition) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def carries_both_ways(config: Path, zalo: ZaloSim, fc: FreshChatSim) -> str:
    """`zfsync run` on the written files alone: a customer's message reaches FreshChat, the agent's reply
    reaches Zalo. Returns what the daemon printed."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "zfsync", "--config", str(config), "run"],
        env=clean_env(),
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The first poll makes what Zalo holds the baseline: write once the daemon polls on from it.
        assert until(lambda: zalo.requests.get("/v2.0/oa/listrecentchat", 0) >= 2)
        zalo.add_customer_message("777", "Minh Khánh", text="Xin chào")
        assert until(lambda: any(m["actor_type"] == "user" for msgs in fc.messages.values() for m in msgs))
        (conversation_id,) = fc.conversations
        fc.add_agent_message(conversation_id, "Dạ, chào anh")
        assert until(lambda: [s["text"] for s in zalo.sent] == ["Dạ, chào anh"])
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=DEADLINE)
    assert daemon.returncode == 0, output
    return output


def test_setup_on_a_terminal_refuses_bad_answers_then_writes_what_runs(sims, tmp_path):
    zalo_server, fc_server = sims
    zalo: ZaloSim = zalo_server.app
    fc: FreshChatSim = fc_server.app
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "config.toml"
    config.write_text("# an older hand-made file\n")
    seen = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        [
            "-m",
            "zfsync",
            "--config",
            str(config),
            "setup",
            "--zalo-api-url",
            zalo_server.url,
            "--zalo-oauth-url",
            zalo_server.url,
        ],
        env=clean_env(),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=DEADLINE,
    )
    child.logfile_read = seen
    child.expect(r"FreshChat API URL \[https://api.freshchat.com\]: ")
    child.sendline("ftp://freshchat")
    child.expect("expected an http\\(s\\) URL")
    child.expect("FreshChat API URL")
    child.sendline(fc_server.url)
    child.expect(r"FreshChat API key \(typed text is hidden\): ")
    child.sendline("not-the-key")
    child.expect("FreshChat refused this key")
    child.expect("FreshChat API key")
    child.sendline(fc.api_key)
    child.expect(r"Channel for Zalo conversations \(number\)")
    listed = dict(re.findall(r"(\d+)\. [^\n]*\((\S+)\)", child.before))
    number = next(n for n, channel in listed.items() if channel == CHANNEL_ID)
    child.sendline("99")
    child.expect("is not one of the channels listed")
    child.expect("Channel for Zalo conversations")
    child.sendline(number)
    child.expect(r"Group \(number; Enter for none")
    child.sendline("")
    child.expect("Where zfsync keeps its store")
    child.sendline("")
    child.expect("Zalo app id: ")
    child.sendline(zalo.app_id)
    child.expect(r"Zalo app secret \(hidden\): ")
    child.sendline(zalo.app_secret)
    child.expect("Callback URL registered for the app: ")
    child.sendline("http://example.com/cb")
    child.expect("Zalo takes an https:// address here")
    child.expect("Callback URL registered for the app: ")
    child.sendline("https://example.com/zalo-callback")
    child.expect(r"(http://127\.0\.0\.1:\d+/v4/oa/permission\?\S+)")
    link = child.match.group(1)
    child.expect("Paste the address you landed on")
    # The person opens the link, accepts, and copies the address the browser lands on.
    landed = requests.get(link, allow_redirects=False, timeout=5).headers["Location"]
    assert landed.startswith("https://example.com/zalo-callback?code=")
    child.sendline(landed)
    child.expect(r"Zalo authorised the OA '.+' \(id \d+\)\. Is this the right OA\? \[Y/n\]: ")
    child.sendline("y")
    child.expect(r"Agent notes' language \[vi\]: ")
    child.sendline("")
    child.expect(r"exists: replace it \(a backup is kept\)\? \[y/N\]: ")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    printed = seen.getvalue()
    assert child.exitstatus == 0, printed
    assert "zalo: OA" in printed and "freshchat: account" in printed  # zfsync check's probes ran
    for secret in (fc.api_key, zalo.app_secret):
        assert secret not in printed  # typed without echo, never shown
    for path in (config, etc / "zfsync.env"):
        assert path.stat().st_mode & 0o777 == 0o640, path
    backups = list(etc.glob("config.toml.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == "# an older hand-made file\n"
    text = config.read_text()
    assert f'channel_id = "{CHANNEL_ID}"' in text and 'redirect_uri = "https://example.com/zalo-callback"' in text
    assert "poll_interval" not in text and "language" not in text  # only what differs from the defaults
    assert (etc / "zfsync.env").read_text().count("=") == 2
    output = carries_both_ways(config, zalo, fc)
    assert fc.api_key not in output and zalo.app_secret not in output


def test_setup_non_interactive_from_flags_and_environment(sims, tmp_path):
    zalo_server, fc_server = sims
    zalo: ZaloSim = zalo_server.app
    fc: FreshChatSim = fc_server.app
    config = tmp_path / "config.toml"
    env = {
        **clean_env(),
        "ZFSYNC_FRESHCHAT_API_KEY": fc.api_key,
        "ZFSYNC_ZALO_APP_SECRET": zalo.app_secret,
        "ZFSYNC_SETUP_ZALO_REFRESH_TOKEN": zalo.mint_tokens()[1],
    }
    flags = [
        "--non-interactive",
        "--freshchat-api-url", fc_server.url,
        "--channel-id", CHANNEL_ID,
        "--group-id", "-",
        "--zalo-app-id", zalo.app_id,
        "--redirect-uri", "https://example.com/zalo-callback",
        "--zalo-api-url", zalo_server.url,
        "--zalo-oauth-url", zalo_server.url,
        "--language", "en",
        "--yes",
    ]  # fmt: skip
    missing = subprocess.run(
        [sys.executable, "-m", "zfsync", "--config", str(config), "setup", *flags[:-1]],
        env={**env, "ZFSYNC_ZALO_APP_SECRET": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].startswith("zfsync: zfsync setup --non-interactive: the environment")
    assert "ZFSYNC_ZALO_APP_SECRET" in missing.stderr and not config.exists()
    done = subprocess.run(
        [sys.executable, "-m", "zfsync", "--config", str(config), "setup", *flags],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'language = "en"' in config.read_text()
    assert fc.api_key not in done.stdout + done.stderr
    # Run again with another answer and without --force: the files stand, and the run says how to replace them.
    before = config.read_text()
    again = subprocess.run(
        [sys.executable, "-m", "zfsync", "--config", str(config), "setup", *flags[:-3], "--language", "vi", "--yes"],
        env={**env, "ZFSYNC_SETUP_ZALO_REFRESH_TOKEN": zalo.mint_tokens()[1]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 2 and "pass --force" in again.stderr, again.stderr
    assert config.read_text() == before and not list(tmp_path.glob("config.toml.bak-*"))
    carries_both_ways(config, zalo, fc)
