"""The `zfsync` command: parse arguments, load config, call the library. One error handler for all.

The top layer: it may import every other (the runtime, the sides, the store, the simulators for
`zfsync sim` and `zfsync demo`); nothing imports it."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from zfsync import __version__, config, log
from zfsync.cli.auth import cmd_auth
from zfsync.cli.check import cmd_check
from zfsync.cli.store import (
    cmd_backup,
    cmd_conversation,
    cmd_copy_store,
    cmd_failed,
    cmd_import_history,
    cmd_pending,
    cmd_requeue,
    cmd_retry,
    cmd_skip,
    settings_of,
    store_of,
)
from zfsync.cli.templates import cmd_templates
from zfsync.cli.tenant import add_parser as add_tenant_parser
from zfsync.cli.tenant import cmd_tenant
from zfsync.config import Settings
from zfsync.config import fleet as fleet_config
from zfsync.domain.errors import ConfigError, RemoteError, StoreError, ZfsyncError
from zfsync.sides.freshchat.client import FreshChatClient

Command = Callable[[argparse.Namespace], int]


# --- commands -------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from zfsync.runtime.app import build_clients, build_engine
    from zfsync.runtime.daemon import Daemon, lane_crash_handler, watch_of
    from zfsync.store.lock import only_instance

    path = config.resolve_path(args.config)
    if fleet_config.is_fleet(path):
        from zfsync.cli.tenant import run_fleet

        return run_fleet(fleet_config.load_fleet(path))
    settings = settings_of(args)
    log.setup(settings.log_level, settings.log_format)
    for file in settings.readable_secrets:
        structlog.get_logger("zfsync").warning(
            "secrets_readable_by_everyone",
            file=str(file),
            fix=f"chmod o-rwx {file}",
            allowed_by="security.allow_readable_secrets",
        )
    # SQLite: one daemon per store, by a lock file. PostgreSQL: any number, one active by the store's lease.
    with contextlib.nullcontext() if settings.store_url else only_instance(settings.store_path):
        store = store_of(settings)
        try:
            clients = build_clients(settings, store, time.time, monotonic=time.monotonic)
            watch = watch_of(settings)
            engine = build_engine(
                settings,
                store,
                clients.zalo,
                clients.freshchat,
                time.time,
                time.monotonic,
                on_lane_crash=lane_crash_handler(watch),
            )
            reload = secret_reloader(settings, clients.freshchat)
            lease = store.lease(settings.lease_name)
            Daemon(settings, store, engine, reload_secrets=reload, lease=lease, store_watch=watch).run()
        finally:
            store.close()
    return 0


def secret_reloader(settings: Settings, freshchat: FreshChatClient) -> Callable[[], None]:
    """While FreshChat refuses the key, re-read the secret files: a replaced key is used at once."""
    current = settings.freshchat.api_key

    def reload() -> None:
        nonlocal current
        if settings.source is None:
            return
        key = config.secret_files(settings.source).get("ZFSYNC_FRESHCHAT_API_KEY", "")
        if key and key != current:
            freshchat.use_api_key(key)
            current = key
            structlog.get_logger("zfsync").info("freshchat_api_key_reloaded")

    return reload


def cmd_status(args: argparse.Namespace) -> int:
    from zfsync.cli import status_text
    from zfsync.runtime import status

    path = config.resolve_path(args.config)
    if fleet_config.is_fleet(path) and not args.tenant:
        from zfsync.cli.tenant import fleet_status

        return fleet_status(fleet_config.load_fleet(path), args.json)
    settings = settings_of(args)
    if not settings.store_url and not settings.store_path.exists():
        print(f"zfsync: down\n  no store at {settings.store_path}: start the service (`zfsync run`) first")
        return status.DOWN
    try:
        store = store_of(settings)
        try:
            report = status.collect(
                store, zalo_interval=settings.zalo.poll_interval, unanswered_minutes=settings.sync.unanswered_minutes
            )
        finally:
            store.close()
    except StoreError as exc:
        print(f"zfsync: down\n  {exc}")
        return status.DOWN
    if args.prometheus:
        from zfsync.runtime import metrics

        store = store_of(settings)
        try:
            reg = metrics.registry(store, settings.zalo.poll_interval, False, settings.sync.unanswered_minutes)
            metrics.write_textfile(Path(args.prometheus), reg)
        finally:
            store.close()
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else status_text.render(report))
    return int(report["exit_code"])


def cmd_setup(args: argparse.Namespace) -> int:
    import os

    from zfsync.cli import setup
    from zfsync.cli.check import probe

    if args.config:
        path = Path(args.config)
    elif os.environ.get("ZFSYNC_CONFIG"):
        path = Path(os.environ["ZFSYNC_CONFIG"])
    else:
        path = Path("/etc/zfsync/config.toml") if Path("/etc/zfsync").is_dir() else Path("config.toml")
    if args.non_interactive:
        asker: setup.Asker = setup.Given(setup.given_answers(args, dict(os.environ)), yes=args.yes)
    else:
        if not sys.stdin.isatty():
            raise ConfigError("zfsync setup asks questions on a terminal: run it on one, or pass --non-interactive")
        asker = setup.Prompter()

    return setup.Setup(
        asker,
        path.absolute(),
        insecure=args.allow_insecure_http,
        zalo_api_url=args.zalo_api_url or "",
        zalo_oauth_url=args.zalo_oauth_url or "",
        force=args.force,
        start=True if args.start else (False if args.non_interactive else None),
        probe=lambda config_path: probe(settings_of(argparse.Namespace(config=str(config_path)))),
    ).run()


def cmd_sim(args: argparse.Namespace) -> int:
    from zfsync.sim.runner import serve

    return serve(args.host, args.zalo_port, args.freshchat_port, args.rtt)


def cmd_demo(args: argparse.Namespace) -> int:
    from zfsync.cli.demo import run_demo

    return run_demo(keep=args.keep)


# --- parser ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    return _parser_and_commands()[0]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """Each command `zfsync --help` lists, with its parser (tests/unit/test_docs.py checks each is documented)."""
    return dict(_parser_and_commands()[1])


def flags(parser: argparse.ArgumentParser) -> set[str]:
    """The options a command takes, as its help lists them."""
    return {option for action in parser._actions for option in action.option_strings}


def _parser_and_commands() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="zfsync",
        description="Bridge a Zalo Official Account and FreshChat by polling both APIs.",
    )
    parser.add_argument("--version", action="version", version=f"zfsync {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="config file (default: $ZFSYNC_CONFIG, ./config.toml, /etc/zfsync/config.toml)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Command, help_text: str, per_oa: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler, tenant=None)
        if per_oa:
            p.add_argument("--tenant", metavar="NAME", help="on a fleet's config: the tenant (OA) meant")
        return p

    add("run", cmd_run, "run the daemon in the foreground (systemd runs this)")
    p = add("status", cmd_status, "health and figures from the store; exit 0 healthy, 1 degraded, 2 down", per_oa=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--prometheus", metavar="FILE", help="also write metrics for node_exporter's textfile collector")
    add("check", cmd_check, "validate the config and probe both APIs", per_oa=True)
    p = add("setup", cmd_setup, "first run: ask for both APIs, authorise the OA, write the config and secrets, check")
    p.add_argument("--non-interactive", action="store_true", help="take every answer from flags or ZFSYNC_SETUP_*")
    for flag, text in (
        ("--freshchat-api-url", "FreshChat's API URL, e.g. https://api.freshchat.com"),
        ("--channel-id", "the FreshChat channel id (or its number in the list)"),
        ("--group-id", "a FreshChat group to assign new conversations to (default: none)"),
        ("--zalo-app-id", "the Zalo app id"),
        ("--redirect-uri", "the app's registered Official Account callback URL (https)"),
        ("--zalo-refresh-token", "a refresh token from Zalo's API Explorer (non-interactive)"),
        ("--store-path", "the SQLite store (default: /var/lib/zfsync/zfsync.db beside /etc/zfsync)"),
        ("--language", "agent notes' language: vi (default) or en"),
        ("--after-resolve", "a message after a resolve: reopen (within 24 h, the default) or new"),
        ("--zalo-api-url", "another Zalo API host (the simulators)"),
        ("--zalo-oauth-url", "another Zalo OAuth host (the simulators)"),
    ):
        p.add_argument(flag, metavar="VALUE", help=text)
    p.add_argument("--allow-insecure-http", action="store_true", help="allow http:// API URLs (the simulators)")
    p.add_argument("--force", action="store_true", help="replace existing files (each is kept as a backup)")
    p.add_argument(
        "--yes", action="store_true", help="confirm the OA Zalo authorised, and the writing (non-interactive)"
    )
    p.add_argument("--start", action="store_true", help="systemctl enable --now zfsync at the end")
    p = add("auth", cmd_auth, "authorise zfsync on the Zalo OA (OAuth v4)", per_oa=True)
    p.add_argument("provider", choices=["zalo"], help="only zalo needs authorising")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--code", metavar="CODE", help="exchange the authorization code from the callback URL")
    group.add_argument(
        "--refresh-token",
        metavar="TOKEN",
        help="import a refresh token (e.g. from the API Explorer)",
    )
    p = add("failed", cmd_failed, "list deliveries that failed, with reason and attempts", per_oa=True)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("retry", cmd_retry, "queue failed deliveries again", per_oa=True)
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="ids from `zfsync failed`")
    p.add_argument("--all", action="store_true", help="every failed delivery")
    p = add("skip", cmd_skip, "give up one failed delivery for good", per_oa=True)
    p.add_argument("id", type=int, metavar="ID")
    p = add(
        "pending", cmd_pending, "list deliveries still waiting, with their age, attempts and last error", per_oa=True
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("requeue", cmd_requeue, "make waiting deliveries due now, their backoff forgotten", per_oa=True)
    p.add_argument("ids", nargs="*", type=int, metavar="ID", help="ids from `zfsync pending`")
    p.add_argument("--all", action="store_true", help="every waiting delivery")
    p = add("conversation", cmd_conversation, "repair a customer's FreshChat conversation by hand", per_oa=True)
    p.add_argument(
        "action", choices=["drop", "set"], help="drop: forget it (the next message opens a new one); set: use another"
    )
    p.add_argument("zalo_user_id", metavar="ZALO_USER_ID")
    p.add_argument("conversation_id", nargs="?", metavar="CONVERSATION_ID", help="with set: the conversation to use")
    p = add(
        "import-history",
        cmd_import_history,
        "copy each customer's Zalo history of the last days into FreshChat, behind live messages",
        per_oa=True,
    )
    p.add_argument("--days", type=int, required=True, metavar="N", help="how many days back, today included (1 to 365)")
    p = add("backup", cmd_backup, "copy the store consistently while the daemon runs (SQLite online backup)")
    p.add_argument("path", metavar="PATH", help="a new file for the copy")
    p = add(
        "copy-store",
        cmd_copy_store,
        "copy the store into a new, empty one (SQLite to PostgreSQL, for a standby VM); stop zfsync first",
    )
    p.add_argument(
        "target", metavar="TARGET", help="postgresql://user@host/db (password: ZFSYNC_STORE_PASSWORD) or a file"
    )
    p = add("tenant", cmd_tenant, "a fleet's tenants: add, list, show, pause, resume, remove, import-store, rekey")
    add_tenant_parser(p)
    p = add(
        "templates",
        cmd_templates,
        "the OA's ZNS templates from Zalo, with their parameters, and the day's quota",
        per_oa=True,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add("sim", cmd_sim, "run the Zalo and FreshChat simulators on loopback until interrupted")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--zalo-port", type=int, default=8701)
    p.add_argument("--freshchat-port", type=int, default=8702)
    p.add_argument("--rtt", type=float, default=0.0, help="seconds added to every API request")
    p = add("demo", cmd_demo, "simulators + the real daemon + a scripted conversation, printed as it crosses")
    p.add_argument("--keep", action="store_true", help="keep the demo's temporary folder (config, store, logs)")
    return parser, dict(sub.choices)


# Flags whose value is a token: Zalo's tokens may start with "-", which argparse would read as a flag.
TOKEN_FLAGS = ("--refresh-token", "--zalo-refresh-token")


def joined_token_flags(argv: Sequence[str]) -> list[str]:
    """``--refresh-token -abc`` as ``--refresh-token=-abc``: a token is never taken for a flag."""
    joined: list[str] = []
    pending = False
    for arg in argv:
        if pending:
            joined[-1] = f"{joined[-1]}={arg}"
            pending = False
        else:
            joined.append(arg)
            pending = arg in TOKEN_FLAGS
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(joined_token_flags(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"zfsync: {exc}", file=sys.stderr)
        return 2
    except (StoreError, RemoteError, ZfsyncError) as exc:
        print(f"zfsync: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
