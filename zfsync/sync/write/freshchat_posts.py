"""Write to FreshChat: customer messages as the contact's FreshChat user, notes as private messages.

A row to FreshChat is one of four posts: a customer's message, OA staff's message shown to the agent
(or zfsync's own send listed back, which is skipped), a note to an agent, and the note that opens an
imported history. Each sends as `plan`
decides, looks where an earlier attempt would have posted it (a crash or a timeout may hide a delivery),
and says what its failure means. A queued row's content is read once, when its post is made.

Each Zalo user has exactly one FreshChat user, found by ``reference_id`` before one is created, so a crash
between creating it and recording it cannot make a second. A user message into a conversation that is not
the user's latest is refused by FreshChat with 400 "not the latest conversation": the post then follows
the user's newest conversation, or opens one (the recovery choices are `plan`'s too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import structlog

from zfsync.domain import (
    Contact,
    Conversation,
    FcMessage,
    FcOutgoing,
    Kind,
    OutboxRow,
    Part,
    Route,
    TextPart,
    ZaloContent,
    outbound,
    reference_id,
)
from zfsync.errors import ConversationNotLatest, PermanentError, TransientError
from zfsync.sync.decide import echo, notes, pages, plan, render, routing
from zfsync.sync.desk.profiles import freshchat_user
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import WriterStore
from zfsync.sync.write import media
from zfsync.sync.write.delivery import Failure, Held, Outcome, Sent, Skipped

log = structlog.get_logger("zfsync.sync")

RECONCILE_PAGES = 10
ROUTE_CHECK = 3600.0  # seconds between checks of the routes against the account's channels and groups
ROUTE_CHECK_RETRY = 300.0  # seconds before a check FreshChat did not answer is tried again
RECONCILE_SLACK = 600.0  # seconds before the claim in which an earlier attempt's message may stand


class FreshChatWriter:
    def __init__(
        self,
        freshchat: FreshChatSide,
        zalo: ZaloSide,
        store: WriterStore,
        clock: Callable[[], float],
        channel_id: str,
        display_name: str,
        routes: tuple[Route, ...] = (),
        agent_notes: str = "all",
        after_resolve: plan.AfterResolve | None = None,
    ):
        self.fc = freshchat
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.channel_id = channel_id
        self.display_name = display_name
        self.routes = routes  # [[route]]: where a new conversation opens
        self.agent_notes = agent_notes  # sync.agent_notes: which of zfsync's private notes are posted
        self.after_resolve = after_resolve or plan.AfterResolve()  # what a message after a resolve opens
        self.wrong_routes: dict[int, str] = {}  # routes whose channel or group the account lacks: skipped
        self.routes_checked_at: float | None = None

    def check_routes(self) -> None:
        """Compare the routes with the account's channels and groups (at the start, then hourly): a route
        to a channel or group FreshChat lacks is skipped, said once in the log and shown by status."""
        if not self.routes:
            return
        channels = {str(c.get("id")) for c in self.fc.channels()}
        groups = {str(g.get("id")) for g in self.fc.groups()} if any(r.group_id for r in self.routes) else None
        found = {number: "; ".join(wrong) for number, wrong in routing.problems(self.routes, channels, groups).items()}
        for number in sorted(set(found) - set(self.wrong_routes)):
            log.warning("route_invalid", route=number, problem=found[number])
        self.wrong_routes = found
        self.store.set_route_problems(found, self.clock())
        self.routes_checked_at = self.clock()

    def check_routes_due(self) -> None:
        """`check_routes` at the start and hourly; a check FreshChat does not answer is tried again later
        (meanwhile a refused route still falls back to the default channel)."""
        now = self.clock()
        if not self.routes or (self.routes_checked_at is not None and now - self.routes_checked_at < ROUTE_CHECK):
            return
        try:
            self.check_routes()
        except (TransientError, PermanentError) as exc:
            log.info("route_check_failed", error=str(exc))
            self.routes_checked_at = now - ROUTE_CHECK + ROUTE_CHECK_RETRY

    def action(self, row: OutboxRow) -> Post:
        """What the row becomes: no request is made yet."""
        contact = self.store.contact_by_id(row.contact_id)
        if row.kind == Kind.FAILURE_NOTE:
            return AgentNotePost(self, row, contact)
        content = ZaloContent.of(row.payload)
        if row.kind == Kind.OA_NOTE:
            return OaNotePost(self, row, contact, content)
        if row.kind == Kind.HISTORY_MARKER:
            return HistoryMarkerPost(self, row, contact, content)
        return CustomerMessagePost(self, row, contact, content, list(row.copied) if row.copied else None)

    def heavy(self, row: OutboxRow) -> bool:
        """A customer's photo, voice or file not yet copied into FreshChat: a download and an upload."""
        if row.kind in (Kind.FAILURE_NOTE, Kind.OA_NOTE, Kind.HISTORY_MARKER) or row.copied is not None:
            return False
        return media.has_media(ZaloContent.of(row.payload))

    # --- what the posts share ------------------------------------------------------------------------

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
        """Post into the planned conversation as (or for) ``fc_user``, recovering as `plan` says when
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
            latest = self._latest_conversation(fc_user, exclude=conversation.fc_conversation_id)
            if latest is None:
                return self._open(contact, fc_user, message, active_at=active_at)
            self.store.add_conversation(contact.id, latest, self.clock())
            # After a resolve FreshChat may have opened the new conversation *with* the refused message in
            # it (wedosoft's bridge saw both): look before posting, so it never stands there twice.
            since = (row.claimed_at or self.clock()) - RECONCILE_SLACK
            choice = plan.after_not_latest(self.find(latest, render.fingerprint(message.parts), since))
            if isinstance(choice, plan.AlreadyThere):
                log.info("freshchat_message_found_in_new_conversation", contact=contact.zalo_user_id)
                return Sent(choice.message_id, latest)
            return Sent(self.fc.post_message(latest, fc_user, message), latest)
        except PermanentError as exc:
            if not plan.reopen_after_refusal(exc.status):
                raise
            # Deleted in FreshChat (with its user, perhaps): this message opens a new one, and so do
            # the ones waiting behind it; the agent is told where the old one went.
            log.warning("freshchat_conversation_gone", conversation=conversation.fc_conversation_id, error=str(exc))
            self.store.forget_conversation(conversation.id)
            return self._open(contact, fc_user, message, replaced=conversation.fc_conversation_id, active_at=active_at)
        if to.reopen:
            self._reopen(conversation)
        return Sent(posted, conversation.fc_conversation_id)

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

    def destination(self, contact: Contact, message: FcOutgoing) -> routing.Destination:
        """Which channel (and group) the customer's new conversation opens in (`zfsync.sync.decide.routing`)."""
        if not self.routes:
            return routing.Destination(self.channel_id)
        self.check_routes_due()
        tags: tuple[str, ...] = ()
        if any(route.tag for route in self.routes):
            try:
                tags = self.zalo.user_profile(contact.zalo_user_id).tags
            except (TransientError, PermanentError) as exc:  # routed by what else is known
                log.info("route_tags_unknown", contact=contact.zalo_user_id, error=str(exc))
        oa = ""
        if any(route.oa for route in self.routes):
            try:
                oa = self.zalo.oa_id()
            except (TransientError, PermanentError) as exc:  # routed by what else is known
                log.info("route_oa_unknown", contact=contact.zalo_user_id, error=str(exc))
        text = "\n".join(part.text for part in message.parts if isinstance(part, TextPart))
        found = routing.destination(self.routes, self.channel_id, tags, text, oa, skip=self.wrong_routes)
        log.info("conversation_routed", contact=contact.zalo_user_id, route=found.route, channel=found.channel_id)
        return found

    def _open(
        self,
        contact: Contact,
        fc_user: str,
        message: FcOutgoing,
        replaced: str = "",
        active_at: float | None = None,
        follows: str = "",
    ) -> Sent:
        to = self.destination(contact, message)
        refused_route = ""
        if to.skipped:
            refused_route = self._route_note(to.skipped, self.wrong_routes.get(to.skipped, ""))
        try:
            conversation_id, first_id = self.fc.create_conversation(to.channel_id, fc_user, message, to.group_id)
        except PermanentError as exc:
            user_there = self.fc.find_user(reference_id(contact.zalo_user_id)) is not None
            if to.route and user_there:
                # The route's channel or group is refused (a typo, deleted since): the default channel
                # takes the customer, and the desk is told; a route never hides a customer.
                refused_route = self._route_refused(to, exc)
                to = routing.Destination(self.channel_id)
                conversation_id, first_id = self.fc.create_conversation(to.channel_id, fc_user, message)
            elif not plan.recreate_user_after_refusal(user_there):
                raise
            else:
                conversation_id, first_id = self._recreated_user_opens(contact, message, to)
                replaced = replaced or "the customer's previous one"
        self.store.add_conversation(contact.id, conversation_id, self.clock(), active_at)
        log.info("freshchat_conversation_opened", contact=contact.zalo_user_id, conversation=conversation_id)
        if follows:
            text = notes.follows_note(follows)
            self.store.insert_rows(
                contact.id,
                [notes.note_row(f"follows:{conversation_id}", text, conversation_id, "", self.clock())],
                self.clock(),
            )
            log.info("freshchat_conversation_after_resolve", contact=contact.zalo_user_id, previous=follows)
        if refused_route:
            note = notes.note_row(f"route:{conversation_id}", refused_route, conversation_id, "", self.clock())
            self.store.insert_rows(contact.id, [note], self.clock())
        if replaced:
            note = notes.note_row(
                f"recreated:{conversation_id}", notes.recreated_note(replaced), conversation_id, "", self.clock()
            )
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

    def _route_refused(self, to: routing.Destination, exc: PermanentError) -> str:
        """Record a route FreshChat refused; returns the note for the conversation opened instead."""
        route = self.routes[to.route - 1]
        if to.route not in self.store.route_problems():
            log.warning("route_refused", route=to.route, channel=route.channel_id, group=route.group_id, error=str(exc))
        why = f"FreshChat refused a conversation in {self._route_where(to.route)}: {exc}"
        self.wrong_routes[to.route] = why  # skipped until the next check of the routes
        self.store.set_route_problems({to.route: why}, self.clock(), add=True)
        return self._route_note(to.route, str(exc))

    def _route_note(self, number: int, why: str) -> str:
        return notes.route_refused_note(number, self._route_where(number), render.cut_on_word(why, 300))

    def _route_where(self, number: int) -> str:
        route = self.routes[number - 1]
        return f"channel {route.channel_id}" + (f", group {route.group_id}" if route.group_id else "")

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


class Post:
    """One row's post to FreshChat: it sends as planned, looks where an earlier attempt would have posted,
    and says what a failure means."""

    def __init__(self, writer: FreshChatWriter, row: OutboxRow, contact: Contact):
        self.writer = writer
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
        since = (self.row.claimed_at or self.writer.clock()) - RECONCILE_SLACK
        wanted = render.fingerprint(self.message().parts)
        for conversation_id in self.candidates():
            match = self.writer.find(conversation_id, wanted, since)
            if match is not None:
                return Sent(match, conversation_id)
        return None

    def gave_up(self, failure: Failure, now: float) -> None:
        log.error("customer_message_not_delivered", row=self.row.id, error=failure.reason)


class _ContactPost(Post):
    """A post from the customer's side (their message, or OA staff's): it goes to the contact's
    conversation, and an earlier attempt is looked for there, or in any of their user's."""

    def __init__(self, writer: FreshChatWriter, row: OutboxRow, contact: Contact, content: ZaloContent):
        super().__init__(writer, row, contact)
        self.content = content

    def candidates(self) -> list[str]:
        conversation = self.writer.store.current_conversation(self.contact.id)
        if conversation is not None:
            return [conversation.fc_conversation_id]
        if not self.contact.fc_user_id:
            return []
        try:
            return self.writer.fc.user_conversations(self.contact.fc_user_id)
        except PermanentError as exc:
            if exc.status != 404:
                raise
            return []  # the user is gone, and with them anything an earlier attempt posted

    def reconcile(self) -> Sent | None:
        found = super().reconcile()
        store = self.writer.store
        if found is not None and store.current_conversation(self.contact.id) is None:
            store.add_conversation(self.contact.id, found.conversation_id or "", self.writer.clock())
        return found

    def _conversations(self) -> tuple[Conversation | None, str | None]:
        """The contact's conversation to post to, and (with none) the FreshChat id of their newest one."""
        store = self.writer.store
        current = store.current_conversation(self.contact.id)
        return current, store.previous_conversation(self.contact.id) if current is None else None


class CustomerMessagePost(_ContactPost):
    def __init__(
        self,
        writer: FreshChatWriter,
        row: OutboxRow,
        contact: Contact,
        content: ZaloContent,
        copied: list[Part] | None,
    ):
        super().__init__(writer, row, contact, content)
        self.copied = copied  # the parts with media copied into FreshChat, by an earlier attempt

    def message(self) -> FcOutgoing:
        parts = self.copied or render.zalo_parts(self.content)
        return FcOutgoing(tuple(parts), actor_type="user", actor_id=self.contact.fc_user_id or "")

    def send(self) -> Outcome:
        to = plan.plan_customer_message(*self._conversations(), self.writer.clock(), self.writer.after_resolve)
        if self.row.history:
            to = dataclasses.replace(to, reopen=False)  # an old message does not reopen a resolved conversation
        fc_user = self.writer.ensure_user(self.contact)
        if self.copied is None and media.has_media(self.content):
            copied = media.copy_to_freshchat(self.content, self.writer.zalo, self.writer.fc, self.row.attempts)
            for problem in copied.problems:
                log.warning("media_not_copied", row=self.row.id, contact=self.contact.zalo_user_id, reason=problem)
            # Saved before posting: a retry after a crash posts the same parts, so reconcile can find them.
            self.copied = copied.parts
            self.writer.store.keep_copied_parts(self.row.id, copied.parts)
        message = FcOutgoing(self.message().parts, actor_type="user", actor_id=fc_user)
        return self.writer.post(self.row, self.contact, fc_user, message, to)


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
            if self.writer.store.set_echo(action.row_id, self.row.source_id):
                return Skipped(f"echo of a reply zfsync sent (row {action.row_id}, matched by content)")
            action = plan.oa_note(current, previous)  # OA staff's message after all
        fc_user = self.writer.ensure_user(self.contact)
        return self.writer.post(self.row, self.contact, fc_user, self.message(), action)

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
        found = echo.echo_of(self.content.type, self.content.text, sends)
        return plan.EchoFacts(listing_claimed=False, own_send_open=False, match=found.row_id if found else None)


class HistoryMarkerPost(_ContactPost):
    """The private note that opens a customer's imported history (`zfsync.sync.read.history`): it says that the
    messages after it are old ones, imported."""

    def message(self) -> FcOutgoing:
        return FcOutgoing((TextPart(self.row.payload["text"]),), actor_type="bot", message_type="private")

    def send(self) -> Outcome:
        fc_user = self.writer.ensure_user(self.contact)
        return self.writer.post(self.row, self.contact, fc_user, self.message(), plan.oa_note(*self._conversations()))


class AgentNotePost(Post):
    """A note to the agent (a reply that failed), in the conversation the reply came from."""

    def __init__(self, writer: FreshChatWriter, row: OutboxRow, contact: Contact):
        super().__init__(writer, row, contact)
        # It goes where the failed reply came from, whatever the contact's conversation is now.
        self.note = outbound.note_of(row.payload)

    def message(self) -> FcOutgoing:
        note = self.note
        return FcOutgoing((TextPart(note.text),), note.actor_type, note.actor_id, "private")

    def send(self) -> Outcome:
        level = self.note.level
        if not notes.shown(level, self.writer.agent_notes):
            # The failure itself stays where it is (zfsync failed, the metrics, status): only the note is not posted.
            log.info("agent_note_withheld", row=self.row.id, level=level, setting=self.writer.agent_notes)
            return Skipped(f"sync.agent_notes = {self.writer.agent_notes}")
        to = self.note.conversation_id
        posted = self.writer.fc.post_message(to, self.contact.fc_user_id or "", self.message())
        return Sent(posted, to)

    def candidates(self) -> list[str]:
        return [self.note.conversation_id]

    def gave_up(self, failure: Failure, now: float) -> None:
        log.error(
            "agent_note_not_delivered", row=self.row.id, conversation=self.row.conversation_id, error=failure.reason
        )
