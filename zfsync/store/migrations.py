"""Numbered schema migrations, applied at start inside one transaction each.

A fresh database is created straight at the latest shape from the models; an existing one runs every step
above its recorded version. A database newer than this code is refused: running old code on it could lose
data it does not know about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from peewee import Database, PostgresqlDatabase
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as apply_operations

from zfsync.domain.errors import StoreError
from zfsync.store.lease import LOCK_CLASS, MIGRATION_LOCK
from zfsync.store.models import Tables


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Database, Tables], None]


def _initial(db: Database, tables: Tables) -> None:
    db.create_tables(tables.all)


def _echo_id(db: Database, tables: Tables) -> None:
    migrator = SchemaMigrator.from_database(db)
    apply_operations(migrator.add_column("message", "echo_id", tables.Message.echo_id))  # with its index


def _content_payloads(db: Database, tables: Tables) -> None:
    # No column changes: the version says that queued rows are stored in a form an older zfsync would
    # misread (steps 3 and 5). The daemon rewrites the rows queued before at its start
    # (`app.upgrade_payloads`), since only the clients know how their JSON reads.
    pass


def _aliases(db: Database, tables: Tables) -> None:
    migrator = SchemaMigrator.from_database(db)
    apply_operations(
        migrator.add_column("message", "listing", tables.Message.listing),
        migrator.add_column("message", "alias_id", tables.Message.alias_id),  # with its index
    )


def _clocks(db: Database, tables: Tables) -> None:
    # Plain ADD COLUMN with its default: peewee's SQLite migrator makes a NOT NULL column by copying the
    # table, and dropping the old contact table would cascade to every queued message.
    columns = {
        "last_interaction_ms": "BIGINT NOT NULL DEFAULT 0",
        "free_replies_left": "INTEGER",
        "warned_window_ms": "BIGINT NOT NULL DEFAULT 0",
        "warned_free_ms": "BIGINT NOT NULL DEFAULT 0",
        "quota_checked_at": "DOUBLE PRECISION NOT NULL DEFAULT 0",
        "shown_profile": "TEXT NOT NULL DEFAULT ''",
    }
    for name, definition in columns.items():
        db.execute_sql(f"ALTER TABLE contact ADD COLUMN {name} {definition}")


def _answered(db: Database, tables: Tables) -> None:
    db.execute_sql("ALTER TABLE contact ADD COLUMN answered_ms BIGINT NOT NULL DEFAULT 0")  # as _clocks: no copy
    db.execute_sql("ALTER TABLE contact ADD COLUMN assign_checked_at DOUBLE PRECISION NOT NULL DEFAULT 0")


def _history(db: Database, tables: Tables) -> None:
    db.execute_sql("ALTER TABLE message ADD COLUMN history BOOLEAN NOT NULL DEFAULT FALSE")  # as _clocks: no copy


def _resolved_at(db: Database, tables: Tables) -> None:
    db.execute_sql("ALTER TABLE conversation ADD COLUMN resolved_at DOUBLE PRECISION NOT NULL DEFAULT 0")


def _tenants(db: Database, tables: Tables) -> None:
    # Every row so far is the one desk's: tenant 0. Unique keys become unique per tenant.
    postgres = isinstance(db, PostgresqlDatabase)
    for table, unique in (
        ("contact", ("zalo_user_id",)),
        ("conversation", ("fc_conversation_id",)),
        ("message", ("direction", "source_id", "part")),
    ):
        db.execute_sql(f"ALTER TABLE {table} ADD COLUMN tenant INTEGER NOT NULL DEFAULT 0")  # as _clocks: no copy
        db.execute_sql(f"DROP INDEX {table}_{'_'.join(unique)}")
        db.execute_sql(
            f"CREATE UNIQUE INDEX {table}_tenant_{'_'.join(unique)} ON {table} (tenant, {', '.join(unique)})"
        )
    for model in (tables.State, tables.Token, tables.Health):
        table = model._meta.table_name
        keys = [f.column_name for f in model._meta.sorted_fields if f.column_name != "tenant"]
        if postgres:
            db.execute_sql(f"ALTER TABLE {table} ADD COLUMN tenant INTEGER NOT NULL DEFAULT 0")
            db.execute_sql(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
            db.execute_sql(f"ALTER TABLE {table} ADD PRIMARY KEY (tenant, {keys[0]})")
        else:
            # SQLite cannot change a primary key in place: the table is made anew (nothing refers to it).
            db.execute_sql(f"ALTER TABLE {table} RENAME TO {table}_before_tenants")
            db.create_tables([model])
            listed = ", ".join(f'"{k}"' for k in keys)
            db.execute_sql(f"INSERT INTO {table} (tenant, {listed}) SELECT 0, {listed} FROM {table}_before_tenants")
            db.execute_sql(f"DROP TABLE {table}_before_tenants")
    db.create_tables([tables.Tenant, tables.Member])


# Append new steps here; never edit a released one. Step 1 is the initial schema.
STEPS: list[Step] = [
    Step(1, "initial schema", _initial),
    Step(2, "the listing id of a send whose answer named another id", _echo_id),
    Step(3, "customer messages stored as what they say, not as Zalo listed them", _content_payloads),
    Step(4, "the Zalo listing a message came from, and its id in the other listing", _aliases),
    Step(5, "parts with media copied stored in zfsync's words, not FreshChat's JSON", _content_payloads),
    Step(6, "each customer's window and free replies, and what was shown of their details", _clocks),
    Step(7, "when an agent last answered each customer", _answered),
    Step(8, "imported history, delivered after live messages", _history),
    Step(9, "when each conversation was resolved, for sync.after_resolve", _resolved_at),
    Step(10, "every table keyed by tenant, and the fleet's tenants", _tenants),
]
LATEST = STEPS[-1].version


def current_version(db: Database, tables: Tables) -> int:
    SchemaVersion = tables.SchemaVersion
    if not db.table_exists(SchemaVersion._meta.table_name):
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def migrate(db: Database, tables: Tables) -> list[str]:
    """Bring the schema to `LATEST`; returns the descriptions of the steps applied."""
    with db.atomic():
        if isinstance(db, PostgresqlDatabase):
            # Daemons starting at once on one database: one migrates, the others wait and find it done.
            db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, MIGRATION_LOCK))
        version = current_version(db, tables)
        if version > LATEST:
            raise StoreError(
                f"the database is at schema version {version} but this zfsync knows only up to {LATEST}: "
                "upgrade zfsync, or restore a backup made by this version"
            )
        if version == 0:
            db.create_tables(tables.all)
            tables.SchemaVersion.create(version=LATEST)
            return [f"created schema version {LATEST}"]
        applied = []
        for step in STEPS:
            if step.version > version:
                step.apply(db, tables)
                tables.SchemaVersion.update(version=step.version).execute()
                applied.append(f"{step.version}: {step.description}")
        return applied
