"""Write to FreshChat: customer messages as the contact's FreshChat user, notes as private messages.

Each Zalo user has exactly one FreshChat user, found by ``reference_id`` before one is created, so a crash
between creating it and recording it cannot make a second. A user message into a conversation that is not
the user's latest is refused by FreshChat with 400 "not the latest conversation": we then adopt the
user's newest conversation, or open one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from zfsync.domain import (
    Contact,
    Conversation,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    Kind,
    OutboxRow,
    ZaloContent,
    reference_id,
)
from zfsync.errors import ConversationNotLatest, PermanentError, RemoteError, TransientError
from zfsync.store import Store
from zfsync.sync import echo, media, notes, pages, plan, render
from zfsync.sync.delivery import Hold, Skip
from zfsync.sync.ports import FreshChatSide, ZaloSide

log = structlog.get_logger("zfsync.sync")

RECONCILE_SLACK = 600.0  # seconds before the claim in which an earlier attempt's message may stand
RECONCILE_PAGES = 10
FC_PARTS = "_freshchat_parts"  # key in a row's payload under which the parts, media copied, are kept


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def freshchat_user(contact: Contact, display_name: str, now: float) -> FcNewUser:
    """The FreshChat user that stands for a Zalo contact: name, avatar and the properties agents see."""
    name = display_name.format(name=(contact.display_name or contact.zalo_user_id)[:200])
    last_seen_ms = max(contact.last_inbound_ms, contact.first_seen_ms) or int(now * 1000)
    return FcNewUser(
        reference_id=reference_id(contact.zalo_user_id),
        first_name=name,
        avatar_url=contact.avatar_url,
        properties=(
            ("external_user_provider", "zalo"),
            ("zalo_user_id", contact.zalo_user_id),
            ("zalo_first_contact", _iso(contact.first_seen_ms)),
            ("zalo_last_seen", _iso(last_seen_ms)),
        ),
    )


class FreshChatWriter:
    def __init__(
        self,
        freshchat: FreshChatSide,
        zalo: ZaloSide,
        store: Store,
        clock: Callable[[], float],
        channel_id: str,
        display_name: str,
    ):
        self.fc = freshchat
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.channel_id = channel_id
        self.display_name = display_name

    # --- the Writer protocol -------------------------------------------------------------------------

    def send(self, row: OutboxRow) -> tuple[str, str | None]:
        contact = self.store.contact_by_id(row.contact_id)
        current = self.store.current_conversation(contact.id)
        previous = self.store.previous_conversation(contact.id) if current is None else None
        echo_facts = self._echo_facts(row, contact.id) if row.kind == Kind.OA_NOTE else None
        action = plan.plan_to_freshchat(row.kind, row.payload, current, previous, echo_facts)
        if isinstance(action, plan.ClaimEcho):
            if self.store.set_echo(action.row_id, row.source_id):
                raise Skip(f"echo of a reply zfsync sent (row {action.row_id}, matched by content)")
            return self._post(row, contact, plan.oa_note(current, previous))  # OA staff's message after all
        if isinstance(action, plan.SkipEcho):
            raise Skip(action.reason)
        if isinstance(action, plan.HoldBack):
            raise Hold(action.reason, action.delay)
        if isinstance(action, plan.PostPrivateNote):
            note = FcOutgoing(
                (render.text_part(row.payload["text"]),),
                actor_type=action.actor_type,
                actor_id=action.actor_id,
                message_type="private",
            )
            return self.fc.post_message(action.conversation_id, contact.fc_user_id or "", note), action.conversation_id
        return self._post(row, contact, action)

    def _post(
        self, row: OutboxRow, contact: Contact, action: plan.PostCustomerMessage | plan.PostOaNote
    ) -> tuple[str, str | None]:
        payload = dict(row.payload)
        fc_user = self._ensure_user(contact)
        content = ZaloContent.of(payload)
        if isinstance(action, plan.PostCustomerMessage) and FC_PARTS not in payload and media.has_media(content):
            copied = media.copy_to_freshchat(content, self.zalo, self.fc, row.attempts)
            for problem in copied.problems:
                log.warning("media_not_copied", row=row.id, contact=contact.zalo_user_id, reason=problem)
            # Saved before posting: a retry after a crash posts the same parts, so reconcile can find them.
            payload[FC_PARTS] = copied.parts
            self.store.set_payload(row.id, payload)
        message = self._render(row.kind, payload, fc_user)
        conversation = action.conversation
        if conversation is None:
            return self._open(contact, fc_user, message, replaced=action.replaced)
        try:
            posted = self.fc.post_message(conversation.fc_conversation_id, fc_user, message)
        except ConversationNotLatest:
            log.info(
                "freshchat_conversation_replaced", contact=contact.zalo_user_id, old=conversation.fc_conversation_id
            )
            latest = self._latest_conversation(fc_user, exclude=conversation.fc_conversation_id)
            if latest is None:
                return self._open(contact, fc_user, message)
            self.store.add_conversation(contact.id, latest, self.clock())
            # After a resolve FreshChat may have opened the new conversation *with* the refused message in
            # it (wedosoft's bridge saw both): look before posting, so it never stands there twice.
            since = (row.claimed_at or self.clock()) - RECONCILE_SLACK
            already = self._find(latest, _fingerprint(message.parts), since)
            if already is not None:
                log.info("freshchat_message_found_in_new_conversation", contact=contact.zalo_user_id)
                return already, latest
            return self.fc.post_message(latest, fc_user, message), latest
        except PermanentError as exc:
            if exc.status != 404:
                raise
            # Deleted in FreshChat (with its user, perhaps): this message opens a new one, and so do
            # the ones waiting behind it; the agent is told where the old one went.
            log.warning("freshchat_conversation_gone", conversation=conversation.fc_conversation_id, error=str(exc))
            self.store.forget_conversation(conversation.id)
            return self._open(contact, fc_user, message, replaced=conversation.fc_conversation_id)
        if isinstance(action, plan.PostCustomerMessage) and action.reopen:
            self._reopen(conversation)
        return posted, conversation.fc_conversation_id

    def _echo_facts(self, row: OutboxRow, contact_id: int) -> plan.EchoFacts:
        """An OA row in Zalo's listings is ours if its id is a send's id, or if it matches a send of ours
        whose listing row is not known yet (`echo`); only what is neither goes to the agent as a note."""
        if self.store.listing_claimed(row.source_id):
            return plan.EchoFacts(listing_claimed=True, own_send_open=False, match=None)
        if self.store.open_rows_of(contact_id, "f2z"):
            # One of our own sends to this user is unresolved; it may be this very message.
            return plan.EchoFacts(listing_claimed=False, own_send_open=True, match=None)
        sends = self.store.own_sends(contact_id, row.source_time - echo.WINDOW)
        listing = ZaloContent.of(row.payload)
        found = echo.echo_of(listing.type, listing.text, sends)
        return plan.EchoFacts(listing_claimed=False, own_send_open=False, match=found.row_id if found else None)

    def _reopen(self, conversation: Conversation) -> None:
        """A customer writing after a resolve reopens their conversation, so agents see it as open again.

        FreshChat may reopen it by itself when a user writes; setting ``new`` is harmless if it did. The
        message is already posted, so a refusal here is logged, not retried.
        """
        try:
            self.fc.reopen(conversation.fc_conversation_id)
        except (PermanentError, TransientError) as exc:
            log.warning("freshchat_reopen_failed", conversation=conversation.fc_conversation_id, error=str(exc))
        self.store.set_resolved(conversation.id, False)
        log.info("freshchat_conversation_reopened", conversation=conversation.fc_conversation_id)

    def reconcile(self, row: OutboxRow) -> tuple[str, str | None] | None:
        contact = self.store.contact_by_id(row.contact_id)
        payload = dict(row.payload)
        if row.kind == Kind.FAILURE_NOTE:
            candidates = [payload["conversation_id"]]
        else:
            conversation = self.store.current_conversation(contact.id)
            if conversation is not None:
                candidates = [conversation.fc_conversation_id]
            elif contact.fc_user_id:
                try:
                    candidates = self.fc.user_conversations(contact.fc_user_id)
                except PermanentError as exc:
                    if exc.status != 404:
                        raise
                    return None  # the user is gone, and with them anything an earlier attempt posted
            else:
                return None
        wanted = self._fingerprint_of_row(row, payload, contact.fc_user_id or "")
        since = (row.claimed_at or self.clock()) - RECONCILE_SLACK
        for conversation_id in candidates:
            match = self._find(conversation_id, wanted, since)
            if match is not None:
                if self.store.current_conversation(contact.id) is None and row.kind != Kind.FAILURE_NOTE:
                    self.store.add_conversation(contact.id, conversation_id, self.clock())
                return match, conversation_id
        return None

    def gave_up(self, row: OutboxRow, error: RemoteError, now: float) -> None:
        log.error("customer_message_not_delivered", row=row.id, error=str(error))

    # --- helpers -------------------------------------------------------------------------------------

    def _ensure_user(self, contact: Contact) -> str:
        if contact.fc_user_id:
            return contact.fc_user_id
        ref = reference_id(contact.zalo_user_id)
        user = self.fc.find_user(ref)
        if user is None:
            user = self.fc.create_user(freshchat_user(contact, self.display_name, self.clock()))
            log.info("freshchat_user_created", contact=contact.zalo_user_id, fc_user=user.id)
        self.store.set_fc_user(contact.id, user.id, self.clock())
        return user.id

    def _render(self, kind: str, payload: dict, fc_user: str) -> FcOutgoing:
        content = ZaloContent.of(payload)
        if kind == Kind.OA_NOTE:
            return FcOutgoing(
                (render.text_part(render.oa_note_text(content)),), actor_type="bot", message_type="private"
            )
        parts = payload.get(FC_PARTS) or render.zalo_parts(content)
        return FcOutgoing(tuple(parts), actor_type="user", actor_id=fc_user)

    def _open(self, contact: Contact, fc_user: str, message: FcOutgoing, replaced: str = "") -> tuple[str, str | None]:
        try:
            conversation_id, first_id = self.fc.create_conversation(self.channel_id, fc_user, message)
        except PermanentError as exc:
            if self.fc.find_user(reference_id(contact.zalo_user_id)) is not None:
                raise
            # The user is gone from FreshChat too: make them again, once.
            log.warning("freshchat_user_gone", contact=contact.zalo_user_id, error=str(exc))
            self.store.forget_fc_user(contact.id)
            fc_user = self._ensure_user(self.store.contact_by_id(contact.id))
            message = FcOutgoing(message.parts, message.actor_type, fc_user, message.message_type)
            conversation_id, first_id = self.fc.create_conversation(self.channel_id, fc_user, message)
            replaced = replaced or "the customer's previous one"
        self.store.add_conversation(contact.id, conversation_id, self.clock())
        log.info("freshchat_conversation_opened", contact=contact.zalo_user_id, conversation=conversation_id)
        if replaced:
            note = notes.recreated_note(replaced)
            self.store.insert_rows(
                contact.id,
                [notes.note_row(f"recreated:{conversation_id}", note, conversation_id, "", self.clock())],
                self.clock(),
            )
        if first_id is None:
            # Some accounts may not echo the created messages: find ours to record its id.
            first_id = self._find(conversation_id, _fingerprint(message.parts), self.clock() - RECONCILE_SLACK)
        return first_id or f"conversation:{conversation_id}", conversation_id

    def _latest_conversation(self, fc_user: str, exclude: str) -> str | None:
        newest: tuple[str, str] | None = None
        for conversation_id in self.fc.user_conversations(fc_user):
            if conversation_id == exclude:
                continue
            created = str(self.fc.conversation(conversation_id).get("created_time") or "")
            if newest is None or created > newest[0]:
                newest = (created, conversation_id)
        return newest[1] if newest else None

    def _fingerprint_of_row(self, row: OutboxRow, payload: dict, fc_user: str) -> str:
        if row.kind == Kind.FAILURE_NOTE:
            return _fingerprint((render.text_part(payload["text"]),))
        return _fingerprint(self._render(row.kind, payload, fc_user).parts)

    def _find(self, conversation_id: str, fingerprint: str, since: float) -> str | None:
        """The oldest message since ``since`` with this content that no other row has claimed."""
        try:
            return self._find_in(conversation_id, fingerprint, since)
        except PermanentError as exc:
            if exc.status == 404:
                return None  # a conversation FreshChat no longer has holds nothing of ours
            raise

    def _find_in(self, conversation_id: str, fingerprint: str, since: float) -> str | None:
        def older(message: FcMessage) -> bool:
            return message.created_time.timestamp() < since

        read = pages.walk(self.fc.message_pages(conversation_id), pages.from_first(older), RECONCILE_PAGES)
        candidates = [
            m for m in read.items if _fingerprint(m.parts) == fingerprint and not self.store.dest_taken("z2f", m.id)
        ]
        return candidates[-1].id if candidates else None


def _fingerprint(parts: tuple | list) -> str:
    texts = [str(p["text"].get("content", "")) for p in parts if isinstance(p.get("text"), dict)]
    images = [str(p["image"].get("url", "")) for p in parts if isinstance(p.get("image"), dict)]
    files = [str(p["file"].get("name", "")) for p in parts if isinstance(p.get("file"), dict)]
    return json.dumps([texts, images, files], ensure_ascii=False)
