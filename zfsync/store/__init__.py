"""The store (SQLite or PostgreSQL): schema, migrations and every query. Other packages use `Store`, which
speaks domain values; none of them imports peewee or the models."""

from zfsync.domain import NewRow, OwnSend, Status
from zfsync.store.base import LEASE_KEY, Figures, Waiting
from zfsync.store.store import Store, in_memory, is_in_memory

PENDING, SENDING, SENT, FAILED, SKIPPED = (
    Status.PENDING,
    Status.SENDING,
    Status.SENT,
    Status.FAILED,
    Status.SKIPPED,
)

__all__ = [
    "FAILED",
    "LEASE_KEY",
    "PENDING",
    "SENDING",
    "SENT",
    "SKIPPED",
    "Figures",
    "NewRow",
    "OwnSend",
    "Store",
    "Waiting",
    "in_memory",
    "is_in_memory",
]
