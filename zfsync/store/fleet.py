"""A fleet's own tables: its tenants (one OA and FreshChat account each, `zfsync tenant`) and which daemon
serves each.

Ownership is a lease per tenant row: a daemon claims tenants nobody holds (or whose lease ran out) with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two daemons claiming at once never take the same one and never
wait for each other; it renews all of its leases in one statement, and each new owner raises the tenant's
fence, which its sends are checked against (`Store.take_lead`). Lease times are the database's clock, so
the machines' clocks need not agree. A SQLite fleet has one daemon (its lock file), which claims them all.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from peewee import Case

from zfsync.domain.errors import StoreError
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


def _record(row: Any) -> TenantRecord:
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


class FleetStore(StoreBase):
    """The tenants of the store and their leases (part of `Store`)."""

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

    # --- the registry ----------------------------------------------------------------------------------

    def tenants(self) -> list[TenantRecord]:
        Tenant = self._fleet().Tenant
        return [_record(r) for r in Tenant.select().order_by(Tenant.name)]

    def tenant_named(self, name: str) -> TenantRecord | None:
        Tenant = self._fleet().Tenant
        row = Tenant.get_or_none(Tenant.name == name)
        return _record(row) if row else None

    def tenant_by_id(self, tenant_id: int) -> TenantRecord | None:
        Tenant = self._fleet().Tenant
        row = Tenant.get_or_none(Tenant.id == tenant_id)
        return _record(row) if row else None

    def add_tenant(self, name: str, config: str, secrets: str, zalo_app_id: str) -> TenantRecord:
        """A new tenant; ``secrets`` sealed already."""
        Tenant = self._fleet().Tenant
        with self.db.atomic():
            if Tenant.select().where(Tenant.name == name).exists():
                raise StoreError(f"tenant {name} exists already: pick another name, or `zfsync tenant remove {name}`")
            Tenant.create(name=name, config=config, secrets=secrets, zalo_app_id=zalo_app_id, created_at=time.time())
        found = self.tenant_named(name)
        assert found is not None
        return found

    def update_tenant(self, name: str, config: str, secrets: str, zalo_app_id: str) -> None:
        Tenant = self._fleet().Tenant
        Tenant.update(config=config, secrets=secrets, zalo_app_id=zalo_app_id).where(Tenant.name == name).execute()

    def tenant_secrets(self, tenant_id: int) -> str:
        """The tenant's sealed secrets, as stored."""
        Tenant = self._fleet().Tenant
        row = Tenant.get_or_none(Tenant.id == tenant_id)
        return str(row.secrets) if row else ""

    def set_paused(self, name: str, paused: bool) -> bool:
        Tenant = self._fleet().Tenant
        return bool(Tenant.update(paused=paused).where(Tenant.name == name).execute())

    def queued(self, tenant_id: int) -> int:
        """Messages of the tenant not yet delivered (or failed, waiting for an operator)."""
        Message = Tables(self.db, tenant_id).Message
        return int(Message.select().where(Message.status.in_(("pending", "sending", "failed"))).count())

    def drop_tenant(self, tenant_id: int) -> dict[str, int]:
        """Delete the tenant and every row of its desk, in one transaction; returns the rows deleted per table."""
        tables = Tables(self.db, tenant_id)
        deleted: dict[str, int] = {}
        with self.db.atomic():
            for model in (
                tables.Message,
                tables.Conversation,
                tables.Contact,
                tables.State,
                tables.Token,
                tables.Health,
            ):
                deleted[model._meta.table_name] = model.delete().execute()
            Tenant = self._fleet().Tenant
            Tenant.delete().where(Tenant.id == tenant_id).execute()
        return deleted

    def reseal(self, reseal: Any) -> int:
        """Seal every tenant's secrets and every token again with ``reseal`` (`Sealer.reseal`), in one
        transaction; returns how many values changed."""
        fleet = self._fleet()
        changed = 0
        with self.db.atomic():
            for row in fleet.Tenant.select():
                fleet.Tenant.update(secrets=reseal(row.secrets)).where(fleet.Tenant.id == row.id).execute()
                changed += 1
            Token = fleet.Token
            for row in Token.select():
                Token.update(access_token=reseal(row.access_token), refresh_token=reseal(row.refresh_token)).where(
                    Token.tenant_id == row.tenant_id, Token.provider == row.provider
                ).execute()
                changed += 2
        return changed

    def import_desk(self, source: Any, tenant_id: int, reseal: Any) -> dict[str, int]:
        """Copy a single-OA store's rows (``source``, a `Store` of tenant 0) in as ``tenant_id``'s, in one
        transaction: contacts get new ids and their conversations and messages follow them; tokens are
        sealed with ``reseal``. The tenant's desk must be empty."""
        mine, theirs = Tables(self.db, tenant_id), source.tables
        counts: dict[str, int] = {}
        with self.db.atomic():
            filled = [m._meta.table_name for m in mine.desk if m.select().exists()]
            if filled:
                raise StoreError(f"the tenant has rows already ({', '.join(filled)}): import into a new tenant")
            contact_ids: dict[int, int] = {}
            for row in theirs.Contact.select().order_by(theirs.Contact.id).dicts():
                old = row.pop("id")
                row["tenant_id"] = tenant_id
                contact_ids[old] = mine.Contact.insert(row).execute()
            counts["contact"] = len(contact_ids)
            for name, model, source_model in (
                ("conversation", mine.Conversation, theirs.Conversation),
                ("message", mine.Message, theirs.Message),
            ):
                counts[name] = 0
                for row in source_model.select().order_by(source_model.id).dicts():
                    row.pop("id")
                    row.update(tenant_id=tenant_id, contact=contact_ids[row["contact"]])
                    model.insert(row).execute()
                    counts[name] += 1
            for name, model, source_model in (
                ("state", mine.State, theirs.State),
                ("token", mine.Token, theirs.Token),
                ("health", mine.Health, theirs.Health),
            ):
                rows = [{**row, "tenant_id": tenant_id} for row in source_model.select().dicts()]
                for row in rows:
                    if name == "token":
                        row.update(access_token=reseal(row["access_token"]), refresh_token=reseal(row["refresh_token"]))
                    model.insert(row).execute()
                counts[name] = len(rows)
        return counts

    # --- leases ----------------------------------------------------------------------------------------

    def beat(self, member: str, owns: int) -> int:
        """Record this daemon as alive; returns how many daemons are (itself included)."""
        Member = self._fleet().Member
        now = self.db_now()
        Member.insert(name=member, seen_at=now, owns=owns).on_conflict(
            conflict_target=[Member.name], update={Member.seen_at: now, Member.owns: owns}
        ).execute()
        Member.delete().where(Member.seen_at < now - 10 * LEASE_SECONDS).execute()  # long gone
        return int(Member.select().where(Member.seen_at >= now - LEASE_SECONDS).count())

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
        return now, [_record(r) for r in held]

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
            return [_record(r) for r in Tenant.select().where(Tenant.id.in_(ids)).order_by(Tenant.id)]

    def release_tenant(self, member: str, tenant_id: int) -> None:
        Tenant = self._fleet().Tenant
        Tenant.update(owner="", lease_until=0).where(Tenant.id == tenant_id, Tenant.owner == member).execute()
