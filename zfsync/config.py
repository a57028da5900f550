"""Configuration: a TOML file for settings, the environment (or a `.env` beside the file) for secrets.

Every problem is reported as one `ConfigError` line that names the key and says what it expects, so an
operator can fix it without reading code.
"""

from __future__ import annotations

import os
import string
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dotenv import dotenv_values

from zfsync.errors import ConfigError
from zfsync.settings import FreshChatSettings, MetricsSettings, Settings, SyncSettings, ZaloSettings

DEFAULT_PATHS = (Path("config.toml"), Path("/etc/zfsync/config.toml"))
FRESHCHAT_KEY_ENV = "ZFSYNC_FRESHCHAT_API_KEY"
STORE_PASSWORD_ENV = "ZFSYNC_STORE_PASSWORD"
ZALO_SECRET_ENV = "ZFSYNC_ZALO_APP_SECRET"

__all__ = ["FreshChatSettings", "MetricsSettings", "Settings", "SyncSettings", "ZaloSettings", "from_mapping", "load"]


# key -> (default, validator). A default of None means the key is required.
Validator = Callable[[str, Any], Any]


def _url(key: str, value: Any) -> str:
    if not isinstance(value, str) or urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc:
        raise ConfigError(f"config key {key}: expected an http(s) URL such as https://host, got {value!r}")
    return value.rstrip("/")


LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _require_https(section: str, values: dict[str, Any]) -> None:
    """Tokens and keys travel with every call: plain http only to this machine, or when asked for."""
    if values.get("allow_insecure_http"):
        return
    for key, value in values.items():
        if key.endswith("_url") and value and urlparse(value).scheme == "http":
            host = urlparse(value).hostname or ""
            if host not in LOOPBACK and not host.startswith("127."):
                raise ConfigError(
                    f"config key {section}.{key}: {value} is plain http, so the secrets would travel in clear; "
                    f"use https, or set {section}.allow_insecure_http = true"
                )


def _store_url(key: str, value: Any) -> str:
    """``sqlite:///path`` or ``postgresql://user@host[:port]/db[?params]``; never a password in it."""
    if not isinstance(value, str):
        raise ConfigError(f"config key {key}: expected a URL such as postgresql://zfsync@db.example/zfsync")
    if not value or value.startswith("sqlite://"):
        return value
    parsed = urlparse(value)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"config key {key}: expected sqlite:///path or postgresql://user@host/database, got {value!r}"
        )
    if parsed.password is not None:
        raise ConfigError(f"config key {key}: the URL holds a password; remove it and set {STORE_PASSWORD_ENV}")
    if not parsed.path.strip("/"):
        raise ConfigError(f"config key {key}: name the database, as in postgresql://user@host/zfsync")
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ConfigError(
            f"config key {key}: a PostgreSQL store needs the psycopg driver: pip install 'zfsync[postgres]'"
        ) from None
    try:
        conninfo_to_dict(value)
    except Exception as exc:
        raise ConfigError(f"config key {key}: not a valid PostgreSQL URL: {exc}") from None
    return value


def _freshchat_url(key: str, value: Any) -> str:
    url = _url(key, value)
    # The docs show the base both with and without /v2; we keep the bare host and add /v2 per call.
    return url[: -len("/v2")] if url.endswith("/v2") else url


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"config key {key}: expected a string, got {value!r}")
    return value


def _required_text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"config key {key}: expected a non-empty string, got {value!r}")
    return value.strip()


def _seconds(low: float, high: float) -> Validator:
    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ConfigError(f"config key {key}: expected a number of seconds from {low:g} to {high:g}, got {value!r}")
        return float(value)

    return check


def _count(low: int, high: int) -> Validator:
    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"config key {key}: expected a whole number from {low} to {high}, got {value!r}")
        return value

    return check


def _choice(*choices: str) -> Validator:
    def check(key: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"config key {key}: expected one of {', '.join(map(repr, choices))}, got {value!r}")
        return str(value)

    return check


def _listen(key: str, value: Any) -> str:
    text = _text(key, value).strip()
    host, _, port = text.rpartition(":")
    if text and not (host and port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(f'config key {key}: expected host:port such as 127.0.0.1:9464, or "", got {value!r}')
    return text


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"config key {key}: expected true or false, got {value!r}")
    return value


def _template(key: str, value: Any) -> str:
    """A name template: text and ``{name}`` only. A full format string would let a config reach into
    Python objects (``{name.__class__}``) or make 100 MB names (``{name:>99999999}``)."""
    text = _required_text(key, value)
    try:
        fields = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(text)]
    except ValueError:
        fields = [("?", "", None)]
    if any(field is not None and (field != "name" or spec or conversion) for field, spec, conversion in fields):
        raise ConfigError(
            f"config key {key}: expected a template of text and {{name}} alone (no other braces), got {value!r}"
        )
    if len(text) > 100:
        raise ConfigError(f"config key {key}: expected at most 100 characters, got {len(text)}")
    return text


def _notice(key: str, value: Any) -> str:
    text = _text(key, value)
    if len(unicodedata.normalize("NFC", text)) > 2000:
        raise ConfigError(f"config key {key}: Zalo takes at most 2,000 characters in a message, got {len(text)}")
    return text


SCHEMA: dict[str, dict[str, tuple[Any, Validator]]] = {
    "zalo": {
        "app_id": (None, _required_text),
        "api_url": ("https://openapi.zalo.me", _url),
        "oauth_url": ("https://oauth.zaloapp.com", _url),
        "redirect_uri": ("", _text),
        "poll_interval": (2.0, _seconds(1, 3600)),
        "feed_page_cap": (500, _count(1, 10_000)),
        "requests_per_minute": (4000, _count(10, 100_000)),
        "allow_insecure_http": (False, _flag),
    },
    "freshchat": {
        "api_url": (None, _freshchat_url),
        "channel_id": (None, _required_text),
        "hot_interval": (2.0, _seconds(1, 3600)),
        "warm_interval": (30.0, _seconds(1, 86_400)),
        "cold_interval": (600.0, _seconds(1, 86_400)),
        "requests_per_minute": (400, _count(1, 100_000)),
        "forward_bot_messages": (False, _flag),
        "allow_insecure_http": (False, _flag),
    },
    "sync": {
        "display_name": ("{name} Zalo", _template),
        "resolve_notice": (SyncSettings.resolve_notice, _notice),
        "long_text": ("split", _choice("split", "file")),
        "max_attempts": (10, _count(1, 1000)),
    },
    "store": {"path": ("/var/lib/zfsync/zfsync.db", _required_text), "url": ("", _store_url)},
    "metrics": {
        "textfile": ("", _text),
        "listen": ("", _listen),
        "interval": (15.0, _seconds(1, 3600)),
    },
    "log": {
        "level": ("info", _choice("debug", "info", "warning", "error")),
        "format": ("auto", _choice("auto", "console", "journald", "json")),
    },
}


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
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    secrets = _secrets(path, env)
    return from_mapping(raw, secrets, source=path)


SECRET_FILES = (".env", "zfsync.env")  # beside the config; zfsync.env is the systemd EnvironmentFile


def secret_files(path: Path) -> dict[str, str]:
    """The secrets written in the files beside the config, read afresh (the daemon re-reads them to pick up
    a replaced API key without a restart)."""
    found: dict[str, str] = {}
    for name in SECRET_FILES:
        file = path.parent / name
        if file.is_file():
            found.update({k: v for k, v in dotenv_values(file).items() if v is not None})
    return found


def _secrets(path: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    found = secret_files(path)
    found.update(os.environ if env is None else env)  # the real environment wins over the files
    return found


def from_mapping(raw: Mapping[str, Any], secrets: Mapping[str, str], source: Path | None = None) -> Settings:
    values: dict[str, dict[str, Any]] = {}
    for section, value in raw.items():
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
    _require_https("zalo", z)
    _require_https("freshchat", f)
    if not f["hot_interval"] <= f["warm_interval"] <= f["cold_interval"]:
        raise ConfigError(
            "config keys freshchat.hot_interval, warm_interval, cold_interval: expected hot <= warm <= cold"
        )
    store_path, store_url = _store(values["store"], source)
    return Settings(
        zalo=ZaloSettings(app_secret=_secret(secrets, ZALO_SECRET_ENV), **z),
        freshchat=FreshChatSettings(api_key=_secret(secrets, FRESHCHAT_KEY_ENV), **f),
        sync=SyncSettings(**s),
        store_path=store_path,
        store_url=store_url,
        store_password=secrets.get(STORE_PASSWORD_ENV, "").strip(),
        log_level=values["log"]["level"],
        log_format=values["log"]["format"],
        source=source,
        metrics=MetricsSettings(
            textfile=_store_path(values["metrics"]["textfile"], source) if values["metrics"]["textfile"] else None,
            listen=values["metrics"]["listen"],
            interval=values["metrics"]["interval"],
        ),
    )


def _secret(secrets: Mapping[str, str], name: str) -> str:
    value = secrets.get(name, "").strip()
    if not value:
        raise ConfigError(f"secret {name} is missing: set it in the environment or in a .env file beside the config")
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
    url = _store_url(what, value) if "://" in value else ""
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
