"""The operator's commands on the store (`zfsync failed`, `retry`, `pending`, `requeue`, `conversation`, `skip`,
`backup`): they read and change the queues while the daemon runs, and never call either API."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from zfsync import config
from zfsync.errors import ConfigError
from zfsync.settings import Settings
from zfsync.store import Store, Waiting


def settings_of(args: argparse.Namespace) -> Settings:
    return config.load(config.resolve_path(args.config))


def store_of(settings: Settings) -> Store:
    return Store.open(settings.store_location, settings.store_password)


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


def cmd_backup(args: argparse.Namespace) -> int:
    target = Path(args.path)
    with opened_store(args) as store:
        store.backup(target)
    print(f"store copied to {target} (mode 0600); to restore: stop zfsync, put it at store.path, start zfsync")
    return 0
