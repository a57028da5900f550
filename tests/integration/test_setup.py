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
import pytest
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
    child.expect(r"\(reopen/new\) \[reopen\]: ")
    child.sendline("never")
    child.expect("answer reopen or new")
    child.expect(r"\(reopen/new\) \[reopen\]: ")
    child.sendline("new")
    child.expect(r"exists: replace it \(a backup is kept\)\? \[y/N\]: ")
    child.sendline("y")
    child.expect(r"Write .*config\.toml, .*zfsync\.env and the Zalo tokens into .*\? \[Y/n\]: ")
    child.sendline("")
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
    assert 'after_resolve = "new"' in text
    assert (etc / "zfsync.env").read_text().count("=") == 2
    output = carries_both_ways(config, zalo, fc)
    assert fc.api_key not in output and zalo.app_secret not in output


def non_interactive(zalo_server, fc_server) -> tuple[dict[str, str], list[str]]:
    """The environment and the flags of a `zfsync setup --non-interactive` against the simulators."""
    zalo: ZaloSim = zalo_server.app
    fc: FreshChatSim = fc_server.app
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
    ]  # fmt: skip
    return env, flags


def test_setup_non_interactive_from_flags_and_environment(sims, tmp_path):
    zalo_server, fc_server = sims
    zalo: ZaloSim = zalo_server.app
    fc: FreshChatSim = fc_server.app
    config = tmp_path / "config.toml"
    env, flags = non_interactive(zalo_server, fc_server)
    flags += ["--language", "en", "--yes"]
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


class Abort(BaseException):
    """The person pressed Ctrl-C (or the run died) at a question."""


class Script:
    """A person at the terminal, in-process: answers by question key, stops at the ``abort_at``-th question."""

    interactive = True

    def __init__(self, answers: dict[str, object], abort_at: int | None = None):
        self.answers = answers
        self.abort_at = abort_at
        self.asked: list[str] = []
        self.said: list[str] = []

    def _next(self, key: str) -> object:
        if len(self.asked) == self.abort_at:
            raise Abort(key)
        self.asked.append(key)
        answer = self.answers[key]
        return answer(self) if callable(answer) else answer

    def ask(self, key: str, question: str, default: str = "", secret: bool = False) -> str:
        return str(self._next(key)) or default  # Enter takes the default

    def confirm(self, key: str, question: str, default: bool) -> bool:
        return bool(self._next(key))

    def refused(self, reason: str) -> None:
        raise AssertionError(f"refused: {reason}")

    def say(self, text: str = "") -> None:
        self.said.append(text)


def desk_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_setup_stopped_at_any_question_leaves_a_live_desk_exactly_as_it_was(sims, tmp_path):
    from zfsync.cli.setup import Setup
    from zfsync.domain.errors import ConfigError

    zalo_server, fc_server = sims
    zalo: ZaloSim = zalo_server.app
    fc: FreshChatSim = fc_server.app
    etc = tmp_path / "etc"
    etc.mkdir()
    config = etc / "config.toml"

    def channel(script: Script) -> str:
        listed = dict(re.findall(r"(\d+)\. [^\n]*\((\S+)\)", "\n".join(script.said)))
        return next(n for n, found in listed.items() if found == CHANNEL_ID)

    def landed(script: Script) -> str:
        link = next(t.strip() for t in reversed(script.said) if "/v4/oa/permission?" in t)
        return requests.get(link, allow_redirects=False, timeout=5).headers["Location"]

    def answers(language: str, **more: object) -> dict[str, object]:
        return {
            "freshchat_api_url": fc_server.url,
            "freshchat_api_key": fc.api_key,
            "channel_id": channel,
            "group_id": "-",
            "store_path": "",
            "zalo_app_id": zalo.app_id,
            "zalo_app_secret": zalo.app_secret,
            "redirect_uri": "https://example.com/zalo-callback",
            "zalo_grant": landed,
            "yes": True,
            "language": language,
            "after_resolve": "",
            "overwrite": True,
            "write": True,
            **more,
        }

    def setup(script: Script) -> int:
        return Setup(
            script,  # type: ignore[arg-type]
            config,
            insecure=True,
            zalo_api_url=zalo_server.url,
            zalo_oauth_url=zalo_server.url,
            start=False,
            probe=lambda path: 0,
        ).run()

    assert setup(Script(answers("vi"))) == 0  # the live desk
    before = desk_files(etc)
    assert {"config.toml", "zfsync.env", "zfsync.db"} <= set(before)
    # The same run with other answers, declined at its last question: every question it asks, in order.
    declined = Script(answers("en", write=False))
    with pytest.raises(ConfigError, match="nothing was written"):
        setup(declined)
    assert desk_files(etc) == before
    assert declined.asked[-4:] == ["language", "after_resolve", "overwrite", "write"] and "yes" in declined.asked
    for stop in range(len(declined.asked)):
        with pytest.raises(Abort):
            setup(Script(answers("en"), abort_at=stop))
        assert desk_files(etc) == before, f"stopped at {declined.asked[stop]!r}: the desk changed"
    # The wrong OA, then nothing: the running daemon keeps its tokens.
    with pytest.raises(ConfigError, match="nothing was written"):
        setup(Script(answers("en", yes=True, write=False)))
    assert desk_files(etc) == before
    # Said yes to everything: written, the old files kept under backups of their own, twice in one second.
    assert setup(Script(answers("en"))) == 0 and setup(Script(answers("vi"))) == 0
    backups = [(etc / name).read_bytes() for name in sorted(p.name for p in etc.glob("config.toml.bak-*"))]
    assert before["config.toml"] in backups and len(backups) == 2  # neither original lost


def test_setup_into_a_place_it_cannot_write_says_so_in_one_line_and_writes_nothing(sims, tmp_path):
    zalo_server, fc_server = sims
    blocker = tmp_path / "etc"
    blocker.write_text("a file where a folder should be\n")
    config = blocker / "zfsync" / "config.toml"
    env, flags = non_interactive(zalo_server, fc_server)
    flags += ["--store-path", str(tmp_path / "zfsync.db"), "--yes"]
    done = subprocess.run(
        [sys.executable, "-m", "zfsync", "--config", str(config), "setup", *flags],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert "cannot write" in done.stderr
    assert blocker.read_text() == "a file where a folder should be\n" and not (tmp_path / "zfsync.db").exists()


def test_a_store_setup_could_not_write_is_refused_before_any_file_is(tmp_path):
    from zfsync.cli.setup.files import store_writable
    from zfsync.domain.errors import ConfigError

    store_writable(tmp_path / "zfsync.db")  # a new store in a writable folder
    (tmp_path / "a-folder.db").mkdir()
    (tmp_path / "a-file").write_text("")
    for unwritable in (tmp_path / "a-folder.db", tmp_path / "a-file" / "zfsync.db"):
        with pytest.raises(ConfigError, match="cannot write the store"):
            store_writable(unwritable)
