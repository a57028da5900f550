"""The operator's commands on the store (`zfsync failed`, `retry`, `pending`, `requeue`, `conversation`, `skip`,
`import-history`, `backup`, `copy-store`): they read and change the queues while the daemon runs (`copy-store` wants it
stopped), and never call either API."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from zfsync import config, i18n
from zfsync.config import fleet as fleet_config
from zfsync.config.fleet import FleetSettings
from zfsync.config.settings import Settings
from zfsync.domain.errors import ConfigError, ZfsyncError
from zfsync.sides.zalo import permissions
from zfsync.store import Store, Waiting
from zfsync.store.lease import Lease, is_postgres_url
from zfsync.store.secrets import Sealer


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings of the OA the command is about: the config's, or on a fleet's config the tenant's
    that ``--tenant`` names."""
    path = config.resolve_path(args.config)
    name = getattr(args, "tenant", None)
    if fleet_config.is_fleet(path):
        if not name:
            raise ConfigError(f"{path} is a fleet's config: name the OA with --tenant NAME (see `zfsync tenant list`)")
        settings = tenant_settings(fleet_config.load_fleet(path), name)
    elif name:
        raise ConfigError(f"--tenant {name}: {path} serves one OA, not a fleet (a fleet's config has a [fleet] table)")
    else:
        settings = config.load(path)
    i18n.use(settings.sync.language)  # what the command prints, as the desk reads it
    return settings


def tenant_settings(fleet: FleetSettings, name: str) -> Settings:
    from zfsync.cli.tenant import found, open_fleet

    store = open_fleet(fleet)
    try:
        record = found(store, name)
        return fleet_config.tenant_settings(
            fleet, record.name, record.id, record.config, store.tenant_secrets(record.id)
        )
    finally:
        store.close()


def store_of(settings: Settings) -> Store:
    """The store as the settings' OA sees it (on a fleet's store: its tenant's rows only)."""
    return Store.open(
        settings.store_location, settings.store_password, settings.tenant_id, Sealer(settings.secrets_key)
    )


@contextmanager
def opened_store(args: argparse.Namespace) -> Iterator[Store]:
    """The store of the config the command was given, closed when the command is done with it."""
    store = store_of(settings_of(args))
    try:
        yield store
    finally:
        store.close()


def _direction(row: Waiting) -> str:
    return "Zalo → FreshChat" if row.direction == "z2f" else "FreshChat → Zalo"


def _json(rows: list[Waiting]) -> str:
    return json.dumps([asdict(row) for row in rows], indent=2, ensure_ascii=False)


def cmd_failed(args: argparse.Namespace) -> int:
    with opened_store(args) as store:
        rows = store.failed_rows()
    if args.json:
        print(_json(rows))
        return 0
    if not rows:
        print("no failed deliveries")
        return 0
    for row in rows:
        print(
            f"{row.id:>6}  {_direction(row)}  {row.customer}  attempts {row.attempts}"
            f"  {row.error_code or '-'}: {row.last_error}\n        {row.preview()!r}"
        )
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    if not args.all and not args.ids:
        raise ConfigError("zfsync retry: give one or more ids from `zfsync failed`, or --all")
    with opened_store(args) as store:
        count = store.requeue(None if args.all else args.ids)
    print(f"{count} deliveries queued again; the running daemon sends them within seconds")
    return 0 if count or args.all else 1


def cmd_pending(args: argparse.Namespace) -> int:
    with opened_store(args) as store:
        rows = store.open_rows()
    if args.json:
        print(_json(rows))
        return 0
    if not rows:
        print("nothing waits to be delivered")
        return 0
    now = time.time()
    for row in rows:
        waited = max(0.0, now - row.created_at)
        due = max(0.0, row.next_attempt_at - now)
        print(
            f"{row.id:>6}  {_direction(row)}  {row.customer}  {row.kind}"
            f"  waiting {waited:.0f}s  attempts {row.attempts}  next try in {due:.0f}s"
            + (f"\n        last error: {row.last_error}" if row.last_error else "")
        )
    return 0


def cmd_requeue(args: argparse.Namespace) -> int:
    if not args.all and not args.ids:
        raise ConfigError("zfsync requeue: give one or more ids from `zfsync pending`, or --all")
    with opened_store(args) as store:
        count = store.requeue_open(None if args.all else args.ids)
    print(f"{count} waiting deliveries are due now; the running daemon tries them within seconds")
    return 0 if count or args.all else 1


def cmd_import_history(args: argparse.Namespace) -> int:
    from zfsync.sync.read import history

    try:
        job = history.request(args.days, time.time())
    except ValueError as exc:
        raise ConfigError(f"zfsync import-history --days: {exc}") from None
    with opened_store(args) as store:
        earlier = store.history_import()
        store.save_history_import(job)
        started = store.feed_cursor().mark is not None
    if earlier is not None:
        print(
            f"the import of the last {earlier.days} days ({earlier.listed - len(earlier.users or ())} of "
            f"{earlier.listed} customers read) is replaced; nothing it queued is queued again"
        )
    when = "within seconds" if started else "after its first poll of Zalo"
    print(
        f"history import of the last {args.days} days asked for: the running daemon starts it {when}, "
        "behind every live message; `zfsync status` shows how far it got"
    )
    return 0


def cmd_conversation(args: argparse.Namespace) -> int:
    with opened_store(args) as store:
        if args.action == "drop":
            dropped = store.drop_conversation(args.zalo_user_id)
            if dropped is None:
                print(f"zalo user {args.zalo_user_id} has no current conversation")
                return 1
            print(f"conversation {dropped} dropped: the customer's next message (and any waiting) opens a new one")
            return 0
        if not args.conversation_id:
            raise ConfigError("zfsync conversation set: give the FreshChat conversation id to use")
        if not store.map_conversation(args.zalo_user_id, args.conversation_id, time.time()):
            print(f"zalo user {args.zalo_user_id} is not known to zfsync (see `zfsync pending` or the logs)")
            return 1
        print(f"zalo user {args.zalo_user_id} now writes into conversation {args.conversation_id}")
        return 0


def cmd_skip(args: argparse.Namespace) -> int:
    with opened_store(args) as store:
        done = store.skip_failed(args.id, time.time())
    print(f"delivery {args.id} skipped" if done else f"delivery {args.id} is not in the failed list")
    return 0 if done else 1


@dataclass(frozen=True)
class WholeStore:
    """The store a config names, all of it: one OA's, or a fleet's with every tenant."""

    location: Path | str
    password: str
    lease_name: str | None  # one OA on PostgreSQL: the lease its daemons hold; a fleet: None

    @property
    def url(self) -> str:
        return self.location if isinstance(self.location, str) else ""


def whole_store(args: argparse.Namespace) -> WholeStore:
    path = config.resolve_path(args.config)
    if fleet_config.is_fleet(path):
        fleet = fleet_config.load_fleet(path)
        return WholeStore(fleet.store_location, fleet.store_password, None)
    settings = settings_of(args)
    return WholeStore(settings.store_location, settings.store_password, settings.lease_name)


def cmd_backup(args: argparse.Namespace) -> int:
    target = Path(args.path)
    chosen = whole_store(args)
    store = Store.open(chosen.location, chosen.password)
    try:
        store.backup(target)
    finally:
        store.close()
    print(f"store copied to {target} (mode 0600); to restore: stop zfsync, put it at store.path, start zfsync")
    return 0


def cmd_copy_store(args: argparse.Namespace) -> int:
    from zfsync.store.lock import only_instance

    chosen = whole_store(args)
    target_location = config.store_location("copy-store TARGET", args.target)
    source_location = chosen.location
    if target_location == (source_location if is_postgres_url(source_location) else Path(source_location).absolute()):
        raise ConfigError(f"copy-store: {args.target} is this config's own store; name a new one to copy into")
    if not chosen.url and not Path(source_location).exists():
        raise ConfigError(f"copy-store: there is no store at {source_location} to copy")
    # No daemon may write to either store meanwhile: a SQLite file's lock file, a PostgreSQL store's lease.
    with contextlib.ExitStack() as locks:
        for location in (source_location, target_location):
            if not is_postgres_url(location):
                locks.enter_context(only_instance(Path(location)))
        source = Store.open(source_location, chosen.password)
        target = Store.open(target_location, chosen.password)
        held: list[Lease] = []
        try:
            for store in (source, target):
                if store.postgres and store.live_members():
                    raise ZfsyncError(f"copy-store: a fleet's daemon is running on {store.where}: stop it on every VM")
                lease = store.lease(chosen.lease_name) if chosen.lease_name else None
                if lease is None:
                    continue
                held.append(lease)
                if not lease.try_acquire("zfsync copy-store"):
                    raise ZfsyncError(f"copy-store: a zfsync daemon is running on {store.where}: stop it on every VM")
            counts = source.copy_into(target)
        finally:
            for lease in held:
                lease.release()
            target.close()
            source.close()
    where = f'url = "{target_location}"' if is_postgres_url(target_location) else f'path = "{target_location}"'
    print(
        f"copied {source.where} to {target.where} (contacts {counts['contact']}, conversations"
        f" {counts['conversation']}, messages {counts['message']}, tokens and cursors); set [store] {where}"
        " and start zfsync"
    )
    return 0


def forget_permission_refusals(store: Store, groups: set[str] | None = None) -> None:
    """Forget the refusals of ``groups`` (all: a new authorisation may grant what was refused; those
    `zfsync check` found granted): the daemon asks Zalo again at its next call."""
    state = store.get_state(permissions.STATE_KEY)
    if state:
        store.set_state(
            permissions.STATE_KEY, permissions.without(state, set(permissions.GROUPS) if groups is None else groups)
        )
