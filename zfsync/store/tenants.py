"""A fleet's tenants: each one's config, its secrets (sealed), whether it is paused; taking a single-OA
store in, dropping one, sealing every secret again (part of `Store`)."""

from __future__ import annotations

import json
import time
from typing import Any

from zfsync.domain.errors import StoreError
from zfsync.log import remember_secret
from zfsync.store.fleet import FleetTables, TenantRecord, record_of
from zfsync.store.models import Tables


class TenantStore(FleetTables):
    def tenants(self) -> list[TenantRecord]:
        Tenant = self._fleet().Tenant
        return [record_of(r) for r in Tenant.select().order_by(Tenant.name)]

    def tenant_named(self, name: str) -> TenantRecord | None:
        Tenant = self._fleet().Tenant
        row = Tenant.get_or_none(Tenant.name == name)
        return record_of(row) if row else None

    def tenant_by_id(self, tenant_id: int) -> TenantRecord | None:
        Tenant = self._fleet().Tenant
        row = Tenant.get_or_none(Tenant.id == tenant_id)
        return record_of(row) if row else None

    def add_tenant(self, name: str, config: str, secrets: str, zalo_app_id: str, paused: bool = False) -> TenantRecord:
        """A new tenant; ``secrets`` sealed already; ``paused``: no daemon takes it until it is resumed."""
        Tenant = self._fleet().Tenant
        with self.db.atomic():
            if Tenant.select().where(Tenant.name == name).exists():
                raise StoreError(f"tenant {name} exists already: pick another name, or `zfsync tenant remove {name}`")
            Tenant.create(
                name=name,
                config=config,
                secrets=secrets,
                zalo_app_id=zalo_app_id,
                paused=paused,
                created_at=time.time(),
            )
        found = self.tenant_named(name)
        assert found is not None
        return found

    def update_tenant(self, name: str, config: str, secrets: str, zalo_app_id: str) -> None:
        Tenant = self._fleet().Tenant
        Tenant.update(config=config, secrets=secrets, zalo_app_id=zalo_app_id).where(Tenant.name == name).execute()

    def tenant_secrets(self, tenant_id: int) -> dict[str, str]:
        """The tenant's secrets (its env file's values), opened with the store's key; remembered, so that no
        log line can show them."""
        Tenant = self._fleet().Tenant
        row = Tenant.get_or_none(Tenant.id == tenant_id)
        opened = json.loads(self.sealer.open(str(row.secrets)) or "{}") if row else {}
        remember_secret(*opened.values())
        return {str(k): str(v) for k, v in opened.items()}

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
