"""The config file's keys: each with its default and the validator that turns a TOML value into a setting or
one `ConfigError` line naming the key and what it expects. `zfsync.config` reads the file against this."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from zfsync.config.settings import SyncSettings
from zfsync.domain.errors import ConfigError
from zfsync.i18n import LANGUAGES

FRESHCHAT_KEY_ENV = "ZFSYNC_FRESHCHAT_API_KEY"
STORE_PASSWORD_ENV = "ZFSYNC_STORE_PASSWORD"
SECRETS_KEY_ENV = "ZFSYNC_SECRETS_KEY"  # a fleet's: seals its tenants' secrets and tokens in the store
ZALO_SECRET_ENV = "ZFSYNC_ZALO_APP_SECRET"


# key -> (default, validator). A default of None means the key is required.
Validator = Callable[[str, Any], Any]


def _url(key: str, value: Any) -> str:
    if not isinstance(value, str) or urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc:
        raise ConfigError(f"config key {key}: expected an http(s) URL such as https://host, got {value!r}")
    return value.rstrip("/")


LOOPBACK = ("localhost", "127.0.0.1", "::1")


def require_https(section: str, values: dict[str, Any]) -> None:
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


def valid_store_url(key: str, value: Any) -> str:
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


def flag(key: str, value: Any) -> bool:
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


def _prefix(key: str, value: Any) -> str:
    """A command prefix: one word with no spaces (an agent types it at the start of a private note), or ""
    for no commands."""
    text = _text(key, value).strip()
    if text and (any(c.isspace() for c in text) or len(text) > 20):
        raise ConfigError(
            f'config key {key}: expected one word of at most 20 characters such as "/zalo", or "", got {value!r}'
        )
    return text


def _hours(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 167:
        raise ConfigError(
            f"config key {key}: expected hours from 0 (no warning) to 167 (inside Zalo's 7 days), got {value!r}"
        )
    return float(value)


def _hours_or_off(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 8760:
        raise ConfigError(f"config key {key}: expected hours from 0 (no limit) to 8760 (a year), got {value!r}")
    return float(value)


def _minutes(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10_080:
        raise ConfigError(f"config key {key}: expected minutes from 0 (off) to 10080 (7 days), got {value!r}")
    return float(value)


def _signature(key: str, value: Any) -> str:
    """The agents' signature: text with {agent_first_name} and {agent_name} only, one line of at most 100
    characters (it is counted in every reply's 2,000)."""
    text = _text(key, value).strip()
    # Exactly the two fields, as written: no format specs ({agent_name:>500}), conversions, escapes ({{).
    rest = text.replace("{agent_first_name}", "").replace("{agent_name}", "")
    plain = not any(c in rest for c in "{}") and all(c == " " or c.isprintable() for c in text)
    if not plain or len(text) > 100:
        raise ConfigError(
            f"config key {key}: expected one line of at most 100 characters of text, {{agent_first_name}} and "
            f"{{agent_name}} (no other braces), got {value!r}"
        )
    return text


def _card_text(limit: int) -> Validator:
    def check(key: str, value: Any) -> str:
        text = _required_text(key, value)
        if len(text) > limit:
            raise ConfigError(f"config key {key}: Zalo shows at most {limit} characters here, got {len(text)}")
        return text

    return check


def _optional_url(key: str, value: Any) -> str:
    text = _text(key, value).strip()
    return _url(key, text) if text else ""


def _rating_name(key: str, value: Any) -> str:
    text = _text(key, value).strip()
    if text and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", text):
        raise ConfigError(f"config key {key}: expected the name of a [[template]] (lower-case letters, digits, - or _)")
    return text


def _conversation_property(key: str, value: Any) -> str:
    text = _text(key, value).strip()
    if text and not re.fullmatch(r"cf_[a-z0-9_]{1,60}", text):
        raise ConfigError(f"config key {key}: expected a FreshChat conversation property such as cf_zalo_rating")
    return text


SCHEMA: dict[str, dict[str, tuple[Any, Validator]]] = {
    "zalo": {
        "app_id": (None, _required_text),
        "api_url": ("https://openapi.zalo.me", _url),
        "oauth_url": ("https://oauth.zaloapp.com", _url),
        "zns_url": ("", _optional_url),
        "redirect_uri": ("", _text),
        "poll_interval": (2.0, _seconds(1, 3600)),
        "feed_page_cap": (20, _count(1, 10_000)),
        "requests_per_minute": (4000, _count(10, 100_000)),
        "allow_insecure_http": (False, flag),
    },
    "freshchat": {
        "api_url": (None, _freshchat_url),
        "channel_id": (None, _required_text),
        "hot_interval": (2.0, _seconds(1, 3600)),
        "warm_interval": (30.0, _seconds(1, 86_400)),
        "cold_interval": (600.0, _seconds(1, 86_400)),
        "requests_per_minute": (400, _count(1, 100_000)),
        "forward_bot_messages": (False, flag),
        "allow_insecure_http": (False, flag),
    },
    "sync": {
        "display_name": ("{name} Zalo", _template),
        "language": (SyncSettings.language, _choice(*LANGUAGES)),
        "resolve_notice": (SyncSettings.resolve_notice, _notice),
        "long_text": ("split", _choice("split", "file")),
        "max_attempts": (10, _count(1, 1000)),
        "share_contact_details": (True, flag),
        "command_prefix": (SyncSettings.command_prefix, _prefix),
        "window_warning_hours": (SyncSettings.window_warning_hours, _hours),
        "resolve_notice_when": (SyncSettings.resolve_notice_when, _choice("free_reply", "always")),
        "agent_notes": (SyncSettings.agent_notes, _choice("all", "failures", "off")),
        "retry_when_customer_returns": (SyncSettings.retry_when_customer_returns, flag),
        "after_resolve": (SyncSettings.after_resolve, _choice("reopen", "new")),
        "reopen_within_hours": (SyncSettings.reopen_within_hours, _hours_or_off),
        "info_card_title": (SyncSettings.info_card_title, _card_text(100)),
        "info_card_subtitle": (SyncSettings.info_card_subtitle, _card_text(500)),
        "info_card_image": ("", _optional_url),
        "agent_signature": ("", _signature),
        "agent_signature_position": ("suffix", _choice("suffix", "prefix")),
        "unanswered_minutes": (SyncSettings.unanswered_minutes, _minutes),
        "import_history_days": (0, _count(0, 365)),
        "rating_template": ("", _rating_name),
        "rating_property": ("", _conversation_property),
        "groups": (False, flag),
        "group_expiry_warning_days": (7, _count(0, 365)),
        "group_expiry_property": ("", _conversation_property),
    },
    "store": {"path": ("/var/lib/zfsync/zfsync.db", _required_text), "url": ("", valid_store_url)},
    "metrics": {
        "textfile": ("", _text),
        "listen": ("", _listen),
        "interval": (15.0, _seconds(1, 3600)),
    },
    "log": {
        "level": ("info", _choice("debug", "info", "warning", "error")),
        "format": ("auto", _choice("auto", "console", "journald", "json")),
    },
    "security": {"allow_readable_secrets": (False, flag)},
}
