"""`zfsync check`: the config is valid, and each side answers with it: the OA and the permission groups
its app was granted, whether it has group chats (GMF), the FreshChat account, its channels and the routes'
channels and groups. Also `zfsync setup`'s last step."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from zfsync.cli.store import forget_permission_refusals, settings_of, store_of
from zfsync.config import Settings
from zfsync.domain.errors import PermissionMissing, RemoteError, ZfsyncError
from zfsync.sides.zalo import permissions
from zfsync.sides.zalo.client import ZaloClient
from zfsync.store import Store
from zfsync.sync.decide import routing


def cmd_check(args: argparse.Namespace) -> int:
    return 0 if probe(settings_of(args)) == 0 else 1


def probe(settings: Settings) -> int:
    """`zfsync check`'s probes of a valid config (and `zfsync setup`'s last step); returns the problems found."""
    from zfsync.runtime.app import build_clients

    tenant = f", tenant {settings.tenant}" if settings.tenant else ""
    print(f"config {settings.source}{tenant}: valid")
    for file in settings.readable_secrets:
        print(
            f"secrets: WARNING: {file} is readable by every user (security.allow_readable_secrets): chmod o-rwx {file}"
        )
    store = store_of(settings)
    problems = 0
    try:
        clients = build_clients(settings, store)
        clients.zalo.permissions = permissions.Ledger(time.time)  # ask Zalo, whatever the daemon remembers
        try:
            oa = clients.zalo.oa_profile()
            oa_id = oa.get("oa_id") or oa.get("oaid") or "?"
            print(f"zalo: OA {oa.get('name', '?')!r} (id {oa_id}) reachable with the stored token")
        except PermissionMissing:
            print("zalo: the OA's own details are not readable (see the permission groups below)")
        except ZfsyncError as exc:
            problems += 1
            print(f"zalo: PROBLEM: {exc}")
        problems += check_permissions(settings, store, clients.zalo)
        problems += check_groups(settings, clients.zalo)
        try:
            account = clients.freshchat.account_configuration()
            channels = clients.freshchat.channels()
            print(f"freshchat: account {account.get('account_domain') or account.get('account_id') or '?'} reachable")
            for channel in channels:
                mark = "*" if channel.get("id") == settings.freshchat.channel_id else " "
                print(f"  {mark} channel {channel.get('id')}: {channel.get('name', '')}")
            if not any(c.get("id") == settings.freshchat.channel_id for c in channels):
                problems += 1
                print(
                    f"freshchat: PROBLEM: freshchat.channel_id {settings.freshchat.channel_id} is not among the "
                    "account's channels (listed above)"
                )
            problems += check_routes(settings, channels, clients.freshchat.groups if settings.routes else list)
        except ZfsyncError as exc:
            problems += 1
            print(f"freshchat: PROBLEM: {exc}")
    finally:
        store.close()
    return problems


def check_permissions(settings: Settings, store: Store, zalo: ZaloClient) -> int:
    """Which of Zalo's permission groups the app was granted, asked with one harmless call each; a group
    found granted is forgotten as refused, so the daemon uses it again at once. Returns the groups refused."""
    probes: dict[str, Callable[[], object]] = {
        "messages": lambda: zalo.recent_messages(0, 1),
        "send": zalo.package_quota,
        "oa_info": zalo.oa_profile,
        "groups": zalo.groups,
    }
    print("zalo: permission groups the OA granted the app:")
    granted, refused = set(), 0
    for key, call in probes.items():
        group = permissions.GROUPS[key]
        try:
            call()
        except RemoteError as exc:
            if exc.code in permissions.REFUSAL_CODES:
                refused += 1
                url = permissions.SETTINGS_URL.format(app_id=settings.zalo.app_id)
                print(f"  NOT GRANTED  {group.name}: {group.needed_for} cannot work; grant it at {url}")
            else:
                print(f"  unknown      {group.name}: {exc}")
            continue
        granted.add(key)
        print(f"  granted      {group.name}")
    forget_permission_refusals(store, granted)
    return refused


GMF_MISSING = {
    -221: "the OA is not verified",
    -224: "the OA's package has no group chats",
    -235: "not for this OA type",
}


def check_groups(settings: Settings, zalo: ZaloClient) -> int:
    """Whether the OA has Zalo group chats (GMF), and how many; a problem only with ``sync.groups`` on."""
    wanted = "on" if settings.sync.groups else "off: sync.groups = true bridges them"
    try:
        groups = zalo.groups()
    except RemoteError as exc:
        why = GMF_MISSING.get(exc.code if isinstance(exc.code, int) else 0) or str(exc)
        if settings.sync.groups:
            print(f"zalo: PROBLEM: sync.groups is on, but the OA's group chats (GMF) cannot be read: {why}")
            return 1
        print(f"zalo: group chats (GMF): not available ({why}); sync.groups is off")
        return 0
    enabled = sum(g.enabled for g in groups)
    print(f"zalo: group chats (GMF): {len(groups)} group(s), {enabled} enabled; sync.groups is {wanted}")
    return 0


def check_routes(settings: Settings, channels: list[dict], groups: Callable[[], list[dict]]) -> int:
    """Each [[route]]'s channel and group exist in the account; returns how many do not."""
    channel_ids = {str(c.get("id")) for c in channels}
    group_ids = {str(g.get("id")) for g in groups()} if any(r.group_id for r in settings.routes) else set()
    wrong = routing.problems(settings.routes, channel_ids, group_ids)  # what the daemon skips, named here
    for number, route in enumerate(settings.routes, start=1):
        match = (
            f"tag {route.tag!r}"
            if route.tag
            else f"keyword {route.keyword!r}"
            if route.keyword
            else f"oa {route.oa}"
            if route.oa
            else f"zalo_group {route.zalo_group}"
        )
        group = f", group {route.group_id}" if route.group_id else ""
        print(f"  route {number}: {match} -> channel {route.channel_id}{group}")
        for problem in wrong.get(number, []):
            print(f"freshchat: PROBLEM: [[route]] {number} {problem}")
    return sum(len(found) for found in wrong.values())
