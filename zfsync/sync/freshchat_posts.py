"""The three posts a row to FreshChat can be: a customer's message, OA staff's message shown to the
agent, and a note to an agent. Each sends as the planner decides, looks where an earlier attempt would
have posted it (a crash or a timeout may hide a delivery), and says what its failure means.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

import structlog

from zfsync.domain import Contact, Conversation, FcOutgoing, Json, OutboxRow, ZaloContent
from zfsync.errors import PermanentError, RemoteError
from zfsync.store import Store
from zfsync.sync import echo, plan, render
from zfsync.sync.delivery import Hold, Sent, Skip
from zfsync.sync.ports import FreshChatSide

log = structlog.get_logger("zfsync.sync")

RECONCILE_SLACK = 600.0  # seconds before the claim in which an earlier attempt's message may stand


class Writer(Protocol):
    """What the posts share, held by `freshchat_writer.FreshChatWriter`."""

    store: Store
    fc: FreshChatSide
    clock: Callable[[], float]

    def post(self, row: OutboxRow, contact: Contact, action: plan.PostCustomerMessage | plan.PostOaNote) -> Sent:
        """Post into the planned conversation (or the one FreshChat says is the customer's newest)."""
        ...

    def render(self, kind: str, payload: Json, fc_user: str) -> FcOutgoing:
        """A customer's or OA staff's row as FreshChat shows it."""
        ...

    def find(self, conversation_id: str, wanted: str, since: float) -> str | None:
        """An unclaimed message since ``since`` whose `fingerprint` is ``wanted``."""
        ...


class Post(ABC):
    """One row's post to FreshChat: it sends as planned, looks where an earlier attempt would have posted,
    and says what a failure means."""

    def __init__(self, writer: Writer, row: OutboxRow, contact: Contact):
        self.writer = writer
        self.row = row
        self.contact = contact

    @abstractmethod
    def send(self) -> Sent: ...

    @abstractmethod
    def _candidates(self) -> list[str]:
        """The conversations an earlier attempt may have posted to."""

    @abstractmethod
    def _message(self) -> FcOutgoing:
        """What this row posts, as an earlier attempt posted it."""

    def reconcile(self) -> Sent | None:
        since = (self.row.claimed_at or self.writer.clock()) - RECONCILE_SLACK
        wanted = fingerprint(self._message().parts)
        for conversation_id in self._candidates():
            match = self.writer.find(conversation_id, wanted, since)
            if match is not None:
                return match, conversation_id
        return None

    @abstractmethod
    def gave_up(self, error: RemoteError, now: float) -> None: ...


class _ContactPost(Post):
    """A post from the customer's side (their message, or OA staff's): it goes to the contact's
    conversation, and an earlier attempt is looked for there, or in any of their user's."""

    def _candidates(self) -> list[str]:
        store, contact = self.writer.store, self.contact
        conversation = store.current_conversation(contact.id)
        if conversation is not None:
            return [conversation.fc_conversation_id]
        if not contact.fc_user_id:
            return []
        try:
            return self.writer.fc.user_conversations(contact.fc_user_id)
        except PermanentError as exc:
            if exc.status != 404:
                raise
            return []  # the user is gone, and with them anything an earlier attempt posted

    def _message(self) -> FcOutgoing:
        return self.writer.render(self.row.kind, dict(self.row.payload), self.contact.fc_user_id or "")

    def reconcile(self) -> Sent | None:
        found = super().reconcile()
        store = self.writer.store
        if found is not None and store.current_conversation(self.contact.id) is None:
            store.add_conversation(self.contact.id, found[1] or "", self.writer.clock())  # the one it was in
        return found

    def gave_up(self, error: RemoteError, now: float) -> None:
        log.error("customer_message_not_delivered", row=self.row.id, error=str(error))

    def _conversations(self) -> tuple[Conversation | None, str | None]:
        """The contact's conversation to post to, and (with none) the FreshChat id of their newest one."""
        store = self.writer.store
        current = store.current_conversation(self.contact.id)
        return current, store.previous_conversation(self.contact.id) if current is None else None


class CustomerMessagePost(_ContactPost):
    def send(self) -> Sent:
        action = plan.plan_customer_message(*self._conversations())
        return self.writer.post(self.row, self.contact, action)


class OaNotePost(_ContactPost):
    """What OA staff wrote to the customer from OA Manager, shown to the agent; or zfsync's own send
    listed back, which is skipped."""

    def send(self) -> Sent:
        current, previous = self._conversations()
        action = plan.plan_oa_note(current, previous, self._echo_facts())
        if isinstance(action, plan.SkipEcho):
            raise Skip(action.reason)
        if isinstance(action, plan.HoldBack):
            raise Hold(action.reason, action.delay)
        if isinstance(action, plan.ClaimEcho):
            if self.writer.store.set_echo(action.row_id, self.row.source_id):
                raise Skip(f"echo of a reply zfsync sent (row {action.row_id}, matched by content)")
            action = plan.oa_note(current, previous)  # OA staff's message after all
        return self.writer.post(self.row, self.contact, action)

    def _echo_facts(self) -> plan.EchoFacts:
        """An OA row in Zalo's listings is ours if its id is a send's id, or if it matches a send of ours
        whose listing row is not known yet (`echo`); only what is neither goes to the agent as a note."""
        row, store, contact_id = self.row, self.writer.store, self.contact.id
        if store.listing_claimed(row.source_id):
            return plan.EchoFacts(listing_claimed=True, own_send_open=False, match=None)
        if store.open_rows_of(contact_id, "f2z"):
            # One of our own sends to this user is unresolved; it may be this very message.
            return plan.EchoFacts(listing_claimed=False, own_send_open=True, match=None)
        sends = store.own_sends(contact_id, row.source_time - echo.WINDOW)
        listing = ZaloContent.of(row.payload)
        found = echo.echo_of(listing.type, listing.text, sends)
        return plan.EchoFacts(listing_claimed=False, own_send_open=False, match=found.row_id if found else None)


class AgentNotePost(Post):
    """A note to the agent (a reply that failed), in the conversation the reply came from."""

    def send(self) -> Sent:
        action = plan.plan_private_note(self.row.payload)
        note = FcOutgoing(
            self._message().parts, actor_type=action.actor_type, actor_id=action.actor_id, message_type="private"
        )
        posted = self.writer.fc.post_message(action.conversation_id, self.contact.fc_user_id or "", note)
        return posted, action.conversation_id

    def _candidates(self) -> list[str]:
        return [plan.plan_private_note(self.row.payload).conversation_id]

    def _message(self) -> FcOutgoing:
        return FcOutgoing((render.text_part(self.row.payload["text"]),))

    def gave_up(self, error: RemoteError, now: float) -> None:
        log.error("agent_note_not_delivered", row=self.row.id, conversation=self.row.conversation_id, error=str(error))


def fingerprint(parts: tuple | list) -> str:
    """What identifies a post's content when it is looked for again: its texts, image URLs and file names."""
    texts = [str(p["text"].get("content", "")) for p in parts if isinstance(p.get("text"), dict)]
    images = [str(p["image"].get("url", "")) for p in parts if isinstance(p.get("image"), dict)]
    files = [str(p["file"].get("name", "")) for p in parts if isinstance(p.get("file"), dict)]
    return json.dumps([texts, images, files], ensure_ascii=False)
