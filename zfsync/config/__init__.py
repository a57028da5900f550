"""Configuration: a TOML file for settings, the environment (or a `.env` beside the file) for secrets.

Every problem is reported as one `ConfigError` line that names the key and says what it expects, so an
operator can fix it without reading code. It may import only the domain, errors, log and i18n.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from zfsync import i18n
from zfsync.config.keys import (
    FRESHCHAT_KEY_ENV,
    SCHEMA,
    STORE_PASSWORD_ENV,
    ZALO_SECRET_ENV,
    flag,
    require_https,
    valid_store_url,
)
from zfsync.config.settings import FreshChatSettings, MetricsSettings, Settings, SyncSettings, ZaloSettings
from zfsync.domain import Route, TemplateChoice
from zfsync.domain.errors import ConfigError
from zfsync.log import remember_secret

DEFAULT_PATHS = (Path("config.toml"), Path("/etc/zfsync/config.toml"))

__all__ = [
    "FRESHCHAT_KEY_ENV",
    "SCHEMA",
    "STORE_PASSWORD_ENV",
    "ZALO_SECRET_ENV",
    "FreshChatSettings",
    "MetricsSettings",
    "Settings",
    "SyncSettings",
    "ZaloSettings",
    "from_mapping",
    "load",
]


def resolve_path(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """Where the config lives: ``--config``, else ``$ZFSYNC_CONFIG``, else the first default that exists."""
    env = os.environ if env is None else env
    chosen = explicit or env.get("ZFSYNC_CONFIG")
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist: pass --config PATH or set ZFSYNC_CONFIG")
        return path
    for path in DEFAULT_PATHS:
        if path.is_file():
            return path
    raise ConfigError(
        "no config file found (tried ./config.toml and /etc/zfsync/config.toml): "
        "copy config.example.toml and pass --config PATH"
    )


def load(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config at ``path``; secrets come from ``env``, else from ``.env`` or
    ``zfsync.env`` beside the file."""
    raw = read_toml(path)
    readable = readable_secret_files(path)
    if readable and not flag(
        "security.allow_readable_secrets", raw.get("security", {}).get("allow_readable_secrets", False)
    ):
        shown = readable[0]
        raise ConfigError(
            f"secrets file {shown} is readable by every user (mode {shown.stat().st_mode & 0o777:04o}): "
            f"run `chmod o-rwx {shown}` (zfsync.env is root:zfsync 0640), "
            "or set security.allow_readable_secrets = true to run anyway"
        )
    secrets = secrets_for(path, env)
    settings = from_mapping(raw, secrets, source=path)
    return replace(settings, readable_secrets=tuple(readable))


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file at ``path``; a missing, unreadable or malformed one is one line that says so."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None


SECRET_FILES = (".env", "zfsync.env")  # beside the config; zfsync.env is the systemd EnvironmentFile


def readable_secret_files(path: Path) -> list[Path]:
    """The secrets files beside the config that every user of the machine can read."""
    found = []
    for name in SECRET_FILES:
        file = path.parent / name
        try:
            if file.is_file() and file.stat().st_mode & 0o004:
                found.append(file)
        except OSError:
            continue
    return found


def secret_files(path: Path) -> dict[str, str]:
    """The secrets written in the files beside the config, read afresh (the daemon re-reads them to pick up
    a replaced API key without a restart)."""
    found: dict[str, str] = {}
    for name in SECRET_FILES:
        file = path.parent / name
        if file.is_file():
            found.update({k: v for k, v in dotenv_values(file).items() if v is not None})
    return found


def secrets_for(path: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    """The secrets of the config at ``path``: the files beside it, the environment (``env``) winning."""
    found = secret_files(path)
    found.update(os.environ if env is None else env)  # the real environment wins over the files
    return found


ROUTE_MATCHES = ("tag", "keyword", "oa", "zalo_group")
ROUTE_KEYS = (*ROUTE_MATCHES, "channel_id", "group_id")


def _routes(raw: Any) -> tuple[Route, ...]:
    """The ``[[route]]`` tables, in order: each matches one thing and names the channel it opens in."""
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        raise ConfigError("config [[route]]: expected tables written [[route]], one per rule")
    found = []
    for number, table in enumerate(raw, start=1):
        where = f"config [[route]] {number}"
        unknown = [key for key in table if key not in ROUTE_KEYS]
        if unknown:
            raise ConfigError(f"{where}: {unknown[0]} is unknown: expected {', '.join(ROUTE_KEYS)}")
        if not all(isinstance(value, str) for value in table.values()):
            raise ConfigError(f"{where}: expected text values, got {table!r}")
        matches = [key for key in ROUTE_MATCHES if table.get(key, "").strip()]
        if len(matches) != 1:
            raise ConfigError(
                f"{where}: expected exactly one of tag, keyword, oa or zalo_group to match, "
                f"got {' and '.join(matches) or 'none'}"
            )
        if not table.get("channel_id", "").strip():
            raise ConfigError(f"{where}: channel_id is missing: the FreshChat channel its conversations open in")
        found.append(Route(**{key: value.strip() for key, value in table.items()}))
    return tuple(found)


TEMPLATE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
KNOWN_PLACEHOLDER = re.compile(r"\{(?:customer\.(?:name|phone)|conversation\.[a-z0-9_]{1,64})\}")


def _templates(raw: Any) -> tuple[TemplateChoice, ...]:
    """The ``[[template]]`` tables: a short name for a ZNS template, and default values of its parameters."""
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        raise ConfigError("config [[template]]: expected tables written [[template]], one per template")
    found: list[TemplateChoice] = []
    for number, table in enumerate(raw, start=1):
        where = f"config [[template]] {number}"
        unknown = [key for key in table if key not in ("name", "template_id", "params")]
        if unknown:
            raise ConfigError(f"{where}: {unknown[0]} is unknown: expected name, template_id, params")
        name, template_id = table.get("name"), table.get("template_id")
        if not isinstance(name, str) or not TEMPLATE_NAME.fullmatch(name):
            raise ConfigError(f"{where}: name must be 1 to 32 lower-case letters, digits, - or _ (what agents type)")
        if name in (t.name for t in found):
            raise ConfigError(f"{where}: the name {name} is taken by an earlier [[template]]")
        if isinstance(template_id, int) and not isinstance(template_id, bool):
            template_id = str(template_id)
        if not isinstance(template_id, str) or not template_id.strip().isalnum():
            raise ConfigError(f"{where}: template_id must be the ZNS template's id (see `zfsync templates`)")
        params = table.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise ConfigError(f'{where}: params must be a table of text values, e.g. params = {{ name = "x" }}')
        for key, value in params.items():
            odd = [p for p in PLACEHOLDER.findall(value) if not KNOWN_PLACEHOLDER.fullmatch(p)]
            if odd:
                raise ConfigError(
                    f"{where}: params.{key}: {odd[0]} is unknown: expected {{customer.name}}, {{customer.phone}} "
                    "or {conversation.NAME} (a FreshChat conversation property, e.g. cf_order_id)"
                )
        defaults = tuple((str(k), v) for k, v in params.items())
        found.append(TemplateChoice(name, template_id.strip(), defaults))
    return tuple(found)


def from_mapping(raw: Mapping[str, Any], secrets: Mapping[str, str], source: Path | None = None) -> Settings:
    values: dict[str, dict[str, Any]] = {}
    routes = _routes(raw.get("route", []))
    templates = _templates(raw.get("template", []))
    for section, value in raw.items():
        if section in ("route", "template"):
            continue
        if section not in SCHEMA:
            raise ConfigError(f"config section [{section}] is unknown: expected one of {', '.join(SCHEMA)}")
        if not isinstance(value, dict):
            raise ConfigError(f"config key {section}: expected a [{section}] table")
    for section, keys in SCHEMA.items():
        given = dict(raw.get(section, {}))
        for key in given:
            if key not in keys:
                if key in ("api_key", "app_secret", "secret"):
                    env_name = FRESHCHAT_KEY_ENV if section == "freshchat" else ZALO_SECRET_ENV
                    raise ConfigError(f"config key {section}.{key}: secrets do not belong in the TOML; set {env_name}")
                raise ConfigError(f"config key {section}.{key} is unknown: expected one of {', '.join(keys)}")
        values[section] = {}
        for key, (default, check) in keys.items():
            name = f"{section}.{key}"
            if key not in given:
                if default is None:
                    raise ConfigError(f"config key {name} is missing: set it in [{section}]")
                values[section][key] = check(name, default)
            else:
                values[section][key] = check(name, given[key])
    z, f, s = values["zalo"], values["freshchat"], values["sync"]
    given_sync = raw.get("sync", {})
    s.update({k: v for k, v in i18n.defaults(s["language"]).items() if k not in given_sync})
    require_https("zalo", z)
    require_https("freshchat", f)
    if not f["hot_interval"] <= f["warm_interval"] <= f["cold_interval"]:
        raise ConfigError(
            "config keys freshchat.hot_interval, warm_interval, cold_interval: expected hot <= warm <= cold"
        )
    if s["rating_template"] and s["rating_template"] not in (t.name for t in templates):
        raise ConfigError(
            f"config key sync.rating_template: {s['rating_template']} is not the name of a [[template]] in this config"
        )
    store_path, store_url = _store(values["store"], source)
    store_password = secrets.get(STORE_PASSWORD_ENV, "").strip()
    remember_secret(store_password)
    return Settings(
        zalo=ZaloSettings(app_secret=_secret(secrets, ZALO_SECRET_ENV), **z),
        freshchat=FreshChatSettings(api_key=_secret(secrets, FRESHCHAT_KEY_ENV), **f),
        sync=SyncSettings(**s),
        store_path=store_path,
        store_url=store_url,
        store_password=store_password,
        routes=routes,
        templates=templates,
        log_level=values["log"]["level"],
        log_format=values["log"]["format"],
        source=source,
        metrics=metrics_settings(values["metrics"], source),
    )


def metrics_settings(metrics: Mapping[str, Any], source: Path | None) -> MetricsSettings:
    """``[metrics]`` as checked, its textfile relative to the config file (a single OA's or a fleet's)."""
    return MetricsSettings(
        textfile=_store_path(metrics["textfile"], source) if metrics["textfile"] else None,
        listen=metrics["listen"],
        interval=metrics["interval"],
    )


def _secret(secrets: Mapping[str, str], name: str) -> str:
    value = secrets.get(name, "").strip()
    if not value:
        raise ConfigError(f"secret {name} is missing: set it in the environment or in a .env file beside the config")
    remember_secret(value)
    return value


def _store(values: dict[str, Any], source: Path | None) -> tuple[Path, str]:
    """The SQLite file and the PostgreSQL URL (empty for SQLite) that ``[store]`` names."""
    url = values["url"]  # when set, it wins over path
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
        if not path:
            raise ConfigError("config key store.url: name the file, as in sqlite:///var/lib/zfsync/zfsync.db")
        return _store_path(path, source), ""
    return _store_path(values["path"], source), url


def store_location(what: str, value: str) -> Path | str:
    """A store named on the command line: a PostgreSQL URL (checked as ``store.url`` is), ``sqlite:///path``
    or a file path."""
    url = valid_store_url(what, value) if "://" in value else ""
    if url.startswith(("postgresql://", "postgres://")):
        return url
    path = value[len("sqlite://") :] if url else value
    if not path:
        raise ConfigError(f"{what}: name the file, as in sqlite:///var/lib/zfsync/zfsync.db")
    return Path(path).expanduser().absolute()


def _store_path(value: str, source: Path | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and source is not None:
        path = source.parent / path  # relative to the config, not to wherever the daemon was started
    return path
