"""`zfsync templates`: the OA's Zalo Notification Service templates, read from Zalo, the approved ones with
their parameters, and the day's ZNS quota. What Zalo listed is kept in the store; when Zalo cannot be
reached, the list kept last is shown with its age and the error, and the command fails."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime

from zfsync.cli.store import settings_of, store_of
from zfsync.domain import ZnsQuota, ZnsTemplate
from zfsync.domain.errors import RemoteError

KINDS = {"STRING": "text", "NUMBER": "number", "DATE": "date", "EMAIL": "email", "PHONE": "phone"}


def cmd_templates(args: argparse.Namespace) -> int:
    from zfsync.runtime.app import build_clients

    settings = settings_of(args)
    store = store_of(settings)
    try:
        zns = build_clients(settings, store).zalo.zns
        try:
            templates = [zns.template(t.template_id) if t.approved else t for t in zns.templates()]
        except RemoteError as exc:
            kept = store.zns_templates()
            if kept is not None:
                print(render(kept[1], None, kept[0], args.json, stale=True))
            print(f"zfsync: Zalo's ZNS template list could not be read: {exc}", file=sys.stderr)
            return 1
        now = time.time()
        store.save_zns_templates(templates, now)
        quota: ZnsQuota | None = None
        try:
            quota = zns.daily_quota()
            store.save_zns_quota(quota, now)
        except RemoteError as exc:
            print(f"zfsync: the day's ZNS quota could not be read: {exc}", file=sys.stderr)
        print(render(templates, quota, now, args.json))
        return 0
    finally:
        store.close()


def render(templates: list[ZnsTemplate], quota: ZnsQuota | None, at: float, as_json: bool, stale: bool = False) -> str:
    if as_json:
        return json.dumps(
            {
                "read_at": at,
                "stale": stale,
                "templates": [{**asdict(t), "approved": t.approved} for t in templates],
                "quota": asdict(quota) if quota is not None else None,
            },
            ensure_ascii=False,
            indent=2,
        )
    when = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    approved = [t for t in templates if t.approved]
    lines = [
        f"ZNS templates of the OA, as Zalo listed them {'last, at' if stale else 'at'} {when}: "
        f"{len(approved)} approved of {len(templates)}"
    ]
    for t in approved:
        facts = ", ".join(filter(None, [t.tag, f"price {t.price}" if t.price else "", t.quality]))
        lines.append(f"  {t.template_id}  {t.name}" + (f"  ({facts})" if facts else ""))
        for p in t.params:
            need = "required" if p.required else "optional"
            length = f", up to {p.max_length} characters" if p.max_length else ""
            lines.append(f"      {p.name}: {need}, {KINDS.get(p.kind, p.kind.lower())}{length}")
        if not t.params:
            lines.append("      (no parameters)")
    others = [t for t in templates if not t.approved]
    if others:
        lines.append("Not approved, so not sendable:")
        lines += [f"  {t.template_id}  {t.name}  ({t.status or 'no status'})" for t in others]
    if quota is not None and quota.daily is not None:
        left = "?" if quota.remaining is None else str(quota.remaining)
        lines.append(f"ZNS sends left today: {left} of {quota.daily}")
    return "\n".join(lines)
