"""Write to Zalo: agents' replies (and resolve notices) to the customer through ``message/cs``.

Zalo accepts customer-service messages only within 7 days of the customer's last interaction (research
§7), so a reply outside the window is not attempted: it fails at once and the agent gets a note. Every
failure that ends a row becomes one private note in the FreshChat conversation it came from.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from zfsync.domain import Media, OutboxRow, ZaloMessage
from zfsync.errors import PermanentError, RemoteError
from zfsync.store import Store
from zfsync.sync import echo, media, notes, pages, plan
from zfsync.sync.ports import ZaloSide

log = structlog.get_logger("zfsync.sync")

RECONCILE_SLACK_MS = 600_000
RECONCILE_PAGES = 5
DOCUMENT_NAME = "tin-nhan.docx"  # "message.docx": the long reply as a file, named in the customer's language


class ZaloWriter:
    def __init__(self, zalo: ZaloSide, store: Store, clock: Callable[[], float], download: Callable[[str, int], Media]):
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.download = download  # FreshChat attachments, fetched with the API key where needed

    def send(self, row: OutboxRow) -> tuple[str, str | None]:
        contact = self.store.contact_by_id(row.contact_id)
        action = plan.plan_to_zalo(row.kind, row.payload, contact.last_inbound_ms, self.clock())
        user_id = contact.zalo_user_id
        if isinstance(action, plan.OutsideWindow):
            raise PermanentError(
                "the customer's last message is over 7 days old",
                side="zalo",
                endpoint="/v3.0/oa/message/cs",
                code=notes.WINDOW_CODE,
            )
        if isinstance(action, plan.SendAttachment):
            return self._send_attachment(row, dict(row.payload), user_id), None
        if isinstance(action, plan.SendDocument):
            document = media.text_document(action.text, DOCUMENT_NAME)
            return self.zalo.send_file(user_id, self.zalo.upload_file(document)), None
        return self.zalo.send_text(user_id, action.text), None

    def _send_attachment(self, row: OutboxRow, payload: dict, user_id: str) -> str:
        def tell_agent(problem: str) -> None:
            # Queued before the link goes out, so a crash right after the send cannot lose the note.
            label = payload.get("name") or row.kind
            self._note(row, f"fallback:{row.source_id}", notes.fallback_note(label, problem), self.clock())

        return media.send_to_zalo(row.kind, payload, user_id, self.zalo, self.download, row.attempts, tell_agent)

    def reconcile(self, row: OutboxRow) -> tuple[str, str | None] | None:
        """Our earlier attempt landed if the user's conversation shows an OA message with this content
        since shortly before the attempt that none of our other sends explains (`echo.landed`)."""
        contact = self.store.contact_by_id(row.contact_id)
        payload = row.payload
        since = (row.claimed_at or self.clock()) - RECONCILE_SLACK_MS / 1000
        listing = (
            self.zalo.conversation(contact.zalo_user_id, offset=number * 10, count=10)
            for number in range(RECONCILE_PAGES)
        )

        def older(message: ZaloMessage) -> bool:
            return 0 <= message.time_ms < since * 1000

        read = pages.walk(listing, pages.from_first(older), RECONCILE_PAGES, full_page=10)
        listed = [(m.message_id, m.type, m.text) for m in read.items if m.from_oa]
        sends = self.store.own_sends(contact.id, since - echo.WINDOW)
        found = echo.landed(row.kind, payload, row.id, listed, sends)
        return (found, None) if found else None

    def gave_up(self, row: OutboxRow, error: RemoteError, now: float) -> None:
        """Tell the agent, once per failed message, in the conversation the reply came from."""
        payload = row.payload
        code = "" if error.code is None else str(error.code)
        preview = str(payload.get("text") or payload.get("name") or payload.get("url") or "")
        if isinstance(error, PermanentError):
            text = notes.failure_note(code, error.reason, preview, error.advice)
        else:
            text = notes.gave_up_note(error.reason, row.attempts + 1, preview)
        self._note(row, f"note:{row.source_id}", text, now)
        log.warning("agent_notified", row=row.id, code=code, conversation=row.conversation_id)

    def _note(self, row: OutboxRow, source_id: str, text: str, now: float) -> None:
        """Queue a private note to the agent, in the conversation the reply came from."""
        if not row.conversation_id:
            log.error("failure_note_without_conversation", row=row.id)
            return
        agent_id = row.payload.get("agent_id", "")
        note = notes.note_row(source_id, text, row.conversation_id, agent_id, now, part=row.part)
        self.store.insert_rows(row.contact_id, [note], now)
