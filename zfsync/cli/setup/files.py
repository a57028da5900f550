"""The files setup writes (``config.toml``, ``zfsync.env``): their text, and writing them as planned:
checked and asked before anything is written, then each atomically, with a backup of its own."""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zfsync.cli.setup.answers import Asker
from zfsync.config import keys as config_keys
from zfsync.domain.errors import ConfigError

SERVICE_USER = "zfsync"  # the unit's User= and Group= (deploy/systemd/zfsync.service)


def config_text(values: dict[str, dict[str, Any]], routes: list[dict[str, str]]) -> str:
    """config.toml with only the keys that differ from the defaults, each with a line saying what it is."""
    notes = {
        ("zalo", "app_id"): "the Zalo app's id (developers.zalo.me/apps)",
        ("zalo", "redirect_uri"): "the callback URL registered for the app (zfsync auth zalo reads the code from it)",
        ("freshchat", "api_url"): "FreshChat's API host",
        ("freshchat", "channel_id"): "the FreshChat channel (topic) Zalo conversations open in",
        ("store", "path"): "zfsync's SQLite store",
        ("sync", "language"): "the language of agent notes and customer defaults",
        ("sync", "after_resolve"): "a customer's message after a resolve opens a new conversation",
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


def store_writable(store_path: Path) -> None:
    """The store can take the tokens (checked before any file is written, so a setup never leaves a new
    config beside the old tokens); one line if not."""
    target = store_path if store_path.exists() else store_path.parent
    if store_path.is_dir() or not os.access(target, os.W_OK) or not os.access(store_path.parent, os.W_OK | os.X_OK):
        raise ConfigError(f"zfsync setup: cannot write the store {store_path}: choose a writable place")


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
