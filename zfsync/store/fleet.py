"""A fleet's own tables: its tenants (one OA and FreshChat account each, `zfsync tenant`) and which daemon
serves each.

Ownership is a lease per tenant row: a daemon claims tenants nobody holds (or whose lease ran out) with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two daemons claiming at once never take the same one and never
wait for each other; it renews all of its leases in one statement, and each new owner raises the tenant's
fence, which its sends are checked against (`Store.take_lead`). Lease times are the database's clock, so
the machines' clocks need not agree. A SQLite fleet has one daemon (its lock file), which claims them all.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

from peewee import Case

from zfsync.store.base import StoreBase
from zfsync.store.models import ANY_TENANT, Tables

LEASE_SECONDS = 15.0  # a lease not renewed for this long may be taken by another daemon
RENEW_EVERY = 3.0  # seconds between two renewals (and two looks at the fleet)
# An owner whose last renewal is older than this stops sending (the process exits), well before its lease
# may be taken: a send in flight then cannot meet the new owner's.
OWNER_STALE = LEASE_SECONDS - 5.0


@dataclass(frozen=True)
class TenantRecord:
    """A tenant as `zfsync tenant list` shows it; its secrets stay sealed in the store."""

    id: int
    name: str
    paused: bool
    config: str
    zalo_app_id: str
    owner: str
    lease_until: float
    fence: int
    created_at: float

    def owned(self, now: float) -> bool:
        return bool(self.owner) and self.lease_until > now


def record_of(row: Any) -> TenantRecord:
    return TenantRecord(
        id=row.id,
        name=row.name,
        paused=row.paused,
        config=row.config,
        zalo_app_id=row.zalo_app_id,
        owner=row.owner,
        lease_until=row.lease_until,
        fence=row.fence,
        created_at=row.created_at,
    )


class FleetTables(StoreBase):
    def _fleet(self) -> Tables:
        """The tables as every tenant's (built once per database: a `Tables` makes its model classes)."""
        found: Tables | None = getattr(self, "_fleet_tables", None)
        if found is None or found.db is not self.db:
            found = self._fleet_tables = Tables(self.db, ANY_TENANT)
        return found

    def db_now(self) -> float:
        """The database's clock (epoch seconds): the one every daemon's leases are measured on."""
        if self.postgres:
            row = self.db.execute_sql("SELECT extract(epoch FROM clock_timestamp())").fetchone()
            return float(row[0])
        return time.time()


class FleetStore(FleetTables):
    """Which daemon serves each tenant: the leases (part of `Store`)."""

    # --- leases ----------------------------------------------------------------------------------------

    def beat(self, member: str, owns: int, feeds: dict[str, tuple[int, int]] | None = None) -> int:
        """Record this daemon as alive, with its feeds of each Zalo app (active, quiet); returns how many
        daemons are (itself included)."""
        Member = self._fleet().Member
        now = self.db_now()
        noted = json.dumps({app: list(counts) for app, counts in (feeds or {}).items()})
        Member.insert(name=member, seen_at=now, owns=owns, feeds=noted).on_conflict(
            conflict_target=[Member.name], update={Member.seen_at: now, Member.owns: owns, Member.feeds: noted}
        ).execute()
        Member.delete().where(Member.seen_at < now - 10 * LEASE_SECONDS).execute()  # long gone
        return int(Member.select().where(Member.seen_at >= now - LEASE_SECONDS).count())

    def fleet_feeds(self) -> dict[str, tuple[int, int]]:
        """Each Zalo app's feeds (active, quiet) over the live daemons, as they last noted them."""
        Member = self._fleet().Member
        since = self.db_now() - LEASE_SECONDS
        totals: dict[str, tuple[int, int]] = {}
        for row in Member.select(Member.feeds).where(Member.seen_at >= since):
            try:
                noted = json.loads(row.feeds or "{}")
            except ValueError:
                continue
            for app, counts in noted.items() if isinstance(noted, dict) else ():
                if isinstance(counts, list) and len(counts) == 2:
                    active, quiet = totals.get(str(app), (0, 0))
                    totals[str(app)] = (active + int(counts[0]), quiet + int(counts[1]))
        return totals

    def live_members(self) -> list[str]:
        """The daemons serving the fleet now (seen within a lease period)."""
        Member = self._fleet().Member
        since = self.db_now() - LEASE_SECONDS
        return [r.name for r in Member.select(Member.name).where(Member.seen_at >= since)]

    def leave(self, member: str) -> None:
        Member = self._fleet().Member
        Member.delete().where(Member.name == member).execute()

    def share(self, members: int) -> int:
        """How many tenants each of ``members`` live daemons should serve."""
        Tenant = self._fleet().Tenant
        active = Tenant.select().where(Tenant.paused == False).count()  # noqa: E712 (SQL, not Python)
        return math.ceil(active / max(1, members))

    def renew_leases(self, member: str) -> tuple[float, list[TenantRecord]]:
        """Extend every lease ``member`` holds; returns when that was asked (the database's clock) and the
        tenants it holds now (a paused one included: the daemon lets it go)."""
        Tenant = self._fleet().Tenant
        now = self.db_now()
        Tenant.update(lease_until=now + LEASE_SECONDS).where(
            Tenant.owner == member, Tenant.lease_until >= now
        ).execute()
        held = Tenant.select().where(Tenant.owner == member, Tenant.lease_until >= now).order_by(Tenant.id)
        return now, [record_of(r) for r in held]

    def claim_tenants(self, member: str, limit: int) -> list[TenantRecord]:
        """Take up to ``limit`` active tenants nobody holds, raising each one's fence."""
        if limit <= 0:
            return []
        Tenant = self._fleet().Tenant
        with self.db.atomic():
            now = self.db_now()
            free = (
                Tenant.select(Tenant.id)
                .where(Tenant.paused == False, (Tenant.owner == "") | (Tenant.lease_until < now))  # noqa: E712
                .order_by(Case(None, [(Tenant.owner == "", 0)], 1), Tenant.id)
                .limit(limit)
            )
            if self.postgres:
                free = free.for_update("FOR UPDATE SKIP LOCKED")
            ids = [r.id for r in free]
            if not ids:
                return []
            Tenant.update(owner=member, lease_until=now + LEASE_SECONDS, fence=Tenant.fence + 1).where(
                Tenant.id.in_(ids)
            ).execute()
            return [record_of(r) for r in Tenant.select().where(Tenant.id.in_(ids)).order_by(Tenant.id)]

    def release_tenant(self, member: str, tenant_id: int) -> None:
        Tenant = self._fleet().Tenant
        Tenant.update(owner="", lease_until=0).where(Tenant.id == tenant_id, Tenant.owner == member).execute()
