"""The SQLite store: schema, migrations and every query. Other packages use `Store`, never raw SQL."""

from zfsync.store.store import FAILED, PENDING, SENDING, SENT, SKIPPED, Figures, NewRow, OwnSend, Store

__all__ = ["FAILED", "PENDING", "SENDING", "SENT", "SKIPPED", "Figures", "NewRow", "OwnSend", "Store"]
