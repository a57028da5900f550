"""The history import asked for (`zfsync import-history`, or ``sync.import_history_days`` at the first
start): how far it got, and how many imported messages are still to deliver."""

from __future__ import annotations

import json
from dataclasses import asdict

from zfsync.domain import OPEN_STATES, HistoryImport, Status
from zfsync.store.base import StoreBase

HISTORY_KEY = "zalo.history_import"  # JSON: the history import asked for, and how far it got


class HistoryStore(StoreBase):
    def history_import(self) -> HistoryImport | None:
        """The history import asked for and not finished, if any."""
        text = self.get_state(HISTORY_KEY)
        if not text:
            return None
        found = json.loads(text)
        users = found.get("users")
        return HistoryImport(
            int(found["days"]),
            int(found["since_ms"]),
            float(found["requested_at"]),
            tuple(users) if users is not None else None,
            int(found.get("listed", 0)),
            int(found.get("queued", 0)),
        )

    def save_history_import(self, history: HistoryImport | None) -> None:
        """Record an import asked for, or how far it got (None: it is finished)."""
        if history is None:
            self.delete_state(HISTORY_KEY)
            return
        fields = asdict(history)
        fields["users"] = list(history.users) if history.users is not None else None
        self.set_state(HISTORY_KEY, json.dumps(fields))

    def advance_history_import(self, asked_at: float, history: HistoryImport | None) -> bool:
        """Record how far the import asked for at ``asked_at`` got (None: finished), unless another import
        was asked for meanwhile (`zfsync import-history` while one runs): then False, and nothing changes."""
        with self.db.atomic():
            current = self.history_import()
            if current is None or current.requested_at != asked_at:
                return False
            self.save_history_import(history)
            return True

    def history_waiting(self) -> int:
        """Imported messages not delivered yet."""
        Message = self.tables.Message
        return (
            Message.select()
            .where(Message.history == True, Message.status.in_(OPEN_STATES))  # noqa: E712
            .count()
        )

    def history_delivered_since(self, since: float) -> int:
        """Imported messages delivered since ``since``: the pace `zfsync status` estimates the rest from."""
        Message = self.tables.Message
        return (
            Message.select()
            .where(
                Message.history == True,  # noqa: E712
                Message.status == Status.SENT.value,
                Message.done_at >= since,
            )
            .count()
        )
