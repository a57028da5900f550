"""What `zfsync status` prints: the daemon's report (`zfsync.runtime.status`) as lines an operator reads."""

from __future__ import annotations

import time
from typing import Any

from zfsync.domain import SideHealth
from zfsync.runtime.status import DEGRADED, DOWN, HEALTHY, ago
from zfsync.sides.zalo import wire


def render(report: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    words = {HEALTHY: "healthy", DEGRADED: "degraded", DOWN: "down"}
    daemon = report["daemon"]
    lines = [f"zfsync: {words[report['exit_code']]}"]
    lines.append(
        f"  daemon     {'running' if daemon['running'] else 'not running'}"
        + (f" (heartbeat {daemon['heartbeat_age']}s ago)" if daemon["heartbeat_age"] is not None else "")
        + (f" on {daemon['active_host']}" if daemon.get("active_host") else "")
    )
    store = report["store"]
    if not store["up"]:
        lines.append(f"  store      DOWN for {ago(now, store['since'])[:-4]}: {store['error']}")
        lines.append(f"             fix: {store['fix']}")
    if daemon.get("standby_here"):
        lines.append(f"  this host  standby, active is {daemon.get('active_host') or 'unknown'}")
    for side, info in report["sides"].items():
        line = f"  {side:<10} {info['state']}, last good poll {ago(now, info['last_ok'])}"
        lines.append(line)
        if info["state"] != SideHealth.OK and info["last_error"]:
            lines.append(f"             last error: {info['last_error']}")
        if info["fix"]:
            lines.append(f"             fix: {info['fix']}")
    token = report["zalo_token"]
    if token is None:
        lines.append("  zalo token none stored: run `zfsync auth zalo`")
    elif token["dead"]:
        lines.append(f"  zalo token dead: {token['dead']}")
    else:
        lines.append(
            f"  zalo token access token valid for {token['expires_in'] / 3600:.1f} h (refreshed automatically)"
        )
    for direction, label in (("z2f", "Zalo → FreshChat"), ("f2z", "FreshChat → Zalo")):
        carried = report["carried"].get(direction, {})
        latency = report["latency"].get(direction, {})
        p50, p95 = latency.get("p50"), latency.get("p95")
        shown = f", latency p50 {p50:.1f}s p95 {p95:.1f}s" if p50 is not None and p95 is not None else ""
        lines.append(
            f"  {label}: {carried.get('hour', 0)} in the last hour, {carried.get('day', 0)} in the last day{shown}; "
            f"backlog {report['backlog'][direction]}"
        )
    lines.append(f"  failed     {report['failed']}" + (" (see `zfsync failed`)" if report["failed"] else ""))
    lines.append(f"  conversations mapped: {report['conversations']}")
    groups = report.get("groups")
    if groups:
        ends = f", the first package ends after {groups['first_end']}" if groups["first_end"] else ""
        lines.append(f"  groups     {groups['known']} Zalo group chats, {groups['enabled']} enabled{ends}")
    zns = report.get("zns")
    if zns:
        when = "as read today" if zns["read_today"] else "a new day since it was read"
        lines.append(f"  zns        {zns['remaining']} of {zns['daily']} template sends left today ({when})")
    rated = report.get("rating_today") or {}
    if rated.get("count"):
        lines.append(f"  ratings    {rated['count']} today, average {rated['average']:.1f} of 5")
    if report.get("window_refused_today"):
        lines.append(
            f"  window     {report['window_refused_today']} replies refused today for the 7-day window "
            "(a ZNS template still reaches them: /zalo template, `zfsync templates`)"
        )
    lines += _quota_lines(report.get("quotas") or {})
    lines += _package_lines(report.get("package") or {})
    waiting = report.get("unanswered") or {}
    if waiting.get("count"):
        lines.append(
            f"  unanswered {waiting['count']} customer(s) waiting over {waiting['after_minutes']:.0f} min for an "
            f"agent (longest {_duration(float(waiting['longest_seconds']))}): reply, resolve or assign them"
        )
    lines += _history_line(report.get("history") or {})
    for flight in report.get("slow") or []:
        label = "Zalo → FreshChat" if flight.get("direction") == "z2f" else "FreshChat → Zalo"
        lines.append(
            f"  in flight  {label}: {flight.get('kind')} for {flight.get('customer')}, "
            f"{_duration(float(flight.get('seconds') or 0))} so far (row {flight.get('row')}; others go meanwhile)"
        )
    for problem in report["problems"]:
        lines.append(f"  PROBLEM    {problem['what']}")
        lines.append(f"             fix: {problem['fix']}")
    return "\n".join(lines)


def _history_line(history: dict[str, Any]) -> list[str]:
    if not history or (history.get("days") is None and not history.get("waiting")):
        return []
    if history.get("days") is None:
        read = "every customer read"
    elif history["customers"]:
        read = (
            f"import of the last {history['days']} days: {history['customers_read']} of {history['customers']} "
            f"customers read, {history['queued']} messages queued"
        )
    else:
        read = f"import of the last {history['days']} days: listing the customers"
    pace = ""
    if history.get("waiting"):
        eta = history.get("eta_seconds")
        pace = (
            f" ({history['per_minute']:g} a minute lately, about {_duration(eta)} left)"
            if eta is not None
            else " (none delivered in the last 10 minutes)"
        )
    return [f"  history    {read}; {history['waiting']} waiting behind live messages{pace}"]


PACKAGE_KINDS = {"sub_quota": "the package's", "purchase_quota": "bought", "reward_quota": "rewarded"}


def _package_lines(kinds: dict[str, Any]) -> list[str]:
    """The OA's consultation messages past the free replies, as Zalo last reported them."""
    shown = []
    for kind, label in PACKAGE_KINDS.items():
        found = kinds.get(kind)
        if not isinstance(found, dict):
            continue
        remain, total = found.get("remain", 0), found.get("total")
        # Only what Zalo could mean (an older zfsync kept whatever it was sent): as wire reads its answers.
        if not all(isinstance(n, int) and wire.count(n) == n for n in (remain, total)):
            continue
        if total:
            day = wire.day(found.get("valid_through"))
            until = f" until {day}" if day else ""
            shown.append(f"{remain:,} of {total:,} {label}{until}")
    if not shown:
        return []
    return [f"  zalo package consultation messages left: {'; '.join(shown)} (the free replies come first)"]


def _quota_lines(quotas: dict[str, Any]) -> list[str]:
    """A side's budget, when there is something to say: a limit its headers taught, refusals, a stretched
    Zalo poll interval."""
    lines = []
    for side, label in (("zalo", "Zalo"), ("freshchat", "FreshChat")):
        quota = quotas.get(side)
        if not isinstance(quota, dict):
            continue
        stretched = side == "zalo" and quota.get("interval", 0) > quota.get("configured_interval", 0)
        if not (quota.get("learned") or quota.get("refusals") or stretched):
            continue
        line = f"  quota      {label} {quota['limit']}/min, {quota['used']} used in the last minute"
        if quota.get("refusals"):
            line += f", {quota['refusals']} refused since start"
        if side == "zalo":
            line += f": polling every {quota['interval']:g} s"
            if stretched:
                line += f" (configured {quota['configured_interval']:g} s: the quota cannot carry it)"
        lines.append(line)
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
