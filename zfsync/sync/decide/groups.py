"""What a group chat decides with no I/O: mentions both ways, which groups are due a read, and when the
agent is told that a group's package ends. Table-tested in tests/unit/test_groups.py."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from zfsync.domain import GroupBook, KnownGroup, ZaloGroup
from zfsync.sync.decide import zalo_clocks

MENTION_ID = re.compile(r"\[@(\d{1,30})\]")
NAME_LIMIT = 64  # a member's name as a mention or an author line


def incoming_mentions(text: str, members: Mapping[str, str]) -> str:
    """Zalo's ``[@user_id]`` as ``@Name`` for a member whose name is known; an unknown id stays as Zalo
    wrote it (the agent sees who was meant, if not by name)."""
    return MENTION_ID.sub(lambda m: f"@{members[m.group(1)]}" if members.get(m.group(1)) else m.group(0), text)


def outgoing_mentions(text: str, members: Mapping[str, str]) -> str:
    """An agent's ``@Name`` of a member who wrote in the group as Zalo's ``[@user_id]``. The longest name
    is tried first ("@Lan Anh" before "@Lan"); a name two members share mentions no one (it stays as typed),
    and the name must end where a word ends ("@Lan" is not in "@Lana")."""
    by_name: dict[str, str | None] = {}
    for user_id, name in members.items():
        key = name.strip().casefold()
        if key:
            by_name[key] = None if key in by_name and by_name[key] != user_id else user_id
    names = sorted((n for n, uid in by_name.items() if uid), key=len, reverse=True)
    if not names or "@" not in text:
        return text
    pattern = re.compile("@(" + "|".join(re.escape(n) for n in names) + r")(?!\w)", re.IGNORECASE)
    return pattern.sub(lambda m: f"[@{by_name[m.group(1).casefold()]}]", text)


def members_after(group: KnownGroup, seen: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The group's members with those just seen writing (their latest name), the most recent last."""
    kept = [(uid, name) for uid, name in group.members if uid not in seen]
    return (*kept, *((uid, name[:NAME_LIMIT]) for uid, name in seen.items() if name))


def listed(book: GroupBook, groups: list[ZaloGroup]) -> tuple[KnownGroup, ...]:
    """The book's groups after a listing: names, avatars and state as Zalo lists them; a group no longer
    listed is kept as disabled (its conversation and messages stay; nothing is read or sent for it)."""
    by_id = {g.group_id: g for g in groups}
    kept = []
    for known in book.groups:
        fresh = by_id.pop(known.group_id, None)
        if fresh is None:
            kept.append(replace(known, enabled=False))
        else:
            kept.append(replace(known, name=fresh.name or known.name, avatar=fresh.avatar, enabled=fresh.enabled))
    kept.extend(KnownGroup(g.group_id, g.name, g.avatar, g.enabled) for g in by_id.values())
    return tuple(kept)


def read_into(stored: GroupBook, read: GroupBook) -> GroupBook:
    """A poll's book over the stored one: its groups and times, each group's package end and warning as
    stored (the package check writes those, from another thread)."""
    clocks = {g.group_id: (g.valid_through, g.warned_through) for g in stored.groups}
    merged = []
    for group in read.groups:
        valid_through, warned = clocks.get(group.group_id, (group.valid_through, group.warned_through))
        merged.append(replace(group, valid_through=valid_through, warned_through=warned))
    return replace(read, groups=tuple(merged), assets_at=stored.assets_at)


def due(book: GroupBook, active: Collection[str], now: float, sweep_every: float) -> list[str]:
    """The groups to read now, by id: those the feed showed new rows of, and each enabled group whose own
    messages were not read for ``sweep_every`` seconds (the feed is shallow; a quiet group is read seldom)."""
    swept = {g.group_id for g in book.groups if g.enabled and now - g.swept_at >= sweep_every}
    return sorted(set(active) | swept)


def package_end(valid_through: str) -> float | None:
    """When a package valid through a day ends: the start of the next Vietnamese day (epoch seconds)."""
    try:
        day = datetime.strptime(valid_through, "%d/%m/%Y").replace(tzinfo=zalo_clocks.VIETNAM)
    except ValueError:
        return None
    return (day + timedelta(days=1)).timestamp()


def expiry_warning_due(group: KnownGroup, now: float, days: int) -> bool:
    """Whether the agent should be told now that the group's package ends within ``days`` (once for each
    end: a renewed package ends later, and is told again when that comes near)."""
    end = package_end(group.valid_through)
    if end is None or days <= 0 or not group.enabled or group.warned_through == group.valid_through:
        return False
    return now >= end - days * 86_400


def days_left(valid_through: str, now: float) -> int:
    end = package_end(valid_through)
    return 0 if end is None else max(0, int((end - now) // 86_400))
