"""`zfsync setup`: a new desk's first run, from nothing to a checked config, stored Zalo tokens and a
running unit, without reading the config reference.

It asks for FreshChat's API URL and key and checks them at once, lets the person pick the channel (and a
group) from the account's own lists, asks for the Zalo app, explains the callback URL, prints the OAuth v4
link with PKCE and takes back the address the browser landed on (or the bare code, or a refresh token),
shows which OA was authorised and asks to confirm (asking Zalo with the new tokens from a scratch store);
asks before replacing any file and once more before writing; only then writes ``config.toml`` (only what
differs from the defaults), ``zfsync.env`` (the two secrets), each atomically with its owner and mode,
keeping a backup under a name of its own, and last the Zalo tokens into the store. A run that stops at any
point before that leaves a live desk exactly as it was. Then it runs the probes of `zfsync check` and,
under systemd, offers to start the unit. A bad answer gets one line saying why, and the question again;
secrets are read without echo and never printed.

``--non-interactive`` takes every answer from flags or environment variables instead (for Ansible): the
secrets only from the environment (a flag would show in ``ps``), the Zalo grant as a refresh token.
"""

from __future__ import annotations

import argparse
import getpass
import grp
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from zfsync import config
from zfsync.cli.store import forget_permission_refusals
from zfsync.config import keys as config_keys
from zfsync.domain import ZaloTokens
from zfsync.errors import AuthError, ConfigError, ZfsyncError
from zfsync.sides.freshchat.client import FreshChatClient
from zfsync.sides.zalo import oauth
from zfsync.store import Store

T = TypeVar("T")

FRESHCHAT_HOSTS = (
    "https://api.freshchat.com (US and global)",
    "https://api.eu.freshchat.com (Europe)",
    "https://api.in.freshchat.com (India)",
    "https://api.au.freshchat.com (Australia)",
    "or your account's own https://<account>.freshchat.com",
)
ZALO_APPS = "https://developers.zalo.me/apps"
SERVICE_USER = "zfsync"  # the unit's User= and Group= (deploy/systemd/zfsync.service)
ETC = Path("/etc/zfsync")


def instance_of(config_path: Path) -> str:
    """The instance a config under /etc/zfsync/<instance>/ belongs to ("" for /etc/zfsync/ itself)."""
    return config_path.parent.name if config_path.parent.parent == ETC else ""


def unit_of(config_path: Path) -> str:
    instance = instance_of(config_path)
    return f"zfsync@{instance}" if instance else "zfsync"


class Refused(Exception):
    """An answer that cannot be used; its text is the one line the person reads."""


# --- where answers come from ----------------------------------------------------------------------------


class Prompter:
    """Questions on a terminal: secrets are read without echo; a refused answer is said and asked again."""

    interactive = True

    def ask(self, key: str, question: str, default: str = "", secret: bool = False) -> str:
        shown = f" [{default}]" if default and not secret else ""
        prompt = f"{question}{shown}: "
        answer = getpass.getpass(prompt) if secret else input(prompt)
        return answer.strip() or default

    def confirm(self, key: str, question: str, default: bool) -> bool:
        while True:
            answer = input(f"{question} [{'Y/n' if default else 'y/N'}]: ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes", "c", "có"):
                return True
            if answer in ("n", "no", "k", "không"):
                return False
            print("  answer y or n")

    def refused(self, reason: str) -> None:
        print(f"  {reason}")

    def say(self, text: str = "") -> None:
        print(text)


@dataclass
class Given:
    """Answers given up front (``--non-interactive``): flags, else environment variables; nothing is asked,
    and a refused answer ends the run with its one line."""

    values: dict[str, str]
    yes: bool = False
    interactive: bool = field(default=False, init=False)

    def ask(self, key: str, question: str, default: str = "", secret: bool = False) -> str:
        value = self.values.get(key, "").strip()
        if value:
            return value
        if default:
            return default
        raise ConfigError(f"zfsync setup --non-interactive: {_source(key)} is missing ({question.lower()})")

    def confirm(self, key: str, question: str, default: bool) -> bool:
        # The OA and the writing are confirmed by a flag (--yes); replacing a file takes --force, starting
        # takes --start.
        return self.yes if key in ("yes", "write") else False

    def refused(self, reason: str) -> None:
        raise ConfigError(f"zfsync setup: {reason}")

    def say(self, text: str = "") -> None:
        print(text)


Asker = Prompter | Given

SECRET_ENV = {"freshchat_api_key": "ZFSYNC_FRESHCHAT_API_KEY", "zalo_app_secret": "ZFSYNC_ZALO_APP_SECRET"}
ENV_PREFIX = "ZFSYNC_SETUP_"


def _source(key: str) -> str:
    if key in SECRET_ENV:
        return f"the environment variable {SECRET_ENV[key]}"
    return f"--{key.replace('_', '-')} (or {ENV_PREFIX}{key.upper()})"


def given_answers(args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """Flags first, then ``ZFSYNC_SETUP_*`` variables; the secrets from their usual variables only."""
    found: dict[str, str] = {}
    for key in FLAGS:
        value = getattr(args, key, None)
        found[key] = str(value) if value else env.get(ENV_PREFIX + key.upper(), "")
    for key, variable in SECRET_ENV.items():
        found[key] = env.get(variable, "")
    return found


def until(asker: Asker, attempt: Callable[[], T]) -> T:
    """``attempt`` again until it is not refused (a non-interactive run stops at the first refusal)."""
    while True:
        try:
            return attempt()
        except Refused as exc:
            asker.refused(str(exc))


# --- the answers' checks (each raises Refused with the line to show) -------------------------------------


def freshchat_url(answer: str, insecure: bool) -> str:
    try:
        url = config_keys.SCHEMA["freshchat"]["api_url"][1]("freshchat.api_url", answer)
        config_keys.require_https("freshchat", {"api_url": url, "allow_insecure_http": insecure})
    except ConfigError as exc:
        raise Refused(str(exc).replace("config key freshchat.api_url: ", "")) from None
    return str(url)


def zalo_grant(answer: str) -> tuple[str, str]:
    """What the person pasted: ("code", CODE) from the address the browser landed on or a bare code, or
    ("refresh_token", TOKEN) when they say so with a ``refresh:`` prefix."""
    text = answer.strip()
    if not text:
        raise Refused("paste the address your browser landed on (it holds code=...), the code, or refresh:TOKEN")
    if text.lower().startswith("refresh:"):
        return "refresh_token", text.split(":", 1)[1].strip()
    if "://" in text or text.startswith("?") or "code=" in text:
        query = parse_qs(urlparse(text).query if "://" in text else text.lstrip("?"))
        if query.get("error"):
            raise Refused(f"Zalo said {query['error'][0]!r}: open the link again and accept with an OA admin")
        codes = query.get("code")
        if not codes or not codes[0].strip():
            raise Refused("that address has no code=...: open the link, accept, then paste the address you land on")
        return "code", codes[0].strip()
    return "code", text


def choose(options: list[dict[str, Any]], answer: str, what: str) -> dict[str, Any]:
    """An option picked by its number in the list, or by its id."""
    for number, option in enumerate(options, start=1):
        if answer in (str(number), str(option.get("id"))):
            return option
    raise Refused(f"{answer!r} is not one of the {what} listed: type its number (1 to {len(options)})")


# --- the files -------------------------------------------------------------------------------------------


def config_text(values: dict[str, dict[str, Any]], routes: list[dict[str, str]]) -> str:
    """config.toml with only the keys that differ from the defaults, each with a line saying what it is."""
    notes = {
        ("zalo", "app_id"): "the Zalo app's id (developers.zalo.me/apps)",
        ("zalo", "redirect_uri"): "the callback URL registered for the app (zfsync auth zalo reads the code from it)",
        ("freshchat", "api_url"): "FreshChat's API host",
        ("freshchat", "channel_id"): "the FreshChat channel (topic) Zalo conversations open in",
        ("store", "path"): "zfsync's SQLite store",
        ("sync", "language"): "the language of agent notes and customer defaults",
    }
    lines = [
        "# Written by `zfsync setup`: only what differs from the defaults. config.example.toml lists every key;",
        "# `zfsync check` validates this file and probes both APIs. Secrets are in zfsync.env beside it.",
    ]
    for section, keys in values.items():
        shown = {k: v for k, v in keys.items() if v != config_keys.SCHEMA[section][k][0]}
        if not shown:
            continue
        lines += ["", f"[{section}]"]
        for key, value in shown.items():
            if (section, key) in notes:
                lines.append(f"# {notes[section, key]}")
            lines.append(f"{key} = {_toml(value)}")
    for route in routes:
        lines += ["", "# every conversation of this OA is assigned to the group chosen at setup", "[[route]]"]
        lines += [f"{key} = {_toml(value)}" for key, value in route.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def env_text(freshchat_key: str, zalo_secret: str) -> str:
    return (
        "# zfsync's secrets, read by systemd (EnvironmentFile) and by every zfsync command. Keep it 0640 root:zfsync.\n"
        f"ZFSYNC_FRESHCHAT_API_KEY={freshchat_key}\nZFSYNC_ZALO_APP_SECRET={zalo_secret}\n"
    )


def service_ids() -> tuple[int, int] | None:
    """(root, the zfsync group) when running as root on a machine with the service user: the files'
    owners, so the daemon can read them and nobody else can."""
    if os.geteuid() != 0:
        return None
    try:
        return 0, grp.getgrnam(SERVICE_USER).gr_gid
    except KeyError:
        return None


@dataclass(frozen=True)
class FileWrite:
    """A file setup will write, decided before anything is written."""

    path: Path
    text: str
    replaces: bool  # an older file with other content stands there: it is kept as a backup


def plan_write(path: Path, text: str, asker: Asker, force: bool) -> FileWrite | None:
    """What writing ``text`` to ``path`` takes, asked and checked now (None: the file already says it). An
    existing file is replaced only when the person agrees (or ``--force``); a place that cannot be
    written is one line, before any file is."""
    if path.is_dir():
        raise ConfigError(f"zfsync setup: {path} is a directory; pass --config with a file's path")
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("/"))
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"zfsync setup: cannot write {path}: {folder} is not a writable folder")
    if not path.exists():
        return FileWrite(path, text, False)
    try:
        if path.read_text(encoding="utf-8", errors="replace") == text:
            return None
    except OSError as exc:
        raise ConfigError(f"zfsync setup: cannot read {path}: {exc.strerror}") from None
    if not (force or asker.confirm("overwrite", f"{path} exists: replace it (a backup is kept)?", False)):
        raise ConfigError(f"zfsync setup: {path} was left as it was; run again and agree, or pass --force")
    return FileWrite(path, text, True)


def write_file(planned: FileWrite, mode: int) -> Path | None:
    """Write the planned file with ``mode`` (and root:zfsync as root), atomically; an older file is kept as a
    backup beside it first, under a name no other backup has, whose path is returned."""
    path, backup = planned.path, None
    try:
        if planned.replaces and path.exists():
            backup = _backup(path, mode)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w", encoding="utf-8") as out:
            out.write(planned.text)
        os.chmod(temporary, mode)  # whatever the umask
        owners = service_ids()
        if owners is not None:
            os.chown(temporary, *owners)
        os.replace(temporary, path)
    except OSError as exc:
        raise ConfigError(f"zfsync setup: cannot write {path}: {exc.strerror or exc}") from None
    return backup


def _backup(path: Path, mode: int) -> Path:
    """A copy of ``path`` beside it, named for the second, with a number after it when that name is taken
    (two runs in one second keep both originals)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for number in range(1, 1000):
        backup = path.with_name(f"{path.name}.bak-{stamp}" + (f"-{number}" if number > 1 else ""))
        try:
            descriptor = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        with open(descriptor, "wb") as out, open(path, "rb") as original:
            shutil.copyfileobj(original, out)
        os.chmod(backup, mode)
        return backup
    raise ConfigError(f"zfsync setup: too many backups of {path} this second; remove some and run again")


def hand_store_to_service(store_path: Path) -> None:
    """A store made by root for a daemon that runs as zfsync: the daemon must own it (and its journal)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return
    for file in store_path.parent.glob(store_path.name + "*"):
        os.chown(file, user.pw_uid, user.pw_gid)


# --- the run ---------------------------------------------------------------------------------------------

FLAGS = (
    "freshchat_api_url",
    "channel_id",
    "group_id",
    "zalo_app_id",
    "redirect_uri",
    "zalo_refresh_token",
    "store_path",
    "language",
)


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
        language = until(self.asker, lambda: self._language(self.asker.ask("language", "Agent notes' language", "vi")))
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
            "sync": {"language": language},
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
        asker = self.asker
        asker.say(f"Zalo: the app's id and secret are on {ZALO_APPS} (your app > Settings).")
        app_id = until(asker, lambda: _required(asker.ask("zalo_app_id", "Zalo app id"), "the app id"))
        app_secret = until(
            asker,
            lambda: _required(asker.ask("zalo_app_secret", "Zalo app secret (hidden)", secret=True), "the secret"),
        )
        asker.say(
            '\nThe app needs an "Official Account Callback Url" (app > Official Account > Settings). zfsync has\n'
            "no public endpoint: any HTTPS address you own will do, even one that shows nothing, since you copy the\n"
            "code from your browser's address bar after accepting."
        )
        redirect_uri = until(asker, lambda: _https(asker.ask("redirect_uri", "Callback URL registered for the app")))
        oauth_url = self.zalo_oauth_url or str(config_keys.SCHEMA["zalo"]["oauth_url"][0])
        client = oauth.ZaloOAuth(oauth_url, app_id, app_secret)
        while True:
            granted = until(asker, lambda: self._grant(client, oauth_url, app_id, redirect_uri))
            oa, tokens = self._oa(granted, app_id, app_secret)
            name, oa_id = str(oa.get("name", "?")), str(oa.get("oa_id") or oa.get("oaid") or "")
            if asker.confirm("yes", f"Zalo authorised the OA {name!r} (id {oa_id}). Is this the right OA?", True):
                return app_id, app_secret, redirect_uri, oa_id, tokens
            if not asker.interactive:
                raise ConfigError("zfsync setup: the OA was not confirmed")
            asker.say("Then open the link again, choose the right OA and accept.")

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

    def _grant(self, client: oauth.ZaloOAuth, oauth_url: str, app_id: str, redirect_uri: str) -> ZaloTokens:
        asker = self.asker
        verifier = ""
        if not asker.interactive:
            # No browser to come back from: a refresh token from Zalo's API Explorer.
            kind, value = "refresh_token", asker.ask("zalo_refresh_token", "A refresh token from Zalo's API Explorer")
        else:
            verifier, challenge = oauth.new_pkce_pair()
            link = oauth.permission_url(oauth_url, app_id, redirect_uri, challenge, secrets.token_urlsafe(8))
            asker.say("\nOpen this link as an admin of the OA, choose the OA and accept:")
            asker.say(f"  {link}")
            pasted = asker.ask(
                "zalo_grant", "Paste the address you landed on (or the code; or refresh:TOKEN from the API Explorer)"
            )
            kind, value = zalo_grant(pasted)
        try:
            if kind == "refresh_token":
                return client.redeem_refresh_token(value)
            return client.exchange_code(value, verifier)
        except AuthError as exc:
            what = "refresh token" if kind == "refresh_token" else "code (each works once, for a few minutes)"
            raise Refused(f"Zalo refused the {what}: {exc}") from None
        except ZfsyncError as exc:
            raise Refused(f"Zalo's token endpoint did not answer as expected: {exc}") from None

    def _oa(self, granted: ZaloTokens, app_id: str, app_secret: str) -> tuple[dict[str, Any], ZaloTokens]:
        """The OA the tokens were granted for, asked with them from a scratch store (the real one is not
        touched before the person has said yes), and the tokens as they stand after (a refresh spends the
        refresh token)."""
        with tempfile.TemporaryDirectory(prefix="zfsync-setup-") as scratch:
            store = Store.open(Path(scratch) / "setup.db")
            try:
                now = time.time()
                store.save_tokens(granted, now)
                oa = self._getoa(store, app_id, app_secret)
                held = store.load_tokens()
            finally:
                store.close()
        if held is None:
            return oa, granted
        return oa, ZaloTokens(held.access_token, held.refresh_token, max(0.0, held.expires_at - time.time()))

    def _getoa(self, store: Store, app_id: str, app_secret: str) -> dict[str, Any]:
        from zfsync.runtime.app import build_clients

        raw = {
            "zalo": {
                "app_id": app_id,
                "api_url": self.zalo_api_url or config_keys.SCHEMA["zalo"]["api_url"][0],
                "oauth_url": self.zalo_oauth_url or config_keys.SCHEMA["zalo"]["oauth_url"][0],
                "allow_insecure_http": self.insecure,
            },
            "freshchat": {"api_url": "https://api.freshchat.com", "channel_id": "-"},
            "store": {"path": store.where},
        }
        settings = config.from_mapping(raw, {"ZFSYNC_ZALO_APP_SECRET": app_secret, "ZFSYNC_FRESHCHAT_API_KEY": "-"})
        try:
            return build_clients(settings, store).zalo.oa_profile()
        except ZfsyncError as exc:
            raise ConfigError(
                f"zfsync setup: Zalo's getoa failed with the new tokens (nothing was written): {exc}"
            ) from None

    def _language(self, answer: str) -> str:
        from zfsync.i18n import LANGUAGES

        if answer not in LANGUAGES:
            raise Refused(f"choose one of {', '.join(LANGUAGES)}")
        return answer

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


def _required(answer: str, what: str) -> str:
    if not answer:
        raise Refused(f"{what} is empty")
    return answer


def _https(answer: str) -> str:
    parsed = urlparse(answer)
    if parsed.scheme != "https" or not parsed.netloc:
        raise Refused("Zalo takes an https:// address here, such as https://example.com/zalo-callback")
    return answer
