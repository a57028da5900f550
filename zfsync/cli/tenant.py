"""`zfsync tenant`: the OAs a fleet serves, each with its FreshChat account (docs/fleet.md).

Every command reads the fleet's config (a config.toml with ``[fleet]``) and its secrets key. A tenant's
config is checked as `zfsync check` checks one before anything is written; its secrets are sealed before
they reach the store and are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from zfsync import config
from zfsync.config import fleet as fleet_config
from zfsync.config.fleet import FleetSettings
from zfsync.config.keys import FRESHCHAT_KEY_ENV, SECRETS_KEY_ENV, ZALO_SECRET_ENV
from zfsync.domain.errors import ConfigError, StoreError
from zfsync.log import remember_secret
from zfsync.store import Store
from zfsync.store.fleet import TenantRecord
from zfsync.store.secrets import Sealer, new_key

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
TENANT_SECRETS = (FRESHCHAT_KEY_ENV, ZALO_SECRET_ENV)
RELEASE_WAIT = 60.0  # seconds `remove` waits for the daemon serving a tenant to let it go


def fleet_of(args: argparse.Namespace) -> FleetSettings:
    path = config.resolve_path(args.config)
    if not fleet_config.is_fleet(path):
        raise ConfigError(f"config file {path} serves one OA: `zfsync tenant` needs a fleet's config ([fleet] table)")
    return fleet_config.load_fleet(path)


def open_fleet(fleet: FleetSettings, connections: int = 0) -> Store:
    """The fleet's store; ``connections``: shared among the threads (the daemon's, on PostgreSQL)."""
    return Store.open(
        fleet.store_location, fleet.store_password, sealer=Sealer(fleet.secrets_key), connections=connections
    )


@contextlib.contextmanager
def fleet_store(args: argparse.Namespace) -> Iterator[tuple[FleetSettings, Store]]:
    fleet = fleet_of(args)
    store = open_fleet(fleet)
    try:
        yield fleet, store
    finally:
        store.close()


def found(store: Store, name: str) -> TenantRecord:
    record = store.tenant_named(name)
    if record is None:
        known = ", ".join(t.name for t in store.tenants()) or "none yet"
        raise ConfigError(f"no tenant {name!r} in this fleet (tenants: {known}): see `zfsync tenant list`")
    return record


def _read_tenant_files(name: str, config_path: str, env_path: str | None) -> tuple[str, dict[str, str]]:
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"tenant name {name!r}: expected 1 to 40 lower-case letters, digits, - or _, "
            "starting with a letter or digit"
        )
    path = Path(config_path)
    config.read_toml(path)  # a clear line for a missing, unreadable or malformed file
    text = path.read_text(encoding="utf-8")
    env_files = [Path(env_path)] if env_path else [path.parent / n for n in config.SECRET_FILES]
    if env_path and not Path(env_path).is_file():
        raise ConfigError(f"--env {env_path} does not exist: name the tenant's env file (ZFSYNC_FRESHCHAT_API_KEY...)")
    secrets: dict[str, str] = {}
    for file in env_files:
        if file.is_file():
            secrets.update({k: v.strip() for k, v in dotenv_values(file).items() if k in TENANT_SECRETS and v})
    remember_secret(*secrets.values())
    return text, secrets


def cmd_tenant(args: argparse.Namespace) -> int:
    if args.action == "rekey" and args.new_key:
        print(new_key())  # a key to put first in ZFSYNC_SECRETS_KEY; nothing is read or written
        return 0
    if args.action not in ("list", "rekey") and not args.name:
        raise ConfigError(f"zfsync tenant {args.action}: name the tenant (zfsync tenant {args.action} NAME)")
    if args.path and args.action != "import-store":
        raise ConfigError(f"zfsync tenant {args.action}: unexpected {args.path!r} after the name")
    with fleet_store(args) as (fleet, store):
        return int(ACTIONS[args.action](args, fleet, store))


def _add(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    if not args.config_file:
        raise ConfigError("zfsync tenant add NAME --config oa.toml [--env oa.env]: --config is missing")
    text, secrets = _read_tenant_files(args.name, args.config_file, args.env)
    settings = fleet_config.tenant_settings(
        fleet, args.name, 0, text, secrets
    )  # every key checked: nothing written yet
    if store.tenant_named(args.name) is not None:
        raise ConfigError(
            f"tenant {args.name} exists already: pick another name, or `zfsync tenant remove {args.name}`"
        )
    same = [t.name for t in store.tenants() if _oa_of(t) == (settings.zalo.app_id, settings.freshchat.channel_id)]
    sealed = store.sealer.seal(json.dumps(secrets))
    record = store.add_tenant(args.name, text, sealed, settings.zalo.app_id, paused=args.paused)
    print(f"tenant {record.name} added (id {record.id}){', paused' if args.paused else ''}")
    if same:
        print(f"  note: tenant {same[0]} uses the same Zalo app and FreshChat channel")
    if not args.no_check:
        from zfsync.cli.check import probe

        probe(fleet_config.tenant_settings(fleet, record.name, record.id, text, secrets))
    print(f"next: zfsync auth zalo --tenant {record.name} --refresh-token TOKEN (or the permission link)")
    return 0


def _oa_of(record: TenantRecord) -> tuple[str, str]:
    try:
        raw = fleet_config.tenant_mapping(record.config, record.name)
        return str(raw.get("zalo", {}).get("app_id", "")), str(raw.get("freshchat", {}).get("channel_id", ""))
    except ConfigError:
        return "", ""


def _list(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    now = store.db_now()
    records = store.tenants()
    if args.json:
        print(json.dumps([_shown(r, store, now) for r in records], indent=2, ensure_ascii=False))
        return 0
    if not records:
        print("no tenants yet: zfsync tenant add NAME --config oa.toml")
    for r in records:
        shown = _shown(r, store, now)
        owner = shown["owner"] or "-"
        print(f"{r.name:<20} {shown['state']:<8} app {r.zalo_app_id:<20} owner {owner:<24} queued {shown['queued']}")
    return 0


def _shown(record: TenantRecord, store: Store, now: float) -> dict[str, object]:
    return {
        "name": record.name,
        "id": record.id,
        "state": "paused" if record.paused else "active",
        "zalo_app_id": record.zalo_app_id,
        "owner": record.owner if record.owned(now) else "",
        "queued": store.queued(record.id),
        "added_at": record.created_at,
    }


def _show(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    record = found(store, args.name)
    shown = _shown(record, store, store.db_now())
    secrets = store.tenant_secrets(record.id)
    shown["secrets"] = {name: ("set" if secrets.get(name) else "missing") for name in TENANT_SECRETS}
    shown["config"] = record.config
    if args.json:
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return 0
    for key, value in shown.items():
        if key != "config":
            print(f"{key}: {value}")
    print("config:\n  " + "\n  ".join(record.config.strip().splitlines()))
    return 0


def _pause(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    found(store, args.name)
    store.set_paused(args.name, True)
    print(f"tenant {args.name} paused: its daemon stops serving it within seconds; its queue is kept")
    return 0


def _resume(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    found(store, args.name)
    store.set_paused(args.name, False)
    print(f"tenant {args.name} resumed: a daemon takes it up within seconds")
    return 0


def _remove(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    record = found(store, args.name)
    queued = store.queued(record.id)
    if queued and not args.drop_queue:
        raise StoreError(
            f"tenant {args.name} has {queued} messages queued or failed: let them go out first "
            f"(`zfsync pending --tenant {args.name}`), or pass --drop-queue to lose them"
        )
    if not record.paused:
        store.set_paused(args.name, True)
    give_up = time.monotonic() + RELEASE_WAIT
    while (current := store.tenant_named(args.name)) is not None and current.owned(store.db_now()):
        if time.monotonic() > give_up:
            raise StoreError(
                f"tenant {args.name} is still served by {current.owner}: it is paused now; try again once that daemon "
                "has let it go (or is stopped)"
            )
        time.sleep(0.5)
    deleted = store.drop_tenant(record.id)
    print(f"tenant {args.name} removed ({', '.join(f'{n} {k}' for k, n in deleted.items() if n) or 'no rows'})")
    return 0


def _import_store(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    from zfsync.store.lock import only_instance

    record = found(store, args.name)
    if not record.paused or record.owned(store.db_now()):
        raise ConfigError(
            f"tenant {args.name} must be paused and let go by its daemon first: `zfsync tenant pause {args.name}`"
        )
    path = Path(args.path).expanduser().absolute()
    if not path.is_file():
        raise ConfigError(f"import-store: there is no SQLite store at {path}")
    with only_instance(path):  # the single-OA daemon must be stopped
        source = Store.open(path)
        try:
            counts = store.import_desk(source, record.id, store.sealer.reseal)
        finally:
            source.close()
    print(f"tenant {args.name}: imported {', '.join(f'{n} {k}' for k, n in counts.items())}")
    print(f"the old store at {path} is left as it was; `zfsync tenant resume {args.name}` to serve it")
    return 0


def _rekey(args: argparse.Namespace, fleet: FleetSettings, store: Store) -> int:
    if len(store.sealer.keys) < 2:
        raise ConfigError(
            f"zfsync tenant rekey: {SECRETS_KEY_ENV} lists one key; put a new one first, comma, the old one "
            "(`zfsync tenant rekey --new-key` makes one), run this, then keep only the new one"
        )
    changed = store.reseal(store.sealer.reseal)
    print(f"{changed} secrets sealed again with the first key of {SECRETS_KEY_ENV}: you may now drop the others")
    return 0


def run_fleet(fleet: FleetSettings) -> int:
    """`zfsync run` on a fleet's config: this daemon's share of the tenants (docs/fleet.md)."""
    from zfsync import log
    from zfsync.runtime.fleet import Fleet
    from zfsync.store.lock import only_instance

    log.setup(fleet.log_level, fleet.log_format)
    # SQLite: one daemon serves the whole fleet (its lock file). PostgreSQL: any number share it.
    with contextlib.nullcontext() if fleet.store_url else only_instance(fleet.store_path):
        store = open_fleet(fleet, fleet.store_connections if fleet.store_url else 0)
        try:
            Fleet(fleet, store).run()
        finally:
            store.close()
    return 0


def fleet_status(fleet: FleetSettings, as_json: bool) -> int:
    """One line per tenant (healthy, degraded, down or paused; backlog; owner) and each Zalo app's budget."""
    from zfsync.runtime import status

    store = open_fleet(fleet)
    try:
        now = store.db_now()
        lines: list[dict[str, Any]] = []
        apps: dict[str, dict[str, dict[str, Any]]] = {}
        worst = 0
        for record in store.tenants():
            view = store.for_tenant(record.id)
            try:
                settings = fleet_config.tenant_settings(
                    fleet, record.name, record.id, record.config, store.tenant_secrets(record.id)
                )
                report = status.collect(
                    view, zalo_interval=settings.zalo.poll_interval, unanswered_minutes=settings.sync.unanswered_minutes
                )
                code, problems = int(report["exit_code"]), list(report.get("problems", []))
                backlog = sum(report["backlog"].values())
                quota = report.get("quotas", {}).get("zalo") or {}
            except (ConfigError, StoreError) as exc:
                code, problems, backlog, quota = status.DOWN, [str(exc)], store.queued(record.id), {}
            state = "paused" if record.paused else ("healthy", "degraded", "down")[min(code, 2)]
            worst = max(worst, 0 if record.paused else code)
            owner = record.owner if record.owned(now) else ""
            if owner and quota:
                apps.setdefault(record.zalo_app_id, {})[owner] = quota
            lines.append(
                {"tenant": record.name, "state": state, "backlog": backlog, "owner": owner, "problems": problems}
            )
        budgets = {
            app: {
                "used": sum(int(q.get("used", 0)) for q in by.values()),
                "limit": sum(int(q.get("limit", 0)) for q in by.values()),
            }
            for app, by in apps.items()
        }
    finally:
        store.close()
    if as_json:
        print(json.dumps({"tenants": lines, "zalo_apps": budgets, "exit_code": worst}, indent=2, ensure_ascii=False))
        return worst
    print(f"zfsync fleet: {len(lines)} tenants")
    for line in lines:
        print(f"  {line['tenant']:<20} {line['state']:<9} backlog {line['backlog']:<6} owner {line['owner'] or '-'}")
        for problem in line["problems"][:3]:
            print(f"      {problem}")
    for app, budget in budgets.items():
        print(f"  zalo app {app}: {budget['used']} of {budget['limit']} requests in the last minute")
    return worst


ACTIONS = {
    "add": _add,
    "list": _list,
    "show": _show,
    "pause": _pause,
    "resume": _resume,
    "remove": _remove,
    "import-store": _import_store,
    "rekey": _rekey,
}


def add_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=list(ACTIONS), help="what to do (docs/fleet.md)")
    p.add_argument("name", nargs="?", metavar="NAME", help="the tenant (all but list and rekey)")
    p.add_argument("path", nargs="?", metavar="PATH", help="import-store: the single-OA SQLite store to move in")
    p.add_argument("--config", dest="config_file", metavar="OA_TOML", help="add: the tenant's single-OA config.toml")
    p.add_argument("--env", metavar="OA_ENV", help="add: its secrets file (default: zfsync.env or .env beside it)")
    p.add_argument("--paused", action="store_true", help="add: do not serve it yet (e.g. before import-store)")
    p.add_argument("--no-check", action="store_true", help="add: skip probing both APIs")
    p.add_argument("--drop-queue", action="store_true", help="remove: even with messages still queued")
    p.add_argument("--json", action="store_true", help="list, show: machine-readable output")
    p.add_argument("--new-key", action="store_true", help="rekey: print a new key and do nothing else")
