"""The four posts a row to FreshChat becomes: a customer's message, OA staff's message shown to the agent
(or zfsync's own send listed back, which is skipped), a note to an agent, and the note that opens an
imported history. Each sends as `plan` decides, looks where an earlier attempt would have posted it (a
crash or a timeout may hide a delivery), and says what its failure means. A post gets the small context
it needs (`PostContext`), not the object that made it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from zfsync.domain import Contact, Conversation, FcOutgoing, OutboxRow, Part, TextPart, ZaloContent
from zfsync.domain.errors import PermanentError
from zfsync.domain.outbound import AgentNote
from zfsync.sync.decide import echo, notes, plan, render
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import WriterStore
from zfsync.sync.write import media
from zfsync.sync.write.delivery import Failure, Held, Outcome, Sent, Skipped
from zfsync.sync.write.freshchat_poster import RECONCILE_SLACK, Poster

log = structlog.get_logger("zfsync.sync")


@dataclass(frozen=True)
class PostContext:
    """What a post works with: the sides, the store's seam, the clock, the poster and the desk's choices."""

    freshchat: FreshChatSide
    zalo: ZaloSide
    store: WriterStore
    clock: Callable[[], float]
    poster: Poster
    agent_notes: str = "all"  # sync.agent_notes: which of zfsync's private notes are posted
    after_resolve: plan.AfterResolve = dataclasses.field(default_factory=plan.AfterResolve)


class Post:
    """One row's post to FreshChat: it sends as planned, looks where an earlier attempt would have posted,
    and says what a failure means."""

    def __init__(self, context: PostContext, row: OutboxRow, contact: Contact):
        self.context = context
        self.row = row
        self.contact = contact

    def send(self) -> Outcome:
        raise NotImplementedError

    def message(self) -> FcOutgoing:
        """What this row posts, as an earlier attempt posted it."""
        raise NotImplementedError

    def candidates(self) -> list[str]:
        """The conversations an earlier attempt may have posted to."""
        raise NotImplementedError

    def reconcile(self) -> Sent | None:
        since = (self.row.claimed_at or self.context.clock()) - RECONCILE_SLACK
        wanted = render.fingerprint(self.message().parts)
        for conversation_id in self.candidates():
            match = self.context.poster.find(conversation_id, wanted, since)
            if match is not None:
                return Sent(match, conversation_id)
        return None

    def gave_up(self, failure: Failure, now: float) -> None:
        log.error("customer_message_not_delivered", row=self.row.id, error=failure.reason)


class _ContactPost(Post):
    """A post from the customer's side (their message, or OA staff's): it goes to the contact's
    conversation, and an earlier attempt is looked for there, or in any of their user's."""

    def __init__(self, context: PostContext, row: OutboxRow, contact: Contact, content: ZaloContent):
        super().__init__(context, row, contact)
        self.content = content

    def candidates(self) -> list[str]:
        conversation = self.context.store.current_conversation(self.contact.id)
        if conversation is not None:
            return [conversation.fc_conversation_id]
        if not self.contact.fc_user_id:
            return []
        try:
            return self.context.freshchat.user_conversations(self.contact.fc_user_id)
        except PermanentError as exc:
            if exc.status != 404:
                raise
            return []  # the user is gone, and with them anything an earlier attempt posted

    def reconcile(self) -> Sent | None:
        found = super().reconcile()
        store = self.context.store
        if found is not None and store.current_conversation(self.contact.id) is None:
            store.add_conversation(self.contact.id, found.conversation_id or "", self.context.clock())
        return found

    def _conversations(self) -> tuple[Conversation | None, str | None]:
        """The contact's conversation to post to, and (with none) the FreshChat id of their newest one."""
        store = self.context.store
        current = store.current_conversation(self.contact.id)
        return current, store.previous_conversation(self.contact.id) if current is None else None


class CustomerMessagePost(_ContactPost):
    def __init__(
        self,
        context: PostContext,
        row: OutboxRow,
        contact: Contact,
        content: ZaloContent,
        copied: list[Part] | None,
    ):
        super().__init__(context, row, contact, content)
        self.copied = copied  # the parts with media copied into FreshChat, by an earlier attempt

    def message(self) -> FcOutgoing:
        parts = self.copied or render.zalo_parts(self.content)
        return FcOutgoing(tuple(parts), actor_type="user", actor_id=self.contact.fc_user_id or "")

    def send(self) -> Outcome:
        to = plan.plan_customer_message(*self._conversations(), self.context.clock(), self.context.after_resolve)
        if self.row.history:
            to = dataclasses.replace(to, reopen=False)  # an old message does not reopen a resolved conversation
        fc_user = self.context.poster.ensure_user(self.contact)
        if self.copied is None and media.has_media(self.content):
            copied = media.copy_to_freshchat(self.content, self.context.zalo, self.context.freshchat, self.row.attempts)
            for problem in copied.problems:
                log.warning("media_not_copied", row=self.row.id, contact=self.contact.zalo_user_id, reason=problem)
            # Saved before posting: a retry after a crash posts the same parts, so reconcile can find them.
            self.copied = copied.parts
            self.context.store.keep_copied_parts(self.row.id, copied.parts)
        message = FcOutgoing(self.message().parts, actor_type="user", actor_id=fc_user)
        return self.context.poster.post(self.row, self.contact, fc_user, message, to)


class OaNotePost(_ContactPost):
    """What OA staff wrote to the customer from OA Manager, shown to the agent; or zfsync's own send
    listed back, which is skipped."""

    def message(self) -> FcOutgoing:
        return FcOutgoing((TextPart(render.oa_note_text(self.content)),), actor_type="bot", message_type="private")

    def send(self) -> Outcome:
        current, previous = self._conversations()
        action = plan.plan_oa_note(current, previous, self._echo_facts())
        if isinstance(action, plan.SkipEcho):
            return Skipped(action.reason)
        if isinstance(action, plan.HoldBack):
            return Held(action.reason, action.delay)
        if isinstance(action, plan.ClaimEcho):
            if self.context.store.set_echo(action.row_id, self.row.source_id):
                return Skipped(f"echo of a reply zfsync sent (row {action.row_id}, matched by content)")
            action = plan.oa_note(current, previous)  # OA staff's message after all
        fc_user = self.context.poster.ensure_user(self.contact)
        return self.context.poster.post(self.row, self.contact, fc_user, self.message(), action)

    def _echo_facts(self) -> plan.EchoFacts:
        """An OA row in Zalo's listings is ours if its id is a send's id, or if it matches a send of ours
        whose listing row is not known yet (`echo`); only what is neither goes to the agent as a note."""
        row, store, contact_id = self.row, self.context.store, self.contact.id
        if store.listing_claimed(row.source_id):
            return plan.EchoFacts(listing_claimed=True, own_send_open=False, match=None)
        if store.open_rows_of(contact_id, "f2z"):
            # One of our own sends to this user is unresolved; it may be this very message.
            return plan.EchoFacts(listing_claimed=False, own_send_open=True, match=None)
        sends = store.own_sends(contact_id, row.source_time - echo.WINDOW)
        found = echo.echo_of(self.content.type, self.content.text, sends)
        return plan.EchoFacts(listing_claimed=False, own_send_open=False, match=found.row_id if found else None)


class HistoryMarkerPost(_ContactPost):
    """The private note that opens a customer's imported history (`zfsync.sync.read.history`): it says that the
    messages after it are old ones, imported."""

    def message(self) -> FcOutgoing:
        return FcOutgoing((TextPart(self.content.text),), actor_type="bot", message_type="private")

    def send(self) -> Outcome:
        fc_user = self.context.poster.ensure_user(self.contact)
        return self.context.poster.post(
            self.row, self.contact, fc_user, self.message(), plan.oa_note(*self._conversations())
        )


class AgentNotePost(Post):
    """A note to the agent (a reply that failed), in the conversation the reply came from."""

    def __init__(self, context: PostContext, row: OutboxRow, contact: Contact):
        super().__init__(context, row, contact)
        # It goes where the failed reply came from, whatever the contact's conversation is now.
        assert isinstance(row.content, AgentNote), row.kind
        self.note = row.content

    def message(self) -> FcOutgoing:
        note = self.note
        return FcOutgoing((TextPart(note.text),), note.actor_type, note.actor_id, "private")

    def send(self) -> Outcome:
        level = self.note.level
        if not notes.shown(level, self.context.agent_notes):
            # The failure itself stays where it is (zfsync failed, the metrics, status): only the note is not posted.
            log.info("agent_note_withheld", row=self.row.id, level=level, setting=self.context.agent_notes)
            return Skipped(f"sync.agent_notes = {self.context.agent_notes}")
        to = self.note.conversation_id
        posted = self.context.freshchat.post_message(to, self.contact.fc_user_id or "", self.message())
        return Sent(posted, to)

    def candidates(self) -> list[str]:
        return [self.note.conversation_id]

    def gave_up(self, failure: Failure, now: float) -> None:
        log.error(
            "agent_note_not_delivered", row=self.row.id, conversation=self.row.conversation_id, error=failure.reason
        )
