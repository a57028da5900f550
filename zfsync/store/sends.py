"""zfsync's own sends as Zalo's listings show them back: which listing row is whose echo, which FreshChat
message an earlier attempt already took (`zfsync.sync.decide.echo` decides; this is what it reads)."""

from __future__ import annotations

import json

from zfsync.domain import OwnSend, Status, outbound
from zfsync.store.base import StoreBase


class SendsStore(StoreBase):
    def dest_taken(self, direction: str, dest_id: str) -> bool:
        Message = self.tables.Message
        return any(
            r.direction == direction for r in Message.select(Message.direction).where(Message.dest_id == dest_id)
        )

    def listing_claimed(self, zalo_id: str) -> bool:
        """Whether a Zalo listing row is known as the echo of one of our sends (by send id or by match)."""
        Message = self.tables.Message
        query = Message.select(Message.direction).where((Message.dest_id == zalo_id) | (Message.echo_id == zalo_id))
        return any(r.direction == "f2z" for r in query)

    def own_sends(self, contact_id: int, since: float) -> list[OwnSend]:
        """Our sends to a contact claimed since ``since`` that reached Zalo or may have, oldest first."""
        Message = self.tables.Message
        query = (
            Message.select()
            .where(
                Message.contact == contact_id,
                Message.direction == "f2z",
                Message.status.in_((Status.SENT, Status.SENDING)),
                Message.claimed_at >= since,
            )
            .order_by(Message.id)
        )
        sends = list(query)
        recorded = {
            r.source_id
            for r in Message.select(Message.source_id).where(
                Message.direction == "z2f",
                Message.source_id.in_([m.dest_id for m in sends if m.dest_id]),
            )
        }
        return [
            OwnSend(
                m.id,
                outbound.decode(m.kind, json.loads(m.payload)),
                m.dest_id,
                m.echo_id,
                m.status,
                bool(m.echo_id) or m.dest_id in recorded,
            )
            for m in sends
        ]

    def set_echo(self, row_id: int, zalo_id: str) -> bool:
        """Record that ``zalo_id`` is how the listings show our send ``row_id``; False if already known."""
        Message = self.tables.Message
        return Message.update(echo_id=zalo_id).where(Message.id == row_id, Message.echo_id.is_null()).execute() == 1
