"""Write to FreshChat: customer messages as the contact's FreshChat user, notes as private messages.

Each Zalo user has exactly one FreshChat user, found by ``reference_id`` before one is created, so a crash
between creating it and recording it cannot make a second. A user message into a conversation that is not
the user's latest is refused by FreshChat with 400 "not the latest conversation": we then adopt the
user's newest conversation, or open one.

What a row becomes is one of the three posts of `freshchat_posts`; the writer holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from zfsync.domain import (
    Contact,
    Conversation,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    Json,
    Kind,
    OutboxRow,
    ZaloContent,
    reference_id,
)
from zfsync.errors import ConversationNotLatest, PermanentError, TransientError
from zfsync.store import Store
from zfsync.sync import media, notes, pages, plan, render
from zfsync.sync.delivery import Sent
from zfsync.sync.freshchat_posts import (
    RECONCILE_SLACK,
    AgentNotePost,
    CustomerMessagePost,
    OaNotePost,
    Post,
    fingerprint,
)
from zfsync.sync.ports import FreshChatSide, ZaloSide

log = structlog.get_logger("zfsync.sync")

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

    def action(self, row: OutboxRow) -> Post:
        """A row to FreshChat is one of three posts: a note to an agent, OA staff's message, or the
        customer's. No request is made yet."""
        contact = self.store.contact_by_id(row.contact_id)
        if row.kind == Kind.FAILURE_NOTE:
            return AgentNotePost(self, row, contact)
        if row.kind == Kind.OA_NOTE:
            return OaNotePost(self, row, contact)
        return CustomerMessagePost(self, row, contact)

    def heavy(self, row: OutboxRow) -> bool:
        """A customer's photo, voice or file not yet copied into FreshChat: a download and an upload."""
        if row.kind in (Kind.FAILURE_NOTE, Kind.OA_NOTE) or FC_PARTS in row.payload:
            return False
        return media.has_media(ZaloContent.of(row.payload))

    def post(self, row: OutboxRow, contact: Contact, action: plan.PostCustomerMessage | plan.PostOaNote) -> Sent:
        """Post into the planned conversation: the customer's newest if FreshChat says it is not, a new
        one if there is none or it is gone."""
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
        message = self.render(row.kind, payload, fc_user)
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
            already = self.find(latest, fingerprint(message.parts), since)
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

    def render(self, kind: str, payload: Json, fc_user: str) -> FcOutgoing:
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
            first_id = self.find(conversation_id, fingerprint(message.parts), self.clock() - RECONCILE_SLACK)
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

    def find(self, conversation_id: str, wanted: str, since: float) -> str | None:
        """The oldest message since ``since`` with the `fingerprint` ``wanted`` that no other row has claimed."""
        try:
            return self._find_in(conversation_id, wanted, since)
        except PermanentError as exc:
            if exc.status == 404:
                return None  # a conversation FreshChat no longer has holds nothing of ours
            raise

    def _find_in(self, conversation_id: str, wanted: str, since: float) -> str | None:
        def older(message: FcMessage) -> bool:
            return message.created_time.timestamp() < since

        read = pages.walk(self.fc.message_pages(conversation_id), pages.from_first(older), RECONCILE_PAGES)
        candidates = [
            m for m in read.items if fingerprint(m.parts) == wanted and not self.store.dest_taken("z2f", m.id)
        ]
        return candidates[-1].id if candidates else None
