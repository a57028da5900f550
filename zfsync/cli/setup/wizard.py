"""The setup run itself: FreshChat, the store, Zalo, the language, then the files and the tokens."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zfsync.cli.setup.answers import Asker, Refused, after_resolve_choice, choose, freshchat_url, language_choice, until
from zfsync.cli.setup.files import (
    config_text,
    env_text,
    hand_store_to_service,
    plan_write,
    service_ids,
    store_writable,
    write_file,
)
from zfsync.cli.setup.zalo_grant import ZaloGrant
from zfsync.cli.store import forget_permission_refusals
from zfsync.config import keys as config_keys
from zfsync.domain import ZaloTokens
from zfsync.domain.errors import AuthError, ConfigError, ZfsyncError
from zfsync.sides.freshchat.client import FreshChatClient
from zfsync.store import Store

FRESHCHAT_HOSTS = (
    "https://api.freshchat.com (US and global)",
    "https://api.eu.freshchat.com (Europe)",
    "https://api.in.freshchat.com (India)",
    "https://api.au.freshchat.com (Australia)",
    "or your account's own https://<account>.freshchat.com",
)
ETC = Path("/etc/zfsync")


def instance_of(config_path: Path) -> str:
    """The instance a config under /etc/zfsync/<instance>/ belongs to ("" for /etc/zfsync/ itself)."""
    return config_path.parent.name if config_path.parent.parent == ETC else ""


def unit_of(config_path: Path) -> str:
    instance = instance_of(config_path)
    return f"zfsync@{instance}" if instance else "zfsync"


@dataclass
class Setup:
    asker: Asker
    config_path: Path
    insecure: bool = False  # plain http allowed (the simulators, in tests)
    zalo_api_url: str = ""
    zalo_oauth_url: str = ""
    force: bool = False
    start: bool | None = None  # None: ask (under systemd)
    probe: Callable[[Path], int] = lambda path: 0

    def run(self) -> int:
        say = self.asker.say
        say("zfsync setup: FreshChat first, then Zalo; nothing is written until both work.\n")
        url, key, channel, group = self.freshchat()
        say()
        store_path = self.store_path()
        app_id, app_secret, redirect_uri, oa, tokens = self.zalo()
        language = until(self.asker, lambda: language_choice(self.asker.ask("language", "Agent notes' language", "vi")))
        after_resolve = until(
            self.asker,
            lambda: after_resolve_choice(
                self.asker.ask(
                    "after_resolve",
                    "A customer writes after their conversation was resolved: reopen it (within 24 h; a new one "
                    "after) or always open a new one? (reopen/new)",
                    "reopen",
                )
            ),
        )
        values: dict[str, dict[str, Any]] = {
            "zalo": {
                "app_id": app_id,
                "redirect_uri": redirect_uri,
                "api_url": self.zalo_api_url or config_keys.SCHEMA["zalo"]["api_url"][0],
                "oauth_url": self.zalo_oauth_url or config_keys.SCHEMA["zalo"]["oauth_url"][0],
                "allow_insecure_http": self.insecure,
            },
            "freshchat": {
                "api_url": url,
                "channel_id": str(channel["id"]),
                "allow_insecure_http": self.insecure,
            },
            "sync": {"language": language, "after_resolve": after_resolve},
            "store": {"path": str(store_path)},
        }
        routes = [{"oa": oa, "channel_id": str(channel["id"]), "group_id": str(group["id"])}] if group else []
        env_path = self.config_path.with_name("zfsync.env")
        say()
        # Everything is asked and checked before anything is written: a run that stops leaves a live desk
        # exactly as it was (its config, its secrets, the tokens its daemon uses).
        writes = [
            plan_write(path, text, self.asker, self.force)
            for path, text in ((self.config_path, config_text(values, routes)), (env_path, env_text(key, app_secret)))
        ]
        store_writable(store_path)
        question = f"Write {self.config_path}, {env_path} and the Zalo tokens into {store_path}?"
        if not self.asker.confirm("write", question, True):
            raise ConfigError("zfsync setup: nothing was written")
        for planned in writes:
            if planned is None:
                continue
            backup = write_file(planned, 0o640)
            say(f"wrote {planned.path} (mode 0640{', root:zfsync' if service_ids() else ''})")
            if backup is not None:
                say(f"  the old one is kept as {backup}")
        self.save_tokens(store_path, tokens)
        hand_store_to_service(store_path)
        say("\nzfsync check:")
        problems = self.probe(self.config_path)
        if problems:
            say("setup: the checks above found problems; fix them and run `zfsync check` again")
            return 1
        self.offer_start()
        return 0

    # --- FreshChat -----------------------------------------------------------------------------------

    def freshchat(self) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
        asker = self.asker
        asker.say("FreshChat's API URL is under Admin > Configure > API Tokens, for example:")
        for host in FRESHCHAT_HOSTS:
            asker.say(f"  {host}")
        url = until(
            asker,
            lambda: freshchat_url(
                asker.ask("freshchat_api_url", "FreshChat API URL", FRESHCHAT_HOSTS[0].split()[0]), self.insecure
            ),
        )

        def key_works() -> tuple[str, list[dict[str, Any]]]:
            key = asker.ask("freshchat_api_key", "FreshChat API key (typed text is hidden)", secret=True)
            if not key:
                raise Refused("the key is empty: copy it from Admin > Configure > API Tokens")
            client = FreshChatClient(url, key)
            try:
                client.account_configuration()
                return key, client.channels()
            except AuthError:
                raise Refused("FreshChat refused this key (401): copy it again from Admin > API Tokens") from None
            except ZfsyncError as exc:
                raise Refused(f"FreshChat at {url} did not answer as expected ({exc}): check the URL and key") from None

        key, channels = until(asker, key_works)
        if not channels:
            raise ConfigError("zfsync setup: this FreshChat account has no channel (topic): create one, then run again")
        asker.say("FreshChat: the key works. Channels (topics) of the account:")
        for number, channel in enumerate(channels, start=1):
            asker.say(f"  {number}. {channel.get('name', '')} ({channel.get('id')})")
        default = "1" if len(channels) == 1 else ""
        channel = until(
            asker,
            lambda: choose(
                channels, asker.ask("channel_id", "Channel for Zalo conversations (number)", default), "channels"
            ),
        )
        group = self.group(FreshChatClient(url, key))
        return url, key, channel, group

    def group(self, client: FreshChatClient) -> dict[str, Any] | None:
        asker = self.asker
        try:
            groups = client.groups()
        except ZfsyncError:
            return None
        if not groups:
            return None
        asker.say("Groups of the account (new Zalo conversations may be assigned to one):")
        for number, group in enumerate(groups, start=1):
            asker.say(f"  {number}. {group.get('name', '')} ({group.get('id')})")

        def pick() -> dict[str, Any] | None:
            answer = asker.ask("group_id", "Group (number; Enter for none: FreshChat's own rules assign)", "-")
            return None if answer in ("-", "0") else choose(groups, answer, "groups")

        return until(asker, pick)

    # --- the store and Zalo --------------------------------------------------------------------------

    def store_path(self) -> Path:
        beside = self.config_path.parent
        instance = instance_of(self.config_path)
        if beside == ETC or instance:
            default = str(Path("/var/lib/zfsync", instance, "zfsync.db"))
        else:
            default = str(beside / "zfsync.db")

        def usable() -> Path:
            path = Path(self.asker.ask("store_path", "Where zfsync keeps its store (SQLite file)", default))
            if not path.parent.is_dir():
                raise Refused(f"{path.parent} does not exist: create it (scripts/install does) or choose another place")
            return path

        return until(self.asker, usable)

    def zalo(self) -> tuple[str, str, str, str, ZaloTokens]:
        """The app, its callback, the OA the person grants and confirms, and its tokens (`ZaloGrant`)."""
        return ZaloGrant(self.asker, self.insecure, self.zalo_api_url, self.zalo_oauth_url).run()

    def save_tokens(self, store_path: Path, tokens: ZaloTokens) -> None:
        """The Zalo tokens into the store, once everything else is written: a running daemon takes them up."""
        try:
            store = Store.open(store_path)
        except ZfsyncError as exc:
            raise ConfigError(f"zfsync setup: cannot open the store {store_path}: {exc}") from None
        try:
            store.save_tokens(tokens, time.time())
            forget_permission_refusals(store)
        finally:
            store.close()
        self.asker.say(f"stored the Zalo tokens in {store_path}")

    # --- systemd -------------------------------------------------------------------------------------

    def offer_start(self) -> None:
        asker = self.asker
        under_systemd = Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None
        unit = unit_of(self.config_path)
        installed = Path(f"/etc/systemd/system/{unit.split('@')[0]}{'@' if '@' in unit else ''}.service").exists()
        if not (under_systemd and installed and os.geteuid() == 0):
            asker.say(f"\nDone. Start it with `zfsync --config {self.config_path} run` (or its systemd unit).")
            return
        start = (
            self.start
            if self.start is not None
            else asker.confirm("start", f"Start zfsync now (systemctl enable --now {unit})?", True)
        )
        if not start:
            asker.say(f"\nDone. Start it later with `systemctl enable --now {unit}`.")
            return
        done = subprocess.run(["systemctl", "enable", "--now", unit], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ConfigError(f"zfsync setup: systemctl enable --now {unit} failed: {done.stderr.strip()}")
        asker.say(f"\n{unit} is running. `zfsync status` shows its health; `journalctl -u {unit} -f` its log.")
