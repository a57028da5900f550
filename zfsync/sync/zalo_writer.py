"""Write to Zalo: agents' replies (and resolve notices) to the customer through ``message/cs``.

Zalo accepts customer-service messages only within 7 days of the customer's last interaction (research
§7), so a reply outside the window is not attempted: it fails at once and the agent gets a note. Every
failure that ends a row becomes one private note in the FreshChat conversation it came from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import structlog

from zfsync.domain import Contact, Kind, Media, OutboxRow, ZaloMessage
from zfsync.sync import echo, media, notes, pages, plan
from zfsync.sync.delivery import Failure, Outcome, Refused, Sent
from zfsync.sync.ports import ZaloSide
from zfsync.sync.seams import WriterStore

log = structlog.get_logger("zfsync.sync")

RECONCILE_SLACK_MS = 600_000
RECONCILE_PAGES = 5
DOCUMENT_NAME = "tin-nhan.docx"  # "message.docx": the long reply as a file, named in the customer's language


class ZaloWriter:
    def __init__(
        self, zalo: ZaloSide, store: WriterStore, clock: Callable[[], float], download: Callable[[str, int], Media]
    ):
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.download = download  # FreshChat attachments, fetched with the API key where needed

    def action(self, row: OutboxRow) -> Reply:
        contact = self.store.contact_by_id(row.contact_id)
        planned = plan.plan_to_zalo(row.kind, row.payload, contact.last_inbound_ms, self.clock())
        if isinstance(planned, plan.SendText):
            return TextReply(self, row, contact, planned.text)
        if isinstance(planned, plan.SendDocument):
            return DocumentReply(self, row, contact, planned.text)
        if isinstance(planned, plan.SendAttachment):
            return AttachmentReply(self, row, contact)
        return OutsideWindowReply(self, row, contact)

    def heavy(self, row: OutboxRow) -> bool:
        """An agent's image or file (a download and an upload), or a long text sent as a document."""
        return row.kind in (Kind.IMAGE, Kind.FILE, Kind.TEXT_FILE)


class Reply(ABC):
    """An agent's reply on its way to the customer. However it is sent, an earlier attempt is found the
    same way, and a failure reaches the agent as one private note in the conversation it came from."""

    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact):
        self.writer = writer
        self.row = row
        self.contact = contact

    @abstractmethod
    def _send(self) -> str:
        """Send to the customer; returns Zalo's message id."""

    def send(self) -> Outcome:
        return Sent(self._send())

    def reconcile(self) -> Sent | None:
        """Our earlier attempt landed if the user's conversation shows an OA message with this content
        since shortly before the attempt that none of our other sends explains (`echo.landed`)."""
        row, zalo = self.row, self.writer.zalo
        since = (row.claimed_at or self.writer.clock()) - RECONCILE_SLACK_MS / 1000
        listing = (
            zalo.conversation(self.contact.zalo_user_id, offset=number * 10, count=10)
            for number in range(RECONCILE_PAGES)
        )

        def older(message: ZaloMessage) -> bool:
            return 0 <= message.time_ms < since * 1000

        read = pages.walk(listing, pages.from_first(older), RECONCILE_PAGES, full_page=10)
        listed = [(m.message_id, m.type, m.text) for m in read.items if m.from_oa]
        sends = self.writer.store.own_sends(self.contact.id, since - echo.WINDOW)
        found = echo.landed(row.kind, row.payload, row.id, listed, sends)
        return Sent(found) if found else None

    def gave_up(self, failure: Failure, now: float) -> None:
        """Tell the agent, once per failed message, in the conversation the reply came from."""
        row, payload = self.row, self.row.payload
        preview = str(payload.get("text") or payload.get("name") or payload.get("url") or "")
        if failure.final:
            text = notes.failure_note(failure.code, failure.reason, preview, failure.advice)
        else:
            text = notes.gave_up_note(failure.reason, failure.attempts, preview)
        self._note(f"note:{row.source_id}", text, now)
        log.warning("agent_notified", row=row.id, code=failure.code, conversation=row.conversation_id)

    def _note(self, source_id: str, text: str, now: float) -> None:
        """Queue a private note to the agent, in the conversation the reply came from."""
        row = self.row
        if not row.conversation_id:
            log.error("failure_note_without_conversation", row=row.id)
            return
        agent_id = row.payload.get("agent_id", "")
        note = notes.note_row(source_id, text, row.conversation_id, agent_id, now, part=row.part)
        self.writer.store.insert_rows(row.contact_id, [note], now)


class TextReply(Reply):
    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact, text: str):
        super().__init__(writer, row, contact)
        self.text = text

    def _send(self) -> str:
        return self.writer.zalo.send_text(self.contact.zalo_user_id, self.text)


class DocumentReply(Reply):
    """A reply too long for Zalo's texts, as a document."""

    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact, text: str):
        super().__init__(writer, row, contact)
        self.text = text

    def _send(self) -> str:
        zalo = self.writer.zalo
        document = media.text_document(self.text, DOCUMENT_NAME)
        return zalo.send_file(self.contact.zalo_user_id, zalo.upload_file(document))


class AttachmentReply(Reply):
    """An agent's image or file: uploaded to Zalo, or sent as a link when Zalo will not take it."""

    def _send(self) -> str:
        row, writer = self.row, self.writer

        def tell_agent(problem: str) -> None:
            # Queued before the link goes out, so a crash right after the send cannot lose the note.
            label = row.payload.get("name") or row.kind
            self._note(f"fallback:{row.source_id}", notes.fallback_note(label, problem), writer.clock())

        return media.send_to_zalo(
            row.kind,
            dict(row.payload),
            self.contact.zalo_user_id,
            writer.zalo,
            writer.download,
            row.attempts,
            tell_agent,
        )


class OutsideWindowReply(Reply):
    """The customer's last message is over 7 days old: Zalo allows no reply, so none is attempted."""

    def send(self) -> Outcome:
        return Refused("the customer's last message is over 7 days old", notes.WINDOW_CODE)

    def _send(self) -> str:
        raise AssertionError("an outside-window reply is refused before any send")
