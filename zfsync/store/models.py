"""The peewee models: the shape of the store (SQLite or PostgreSQL). Only `zfsync.store` imports this module.

Each `Store` makes its own `Tables`, bound to its own database: two stores open in one process (a backup
beside the live store, two bridges in one test) never write through each other's connection.

Every table of a desk's data is keyed by tenant (one OA and its FreshChat account; a single-OA store is
tenant 0). The models of a `Tables` made for one tenant add that tenant to every select, update and delete
they build and to every row they insert, so a store speaking for one tenant cannot read or change
another's rows, whatever its queries say. `Tables(db, None)` sees every tenant: for copying a whole
store, and for the fleet's own tables (`Tenant`, `Member`), which belong to no tenant.

Times are DoubleField: peewee's FloatField is a 4-byte REAL on PostgreSQL, which rounds epoch seconds to
minutes (SQLite's REAL is 8 bytes either way, so the SQLite schema is unchanged).
"""

from __future__ import annotations

from typing import Any

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    Database,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from zfsync.domain import Status

ANY_TENANT = None  # `Tables` for every tenant's rows at once


class Tables:
    """The models of one store, bound to its database, seeing the rows of ``tenant`` only (`ANY_TENANT`:
    all)."""

    def __init__(self, db: Database, tenant: int | None = 0) -> None:
        self.db = db
        self.tenant = tenant

        class BaseModel(Model):
            class Meta:
                database = db
                legacy_table_names = False

        class TenantModel(BaseModel):
            """A table of a desk's data: every query built through it is confined to ``tenant``."""

            tenant_id = IntegerField(default=tenant or 0, column_name="tenant")

            @classmethod
            def select(cls, *fields: Any) -> Any:
                query = super().select(*fields)
                return query if tenant is None else query.where(cls.tenant_id == tenant)

            @classmethod
            def update(cls, *args: Any, **kwargs: Any) -> Any:
                query = super().update(*args, **kwargs)
                return query if tenant is None else query.where(cls.tenant_id == tenant)

            @classmethod
            def delete(cls) -> Any:
                query = super().delete()
                return query if tenant is None else query.where(cls.tenant_id == tenant)

        class SchemaVersion(BaseModel):
            version = IntegerField()

        class Contact(TenantModel):
            """A Zalo user and the FreshChat user that stands for them."""

            zalo_user_id = CharField()
            display_name = TextField(default="")
            avatar_url = TextField(default="")
            fc_user_id = CharField(null=True)
            first_seen_ms = BigIntegerField()
            last_inbound_ms = BigIntegerField(default=0)  # the customer's last message: Zalo's 7-day window
            cursor_time_ms = BigIntegerField(default=0)  # newest Zalo message of this user already recorded
            cursor_id = CharField(default="")
            profile_checked_at = DoubleField(default=0)
            # Zalo's two clocks as last learned (domain.Contact says what each means)
            last_interaction_ms = BigIntegerField(default=0)
            free_replies_left = IntegerField(null=True)
            warned_window_ms = BigIntegerField(default=0)
            warned_free_ms = BigIntegerField(default=0)
            quota_checked_at = DoubleField(default=0)
            shown_profile = TextField(default="")
            # Whether an agent answered: the last reply, resolve or assignment seen (ms), and when the
            # assignment was last asked of FreshChat for a customer left waiting
            answered_ms = BigIntegerField(default=0)
            assign_checked_at = DoubleField(default=0)

            class Meta:
                indexes = ((("tenant_id", "zalo_user_id"), True),)

        class Conversation(TenantModel):
            """A FreshChat conversation carrying one contact's messages; ``is_current`` marks the one we post to."""

            contact = ForeignKeyField(Contact, backref="conversations", on_delete="CASCADE")
            fc_conversation_id = CharField()
            is_current = BooleanField(default=True)
            resolved = BooleanField(default=False)
            resolved_at = DoubleField(default=0)  # when an agent last resolved it (0: never, or before schema 9)
            created_at = DoubleField()
            last_activity_at = DoubleField()
            next_poll_at = DoubleField(index=True)
            cursor_id = CharField(default="")  # newest FreshChat message already read
            cursor_time = DoubleField(default=0)

            class Meta:
                indexes = ((("tenant_id", "fc_conversation_id"), True),)

        class Message(TenantModel):
            """The message map and outbox: one row per message (part) to copy, unique per source."""

            direction = CharField()  # z2f or f2z
            source_id = CharField()
            part = IntegerField(default=0)
            contact = ForeignKeyField(Contact, backref="messages", on_delete="CASCADE")
            kind = CharField()
            payload = TextField()  # JSON: what to send, rendered by the sync core
            source_time = DoubleField()  # epoch seconds at the source: the delivery order per contact
            status = CharField(default=Status.PENDING.value)
            dest_id = CharField(null=True, index=True)
            # f2z only: the id Zalo's listings show for our send, when it is not the id the send answered.
            echo_id = CharField(null=True, index=True)
            # z2f only: which Zalo listing showed the message, and the id the other listing shows it under
            # (a live recording shows one message under two ids: sync.aliases).
            listing = CharField(default="")
            alias_id = CharField(null=True, index=True)
            history = BooleanField(default=False)  # z2f: imported history, delivered after live messages
            conversation_id = CharField(null=True)  # the FreshChat conversation it came from or went to
            attempts = IntegerField(default=0)
            next_attempt_at = DoubleField(default=0)
            claimed_at = DoubleField(null=True)
            last_error = TextField(default="")
            error_code = CharField(default="")
            created_at = DoubleField()
            done_at = DoubleField(null=True)

            class Meta:
                indexes = (
                    (("tenant_id", "direction", "source_id", "part"), True),
                    (("direction", "status", "contact", "source_time"), False),
                )

        class State(TenantModel):
            """Small named values: feed cursors, the PKCE verifier, the daemon heartbeat."""

            key = CharField()
            value = TextField()

            class Meta:
                primary_key = CompositeKey("tenant_id", "key")

        class Token(TenantModel):
            """The OA's OAuth tokens; encrypted when the store has a secrets key (`zfsync.store.secrets`)."""

            provider = CharField()
            access_token = TextField()
            refresh_token = TextField()
            expires_at = DoubleField()
            updated_at = DoubleField()
            dead_reason = TextField(default="")

            class Meta:
                primary_key = CompositeKey("tenant_id", "provider")

        class Health(TenantModel):
            """The last outcome of each side's polling: what `zfsync status` reports."""

            side = CharField()
            state = CharField()
            last_ok_at = DoubleField(null=True)
            last_error_at = DoubleField(null=True)
            last_error = TextField(default="")
            updated_at = DoubleField()

            class Meta:
                primary_key = CompositeKey("tenant_id", "side")

        class Tenant(BaseModel):
            """One desk of a fleet (`zfsync tenant`): its config and its secrets, and which daemon serves it."""

            name = CharField(unique=True)
            paused = BooleanField(default=False)
            config = TextField()  # the tenant's config.toml as given: the TOML holds no secret
            secrets = TextField()  # its secrets (FreshChat key, Zalo app secret), encrypted
            zalo_app_id = CharField(default="")  # tenants of one Zalo app share its request budget
            owner = CharField(default="")  # the daemon holding its lease ("" while nobody does)
            lease_until = DoubleField(default=0)  # the database's epoch seconds
            fence = BigIntegerField(default=0)  # raised at each new owner: the former one's claims fail
            created_at = DoubleField()

        class Member(BaseModel):
            """A daemon serving a fleet, seen recently: the tenants are shared among those alive."""

            name = CharField(primary_key=True)
            seen_at = DoubleField()  # the database's epoch seconds
            owns = IntegerField(default=0)
            feeds = TextField(default="{}")  # JSON {Zalo app id: [active, quiet]}: its feeds, for the app's budget

        # Typed Any: peewee adds fields (the ``id`` key, backrefs) at run time, which no checker can follow;
        # the store turns rows into typed domain values at once.
        self.SchemaVersion: Any = SchemaVersion
        self.Contact: Any = Contact
        self.Conversation: Any = Conversation
        self.Message: Any = Message
        self.State: Any = State
        self.Token: Any = Token
        self.Health: Any = Health
        self.Tenant: Any = Tenant
        self.Member: Any = Member
        self.all: list[Any] = [SchemaVersion, Contact, Conversation, Message, State, Token, Health, Tenant, Member]
        self.desk: list[Any] = [Contact, Conversation, Message, State, Token, Health]  # the tables keyed by tenant
