"""A fleet's config: a config.toml with a ``[fleet]`` table serves the tenants its store holds.

It names the store, the logs and the metrics, and the budgets the tenants share; each tenant's own config
(its OA, FreshChat account, routing, language...) is a single-OA config.toml taken in by `zfsync tenant
add` and kept in the store, with its secrets sealed under ``ZFSYNC_SECRETS_KEY`` (`zfsync.store.secrets`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zfsync.config import _store, from_mapping, metrics_settings, read_toml, secrets_for
from zfsync.config.keys import SCHEMA, SECRETS_KEY_ENV, STORE_PASSWORD_ENV, _seconds
from zfsync.config.settings import MetricsSettings, Settings
from zfsync.domain.errors import ConfigError
from zfsync.log import remember_secret

DESK_SECTIONS = ("zalo", "freshchat", "sync", "route", "template")  # a tenant's own, never the fleet's
SHARED_SECTIONS = ("store", "log", "metrics", "security")  # the fleet's, ignored in a tenant's config


def _per_minute(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise ConfigError(f"config key {name}: expected a whole number of requests a minute, 1 to 1000000")
    return value


FLEET_KEYS: dict[str, tuple[Any, Any]] = {
    # Zalo's rate limit is per app: the tenants of one app share it, across every daemon of the fleet.
    "zalo_requests_per_minute": (4000, _per_minute),
    # A tenant's Zalo feed with no traffic for quiet_after seconds is polled every quiet_interval seconds,
    # back to its fast interval at once on any activity: idle OAs leave the app's budget to the busy ones.
    "quiet_after": (180.0, _seconds(0, 86400)),
    "quiet_interval": (15.0, _seconds(1, 300)),
    # How a daemon is named in the store's leases and `zfsync status` (default: host and process id).
    "daemon_name": ("", lambda name, value: str(value).strip()),
    # PostgreSQL connections a daemon shares among all its tenants' threads (each holds one only while
    # a statement or transaction runs). Mind the server's max_connections: daemons × this, plus margin.
    "store_connections": (20, lambda name, value: _whole(name, value, 2, 500)),
    # Sends in flight at once across all the tenants a daemon serves; each tenant's lanes keep their own
    # cap (8 a direction, 4 of them attachments), so one tenant's slow sends never hold more than that.
    "sends_in_flight": (200, lambda name, value: _whole(name, value, 1, 10_000)),
    # Tenants whose metrics a daemon labels with their own name (about 70 series each); the tenants past
    # it, by name, are summed (or their worst value kept) under tenant="_others". 0: every tenant folded.
    "metrics_tenants": (200, lambda name, value: _whole(name, value, 0, 100_000)),
}


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"config key {name}: expected a whole number from {low} to {high}")
    return value


@dataclass(frozen=True)
class FleetSettings:
    store_path: Path
    store_url: str = ""
    store_password: str = field(default="", repr=False)
    secrets_key: str = field(default="", repr=False)
    log_level: str = "info"
    log_format: str = "auto"
    metrics: MetricsSettings = field(default_factory=lambda: MetricsSettings())
    source: Path | None = None
    zalo_requests_per_minute: int = 4000
    quiet_after: float = 180.0
    quiet_interval: float = 15.0
    daemon_name: str = ""
    store_connections: int = 20
    sends_in_flight: int = 200
    metrics_tenants: int = 200

    @property
    def store_location(self) -> Path | str:
        return self.store_url or self.store_path


def is_fleet(path: Path) -> bool:
    return "fleet" in read_toml(path)


def load_fleet(path: Path, env: Mapping[str, str] | None = None) -> FleetSettings:
    raw = read_toml(path)
    desk = [s for s in DESK_SECTIONS if s in raw]
    if desk:
        raise ConfigError(
            f"config file {path} has [fleet] and [{desk[0]}]: a fleet's tenants keep their own config; "
            "take it in with `zfsync tenant add NAME --config oa.toml`"
        )
    unknown = [s for s in raw if s != "fleet" and s not in SHARED_SECTIONS]
    if unknown:
        raise ConfigError(
            f"config section [{unknown[0]}] is unknown in a fleet's config: expected [fleet], [store], [log], [metrics]"
        )
    fleet = _checked("fleet", raw.get("fleet", {}), FLEET_KEYS)
    shared = {s: _checked(s, raw.get(s, {}), SCHEMA[s]) for s in SHARED_SECTIONS}
    secrets = secrets_for(path, env)
    store_path, store_url = _store(shared["store"], path)
    password = secrets.get(STORE_PASSWORD_ENV, "").strip()
    key = secrets.get(SECRETS_KEY_ENV, "").strip()
    remember_secret(password, *key.split(","))
    if not key:
        raise ConfigError(
            f"secret {SECRETS_KEY_ENV} is missing: a fleet seals its tenants' secrets with it; "
            "make one with `zfsync tenant rekey --new-key` and set it in the env file beside the config"
        )
    return FleetSettings(
        store_path=store_path,
        store_url=store_url,
        store_password=password,
        secrets_key=key,
        log_level=shared["log"]["level"],
        log_format=shared["log"]["format"],
        metrics=metrics_settings(shared["metrics"], path),
        source=path,
        **fleet,
    )


def _checked(section: str, given: Any, keys: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ConfigError(f"config key {section}: expected a [{section}] table")
    unknown = [k for k in given if k not in keys]
    if unknown:
        raise ConfigError(f"config key {section}.{unknown[0]} is unknown: expected one of {', '.join(keys)}")
    return {key: check(f"{section}.{key}", given.get(key, default)) for key, (default, check) in keys.items()}


def tenant_mapping(text: str, where: str) -> dict[str, Any]:
    """A tenant's config as kept in the store, without the sections the fleet decides."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    return {k: v for k, v in raw.items() if k not in SHARED_SECTIONS}


def tenant_settings(
    fleet: FleetSettings, name: str, tenant_id: int, config: str, secrets: Mapping[str, str]
) -> Settings:
    """The settings one tenant's desk runs with: its own config and secrets, the fleet's store and logs."""
    settings = from_mapping(tenant_mapping(config, f"tenant {name}'s config"), secrets, source=None)
    return replace(
        settings,
        store_path=fleet.store_path,
        store_url=fleet.store_url,
        store_password=fleet.store_password,
        log_level=fleet.log_level,
        log_format=fleet.log_format,
        metrics=fleet.metrics,
        source=fleet.source,
        tenant=name,
        tenant_id=tenant_id,
        secrets_key=fleet.secrets_key,
    )
