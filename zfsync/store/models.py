"""The peewee models: the shape of the store (SQLite or PostgreSQL). Only `zfsync.store` imports this module.

Each `Store` makes its own `Tables`, bound to its own database: two stores open in one process (a backup
beside the live store, two bridges in one test) never write through each other's connection.

Times are DoubleField: peewee's FloatField is a 4-byte REAL on PostgreSQL, which rounds epoch seconds to
minutes (SQLite's REAL is 8 bytes either way, so the SQLite schema is unchanged).
"""

from __future__ import annotations

from typing import Any

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    Database,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from zfsync.domain import Status


class Tables:
    """The models of one store, bound to its database."""

    def __init__(self, db: Database) -> None:
        class BaseModel(Model):
            class Meta:
                database = db
                legacy_table_names = False

        class SchemaVersion(BaseModel):
            version = IntegerField()

        class Contact(BaseModel):
            """A Zalo user and the FreshChat user that stands for them."""

            zalo_user_id = CharField(unique=True)
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

        class Conversation(BaseModel):
            """A FreshChat conversation carrying one contact's messages; ``is_current`` marks the one we post to."""

            contact = ForeignKeyField(Contact, backref="conversations", on_delete="CASCADE")
            fc_conversation_id = CharField(unique=True)
            is_current = BooleanField(default=True)
            resolved = BooleanField(default=False)
            resolved_at = DoubleField(default=0)  # when an agent last resolved it (0: never, or before schema 9)
            created_at = DoubleField()
            last_activity_at = DoubleField()
            next_poll_at = DoubleField(index=True)
            cursor_id = CharField(default="")  # newest FreshChat message already read
            cursor_time = DoubleField(default=0)

        class Message(BaseModel):
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
                    (("direction", "source_id", "part"), True),
                    (("direction", "status", "contact", "source_time"), False),
                )

        class State(BaseModel):
            """Small named values: feed cursors, the PKCE verifier, the daemon heartbeat."""

            key = CharField(primary_key=True)
            value = TextField()

        class Token(BaseModel):
            provider = CharField(primary_key=True)
            access_token = TextField()
            refresh_token = TextField()
            expires_at = DoubleField()
            updated_at = DoubleField()
            dead_reason = TextField(default="")

        class Health(BaseModel):
            """The last outcome of each side's polling: what `zfsync status` reports."""

            side = CharField(primary_key=True)
            state = CharField()
            last_ok_at = DoubleField(null=True)
            last_error_at = DoubleField(null=True)
            last_error = TextField(default="")
            updated_at = DoubleField()

        # Typed Any: peewee adds fields (the ``id`` key, backrefs) at run time, which no checker can follow;
        # the store turns rows into typed domain values at once.
        self.SchemaVersion: Any = SchemaVersion
        self.Contact: Any = Contact
        self.Conversation: Any = Conversation
        self.Message: Any = Message
        self.State: Any = State
        self.Token: Any = Token
        self.Health: Any = Health
        self.all: list[Any] = [SchemaVersion, Contact, Conversation, Message, State, Token, Health]
