"""Post into FreshChat as a customer's user: find or make the user, post into the planned conversation or
open one, and carry out the recovery `zfsync.sync.decide.recovery` plans step by step when FreshChat
refuses. Each Zalo user has exactly one FreshChat user, found by ``reference_id`` before one is created,
so a crash between creating it and recording it cannot make a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import structlog

from zfsync.domain import Contact, Conversation, FcMessage, FcOutgoing, OutboxRow, reference_id
from zfsync.domain.errors import ConversationNotLatest, PermanentError, TransientError
from zfsync.sync.decide import notes, pages, plan, recovery, render, routing
from zfsync.sync.desk.profiles import freshchat_user
from zfsync.sync.ports import FreshChatSide
from zfsync.sync.seams import WriterStore
from zfsync.sync.write.delivery import Sent
from zfsync.sync.write.freshchat_routes import RouteBook

log = structlog.get_logger("zfsync.sync")

RECONCILE_PAGES = 10
RECONCILE_SLACK = 600.0  # seconds before the claim in which an earlier attempt's message may stand


class Poster:
    def __init__(
        self,
        freshchat: FreshChatSide,
        store: WriterStore,
        clock: Callable[[], float],
        display_name: str,
        routes: RouteBook,
    ):
        self.fc = freshchat
        self.store = store
        self.clock = clock
        self.display_name = display_name
        self.routes = routes

    def ensure_user(self, contact: Contact) -> str:
        if contact.fc_user_id:
            return contact.fc_user_id
        user = self.fc.find_user(reference_id(contact.zalo_user_id))
        if user is None:
            user = self.fc.create_user(freshchat_user(contact, self.display_name, self.clock()))
            log.info("freshchat_user_created", contact=contact.zalo_user_id, fc_user=user.id)
        self.store.set_fc_user(contact.id, user.id, self.clock())
        return user.id

    def post(self, row: OutboxRow, contact: Contact, fc_user: str, message: FcOutgoing, to: plan.PostTo) -> Sent:
        """Post into the planned conversation as (or for) ``fc_user``, recovering as `recovery` says when
        FreshChat refuses it."""
        # A conversation opened by imported history is as old as it: it is not polled as an active one.
        active_at = row.source_time if row.history else None
        if to.conversation is None:
            return self._open(contact, fc_user, message, replaced=to.replaced, active_at=active_at, follows=to.follows)
        conversation = to.conversation
        try:
            posted = self.fc.post_message(conversation.fc_conversation_id, fc_user, message)
        except ConversationNotLatest:
            log.info(
                "freshchat_conversation_replaced", contact=contact.zalo_user_id, old=conversation.fc_conversation_id
            )
            refused = recovery.PostRefused(conversation.fc_conversation_id, not_latest=True)
            return self._recover(refused, row, contact, fc_user, message, conversation, active_at)
        except PermanentError as exc:
            refused = recovery.PostRefused(conversation.fc_conversation_id, status=exc.status, reason=str(exc))
            return self._recover(refused, row, contact, fc_user, message, conversation, active_at, exc)
        if to.reopen:
            self._reopen(conversation)
        return Sent(posted, conversation.fc_conversation_id)

    def _recover(
        self,
        refused: recovery.PostRefused,
        row: OutboxRow,
        contact: Contact,
        fc_user: str,
        message: FcOutgoing,
        conversation: Conversation,
        active_at: float | None,
        error: PermanentError | None = None,
    ) -> Sent:
        """Carry out the steps `recovery` plans; ``error``: the refusal, raised again when the planner
        gives up (the row's failure)."""
        while True:
            step = recovery.after_post_refused(refused)
            if isinstance(step, recovery.FindNewest):
                newest = self._latest_conversation(fc_user, exclude=conversation.fc_conversation_id)
                refused = replace(refused, newest=newest or "")
            elif isinstance(step, recovery.Follow):
                self.store.add_conversation(contact.id, step.conversation_id, self.clock())
                since = (row.claimed_at or self.clock()) - RECONCILE_SLACK
                found = self.find(step.conversation_id, render.fingerprint(message.parts), since)
                refused = replace(refused, found=found or "")
            elif isinstance(step, recovery.Adopt):
                log.info("freshchat_message_found_in_new_conversation", contact=contact.zalo_user_id)
                return Sent(step.message_id, step.conversation_id)
            elif isinstance(step, recovery.PostInto):
                return Sent(self.fc.post_message(step.conversation_id, fc_user, message), step.conversation_id)
            elif isinstance(step, recovery.OpenNew):
                if step.forget:
                    # Deleted in FreshChat (with its user, perhaps): this message opens a new one, and so
                    # do the ones waiting behind it; the agent is told where the old one went.
                    log.warning("freshchat_conversation_gone", conversation=step.replaced, error=refused.reason)
                    self.store.forget_conversation(conversation.id)
                return self._open(contact, fc_user, message, replaced=step.replaced, active_at=active_at)
            else:
                assert error is not None, "a post refused as not the latest is always recovered"
                raise error

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

    def _open(
        self,
        contact: Contact,
        fc_user: str,
        message: FcOutgoing,
        replaced: str = "",
        active_at: float | None = None,
        follows: str = "",
    ) -> Sent:
        to = self.routes.destination(contact, message)
        said: list[tuple[str, str]] = []  # the notes the new conversation gets: (source id prefix, text)
        if to.skipped:
            said.append(("route", self.routes.skipped_note(to)))
        try:
            conversation_id, first_id = self.fc.create_conversation(to.channel_id, fc_user, message, to.group_id)
        except PermanentError as exc:
            refused = recovery.OpenRefused(to.route)
            while True:
                step = recovery.after_open_refused(refused)
                if isinstance(step, recovery.AskForUser):
                    user = self.fc.find_user(reference_id(contact.zalo_user_id))
                    refused = replace(refused, user_there=user is not None)
                    continue
                if isinstance(step, recovery.FallBackToDefault):
                    said = [("route", self.routes.refused(to, exc))]
                    to = routing.Destination(self.routes.channel_id)
                    conversation_id, first_id = self.fc.create_conversation(to.channel_id, fc_user, message)
                elif isinstance(step, recovery.RecreateUser):
                    conversation_id, first_id = self._recreated_user_opens(contact, message, to)
                    replaced = replaced or "the customer's previous one"
                else:
                    raise
                break
        self.store.add_conversation(contact.id, conversation_id, self.clock(), active_at)
        log.info("freshchat_conversation_opened", contact=contact.zalo_user_id, conversation=conversation_id)
        if follows:
            said.insert(0, ("follows", notes.follows_note(follows)))
            log.info("freshchat_conversation_after_resolve", contact=contact.zalo_user_id, previous=follows)
        if replaced:
            said.append(("recreated", notes.recreated_note(replaced)))
        for prefix, text in said:
            note = notes.note_row(f"{prefix}:{conversation_id}", text, conversation_id, "", self.clock())
            self.store.insert_rows(contact.id, [note], self.clock())
        if first_id is None:
            # Some accounts may not echo the created messages: find ours to record its id.
            first_id = self.find(conversation_id, render.fingerprint(message.parts), self.clock() - RECONCILE_SLACK)
        return Sent(first_id or f"conversation:{conversation_id}", conversation_id)

    def _recreated_user_opens(
        self, contact: Contact, message: FcOutgoing, to: routing.Destination
    ) -> tuple[str, str | None]:
        """The user is gone from FreshChat too: make them again, once, and open the conversation."""
        log.warning("freshchat_user_gone", contact=contact.zalo_user_id)
        self.store.forget_fc_user(contact.id)
        fc_user = self.ensure_user(self.store.contact_by_id(contact.id))
        actor = fc_user if message.actor_type == "user" else message.actor_id
        message = FcOutgoing(message.parts, message.actor_type, actor, message.message_type)
        return self.fc.create_conversation(to.channel_id, fc_user, message, to.group_id)

    def _latest_conversation(self, fc_user: str, exclude: str) -> str | None:
        started = {c: self.fc.conversation_started(c) for c in self.fc.user_conversations(fc_user) if c != exclude}
        return max(started, key=lambda c: started[c]) if started else None

    def find(self, conversation_id: str, wanted: str, since: float) -> str | None:
        """The oldest message since ``since`` with the `render.fingerprint` ``wanted`` that no other row
        has claimed."""

        def older(message: FcMessage) -> bool:
            return message.created_time.timestamp() < since

        try:
            read = pages.walk(self.fc.message_pages(conversation_id), pages.from_first(older), RECONCILE_PAGES)
        except PermanentError as exc:
            if exc.status == 404:
                return None  # a conversation FreshChat no longer has holds nothing of ours
            raise
        candidates = [
            m for m in read.items if render.fingerprint(m.parts) == wanted and not self.store.dest_taken("z2f", m.id)
        ]
        return candidates[-1].id if candidates else None
