"""`zfsync status`: health and figures from the store alone, whether the daemon runs or not.

It never says healthy while a direction is stuck: besides each side's last answer, it checks that each
side was polled recently, that no message has waited too long, that the daemon is not restarting over and
over, and that nothing failed; each problem comes with what to do about it.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from zfsync.domain import SideHealth, vietnam_day_start
from zfsync.i18n import _
from zfsync.sides.zalo import permissions
from zfsync.store import Store
from zfsync.store.health import Beacon
from zfsync.sync.desk.reminders import PACKAGE_KEY
from zfsync.sync.desk.unanswered import waiting_range

HISTORY_PACE_WINDOW = 600.0  # seconds of imported deliveries the time left is estimated from
USER_LIST_CUT_SHOWN = 86_400.0  # seconds a cut user list stays a problem line
GROUPS_REFUSED_SHOWN = 7200.0  # the daemon asks again hourly: an older refusal is not its last word
HEARTBEAT_KEY = "daemon.heartbeat"  # written by the daemon: when it last beat, or "stopped"
STARTS_KEY = "daemon.starts"  # written by the daemon: its last few start times, to tell a crash loop
ACTIVE_KEY = "daemon.active"  # written by the active daemon of a shared store: its host, pid and since when
QUOTA_KEY = "daemon.quotas"  # written by the daemon: each side's request budget, and the Zalo poll interval
PROBE_KEY = "daemon.probe"  # written by a daemon whose store refused a write, to learn when it takes them again
SLOW_KEY = "daemon.slow"  # written by the daemon: deliveries in flight for over a minute (customer, kind, seconds)
STANDBY_PREFIX = "daemon.standby."  # + host: written by a standby daemon, while it waits for the lease
HEARTBEAT_STALE = 120.0
TOKEN_WARNING = 3600.0
POLL_STALE = 120.0  # seconds without a good poll (or five poll intervals, if longer) before a side is stuck
WAIT_LIMIT = 900.0  # seconds a message may wait to be delivered before status calls it stuck
CRASH_LOOP = (3, 600.0)  # this many starts within this many seconds is a crash loop

HEALTHY, DEGRADED, DOWN = 0, 1, 2
FIXES = {
    ("zalo", SideHealth.BAD_CREDENTIALS): "run `zfsync auth zalo --refresh-token TOKEN` (or `zfsync auth zalo`)",
    ("freshchat", SideHealth.BAD_CREDENTIALS): "put a valid ZFSYNC_FRESHCHAT_API_KEY in zfsync.env beside the config "
    "(read again within a minute, no restart needed) and check freshchat.api_url",
}


def collect(
    store: Store, now: float | None = None, zalo_interval: float = 2.0, unanswered_minutes: float = 30.0
) -> dict[str, Any]:
    now = time.time() if now is None else now
    beat = store.get_state(HEARTBEAT_KEY)
    heartbeat_age = None if beat in (None, "stopped") else round(now - float(beat), 1)
    health = store.health()
    figures = store.figures(now)
    sides = {}
    for side in ("zalo", "freshchat"):
        row = health.get(side, {})
        state = row.get("state", "UNKNOWN")
        sides[side] = {
            "state": state,
            "last_ok": row.get("last_ok_at"),
            "last_error": row.get("last_error") or None,
            "last_error_at": row.get("last_error_at"),
            "fix": FIXES.get((side, state)),
        }
    token = store.token_expiry()
    backlog = {d: sum(figures.by_status.get(d, {}).get(s, 0) for s in ("pending", "sending")) for d in ("z2f", "f2z")}
    failed = sum(figures.by_status.get(d, {}).get("failed", 0) for d in ("z2f", "f2z"))
    report: dict[str, Any] = {
        "daemon": {
            "running": heartbeat_age is not None and heartbeat_age < HEARTBEAT_STALE,
            "heartbeat_age": heartbeat_age,
            **_roles(store, now),
        },
        "sides": sides,
        "zalo_token": None
        if token is None
        else {
            "expires_in": round(token[0] - now),
            "dead": token[1] or None,
        },
        "carried": figures.carried,
        "latency": figures.latency,
        "backlog": backlog,
        "failed": failed,
        "conversations": store.conversation_count(),
        "window_refused_today": store.refused_for_window(vietnam_day_start(now)),
        "zns": _zns(store, now),
        "rating_today": dict(zip(("count", "average"), store.rating_day(now), strict=True)),
        "quotas": _json(store.get_state(QUOTA_KEY)) if heartbeat_age is not None else {},
        "slow": _json_list(store.get_state(SLOW_KEY)) if heartbeat_age is not None else [],
        "package": _json(store.get_state(PACKAGE_KEY)).get("kinds") or {},
        "unanswered": _unanswered(store, now, unanswered_minutes),
        "history": _history(store, now),
        "groups": _groups(store),
        "store": _store_health(store, now),
    }
    report["problems"] = problems(store, report, now, zalo_interval)
    report["exit_code"] = verdict(report)
    return report


def _zns(store: Store, now: float) -> dict[str, Any] | None:
    """The day's ZNS quota as a send or `zfsync templates` last read it; a reading of an earlier day
    counts the whole daily quota as left (ZNS's quota is per day)."""
    kept = store.zns_quota()
    if kept is None or kept[1].daily is None:
        return None
    at, quota = kept
    today = at >= vietnam_day_start(now)
    left = quota.remaining if today and quota.remaining is not None else quota.daily
    return {"daily": quota.daily, "remaining": left, "read_at": at, "read_today": today}


def _roles(store: Store, now: float) -> dict[str, Any]:
    """On a store several daemons share: which host is active, and whether this host stands by."""
    active = _json(store.get_state(ACTIVE_KEY))
    standby = _json(store.get_state(STANDBY_PREFIX + socket.gethostname()))
    standing_by = bool(standby) and now - float(standby.get("at", 0)) < HEARTBEAT_STALE
    return {
        "active_host": active.get("host") if active else None,
        "standby_here": standing_by,
    }


def _json(value: str | None) -> dict[str, Any]:
    try:
        found = json.loads(value) if value else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _store_health(store: Store, now: float) -> dict[str, Any]:
    """What the daemon last wrote of its store in the beacon beside it (SQLite): the store cannot hold news
    of its own failure. A beacon the daemon stopped writing says nothing."""
    if store.postgres:
        return {"up": True}
    state = Beacon(store.path).read()
    if state is None or state.up or now - state.at > HEARTBEAT_STALE:
        return {"up": True}
    return {"up": False, "error": state.error, "since": state.since, "failures": state.failures, "fix": state.fix}


def _json_list(value: str | None) -> list[dict[str, Any]]:
    try:
        found = json.loads(value) if value else []
    except ValueError:
        return []
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def problems(store: Store, report: dict[str, Any], now: float, zalo_interval: float) -> list[dict[str, str]]:
    """What keeps zfsync from its work right now, each with the way to fix it."""
    found: list[dict[str, str]] = []
    if report["daemon"]["running"]:
        for side, interval in (("zalo", zalo_interval), ("freshchat", 0.5)):
            info = report["sides"][side]
            limit = max(POLL_STALE, 5 * interval)
            if info["state"] == SideHealth.OK and (info["last_ok"] is None or now - info["last_ok"] > limit):
                found.append(
                    {
                        "what": _("{side} has not been polled for {ago}: its loop is stuck").format(
                            side=side, ago=ago(now, info["last_ok"])
                        ),
                        "fix": _(
                            "see `journalctl -u zfsync -p warning`; `systemctl restart zfsync` restarts the loops"
                        ),
                    }
                )
    for direction, label in (("z2f", "Zalo → FreshChat"), ("f2z", "FreshChat → Zalo")):
        row = store.oldest_open(direction)
        if row is not None and now - row.created_at > WAIT_LIMIT:
            error = _(" (last error: {error})").format(error=row.last_error) if row.last_error else ""
            what = _("{label}: message {id} for {customer} has waited {waited} after {attempts} attempts").format(
                label=label,
                id=row.id,
                customer=row.customer,
                waited=ago(now, row.created_at)[:-4],
                attempts=row.attempts,
            )
            fix = _(
                "`zfsync pending` lists what waits; `zfsync requeue {id}` tries it now, "
                "`zfsync conversation drop {user}` opens a new conversation for that customer"
            ).format(id=row.id, user=row.zalo_user_id)
            found.append({"what": what + error, "fix": fix})
    starts = [float(t) for t in (store.get_state(STARTS_KEY) or "").split(",") if t]
    count, window = CRASH_LOOP
    recent = [t for t in starts if now - t < window]
    if len(recent) >= count:
        found.append(
            {
                "what": _("the daemon started {count} times in the last {minutes} minutes").format(
                    count=len(recent), minutes=f"{window / 60:.0f}"
                ),
                "fix": _("see `journalctl -u zfsync -p warning` for why it stops"),
            }
        )
    found += _permission_problems(store.get_state(permissions.STATE_KEY), now)
    for route, (why, _since) in sorted(store.route_problems().items()):
        found.append(
            {
                "what": _("[[route]] {route}: {why}; its customers open in the default channel").format(
                    route=route, why=why
                ),
                "fix": _(
                    "correct channel_id or group_id in [[route]] {route} (`zfsync check` lists the account's "
                    "channels and groups), then restart zfsync"
                ).format(route=route),
            }
        )
    cut = store.user_list_cut()
    if cut is not None and now - cut[0] < USER_LIST_CUT_SHOWN:
        days = ", ".join(f"{period.split(':')[0].replace('_', '-')} ({total})" for period, total in cut[1][:5])
        found.append(
            {
                "what": _(
                    "Zalo: more customers interacted on a day than Zalo lets be listed (10,000): {days}; a "
                    "catch-up after downtime or a history import of those days may miss some of them"
                ).format(days=days),
                "fix": _(
                    "keep the daemon's downtime short on such days (the live feed misses nobody); see "
                    "`journalctl -u zfsync | grep zalo_user_list_cut`"
                ),
            }
        )
    groups = report.get("groups") or {}
    if groups.get("refused") and now - groups["refused_at"] < GROUPS_REFUSED_SHOWN:
        found.append(
            {
                "what": _("Zalo refuses the OA's group chats (sync.groups): {why}").format(why=groups["refused"]),
                "fix": _(
                    "the OA admin verifies the OA or adds group chats (GMF) to its package, then `zfsync check`; "
                    "or set sync.groups = false. Customers' own chats are not affected"
                ),
            }
        )
    if report["failed"]:
        found.append(
            {
                "what": _("{count} deliveries failed for good").format(count=report["failed"]),
                "fix": _("`zfsync failed` lists them with the reason; `zfsync retry ID` or `zfsync skip ID`"),
            }
        )
    return found


def _permission_problems(state: str | None, now: float) -> list[dict[str, str]]:
    """The Zalo permission groups the daemon found refused (`zfsync.sides.zalo.permissions`)."""
    app = permissions.app_of(state) or "APP_ID"
    found = []
    for key, seen in permissions.missing(state).items():
        group = permissions.GROUPS[key]
        since = seen.get("since")
        found.append(
            {
                "what": _(
                    "Zalo: the OA has not granted the app the permission group «{permission}» (for {ago}): "
                    "{without_it} go without it; customers' messages and agents' replies still cross"
                ).format(
                    permission=group.name,
                    ago=ago(now, float(since) if isinstance(since, int | float) else None)[:-4],
                    without_it=_(group.needed_for),
                ),
                "fix": _(
                    "the OA admin grants it at {url} (the app's OA settings), then run `zfsync check`; "
                    "the daemon also asks Zalo again every hour"
                ).format(url=permissions.SETTINGS_URL.format(app_id=app)),
            }
        )
    return found


def verdict(report: dict[str, Any]) -> int:
    if not report["daemon"]["running"] or not report["store"]["up"]:
        return DOWN
    states = [s["state"] for s in report["sides"].values()]
    if any(state in (SideHealth.BAD_CREDENTIALS, SideHealth.PERMANENT_ERROR) for state in states):
        return DOWN
    token = report["zalo_token"]
    if token is None or token["dead"]:
        return DOWN
    if any(state != SideHealth.OK for state in states) or report["problems"] or token["expires_in"] < TOKEN_WARNING:
        return DEGRADED
    return HEALTHY


def _unanswered(store: Store, now: float, after_minutes: float) -> dict[str, Any]:
    """Customers whose last message no agent has answered for ``after_minutes`` (within Zalo's window)."""
    if not after_minutes:
        return {"after_minutes": 0, "count": 0, "longest_seconds": 0.0}
    before, after = waiting_range(now, after_minutes)
    count, oldest_ms = store.unanswered(before, after)
    longest = round(now - oldest_ms / 1000, 1) if count else 0.0
    return {"after_minutes": after_minutes, "count": count, "longest_seconds": longest}


def _groups(store: Store) -> dict[str, Any] | None:
    """The OA's group chats as the daemon last read them (None: never read)."""
    book = store.group_book()
    if book.baseline is None and not book.refused:
        return None
    ends = [g.valid_through for g in book.groups if g.enabled and g.valid_through]
    first_end = min(ends, key=lambda day: day.split("/")[::-1], default="")
    enabled = sum(g.enabled for g in book.groups)
    return {
        "known": len(book.groups),
        "enabled": enabled,
        "first_end": first_end,
        "refused": book.refused,
        "refused_at": book.refused_at,
    }


def _history(store: Store, now: float) -> dict[str, Any]:
    """A history import under way (`zfsync import-history`), the imported messages still waiting, and
    how long they will take at the pace of the last minutes (None: no pace yet)."""
    job = store.history_import()
    listed = job.users is not None if job else False
    waiting = store.history_waiting()
    pace = store.history_delivered_since(now - HISTORY_PACE_WINDOW) / HISTORY_PACE_WINDOW if waiting else 0.0
    return {
        "per_minute": round(pace * 60, 1),
        "eta_seconds": round(waiting / pace) if pace else None,
        "days": job.days if job else None,
        "customers": job.listed if job else 0,
        "customers_read": job.listed - len(job.users or ()) if job and listed else 0,
        "queued": job.queued if job else 0,
        "waiting": store.history_waiting(),
    }


def ago(now: float, when: float | None) -> str:
    if when is None:
        return "never"
    seconds = max(0, now - when)
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}min ago"
