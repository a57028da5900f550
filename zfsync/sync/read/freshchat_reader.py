"""Read FreshChat: find agents' new replies in each conversation due for a poll, and queue them for Zalo.

Message pages are newest first; we walk ``link.href`` until the conversation's cursor (the newest message
read last time) and then handle what is new oldest first. Only agents' ``normal`` messages go to the
customer (bots' too when configured); private notes never do, and the customer-side messages are our own
posts. A resolve (a system message flagged ``isResolved``) queues the resolve notice once. What a page
means is `zfsync.sync.decide.replies`'s to decide; this module reads pages and records the plan.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from zfsync.domain import RESOLVED, Conversation, FcMessage
from zfsync.domain.errors import AuthError, NoRoom, PermanentError, RateLimited, RemoteError, TransientError
from zfsync.sides.priority import Priority, patience
from zfsync.sync.decide import pages
from zfsync.sync.decide.replies import Known, Rules, plan_page, signature_line
from zfsync.sync.decide.schedule import HOT_FOR, Intervals, next_poll_at
from zfsync.sync.ports import FreshChatSide
from zfsync.sync.seams import ReaderStore
from zfsync.sync.write.delivery import backoff

log = structlog.get_logger("zfsync.sync")

MAX_PAGES = 1000  # 50,000 messages: a read back that far means the position message is gone
TIME_SLACK = 600.0  # seconds; how much older than the position a message may be and still be read
PAGE_PATIENCE = 5.0  # seconds a page read waits for room in the quota before the poll stops until next tick


AGENT_FRESH = 86_400.0  # seconds an agent's name is kept before it is asked again


class Signatures:
    """Each agent's signature line (``sync.agent_signature``), from their name in FreshChat: asked once,
    and again a day later (a renamed agent signs with the new name by the next day)."""

    def __init__(self, freshchat: FreshChatSide, template: str, clock: Callable[[], float]):
        self.fc = freshchat
        self.template = template
        self.clock = clock
        self._names: dict[str, tuple[str, float]] = {}  # agent id -> (line, when asked)

    def line(self, agent_id: str) -> str:
        known = self._names.get(agent_id)
        if known is not None and self.clock() - known[1] < AGENT_FRESH:
            return known[0]
        try:
            agent = self.fc.agent(agent_id)
            line = signature_line(self.template, agent.first_name, agent.last_name)
        except PermanentError as exc:  # not an agent FreshChat knows (deleted): the reply goes unsigned
            log.info("agent_unknown", agent=agent_id, error=str(exc))
            line = ""
        except TransientError:
            if known is not None:
                return known[0]  # a name a day old beats no name; asked again next time
            raise  # the page is read again later, signed
        self._names[agent_id] = (line, self.clock())
        return line


class FreshChatReader:
    def __init__(
        self,
        freshchat: FreshChatSide,
        store: ReaderStore,
        clock: Callable[[], float],
        intervals: Intervals,
        rules: Rules,
        signatures: Signatures | None = None,
    ):
        self.signatures = signatures  # None: sync.agent_signature is off
        self.fc = freshchat
        self.store = store
        self.clock = clock
        self.intervals = intervals
        self.rules = rules
        self._failures: dict[int, int] = {}  # conversation -> reads failed in a row

    def poll_due(self) -> int:
        """Poll the most overdue conversations FreshChat's budget allows now (after the sends, which go
        first); returns how many rows were queued. A page that finds no room within `PAGE_PATIENCE` ends
        the poll: its conversation stays due, read from the same position next time, and the job is free
        (a poll that waited out a minute's window would look hung)."""
        now = self.clock()
        allowed = self.fc.quota.available(Priority.FEED)
        queued = 0
        trouble: TransientError | None = None
        for conversation in self.store.conversations_due(now, limit=allowed, active_since=now - HOT_FOR):
            try:
                with patience(PAGE_PATIENCE):
                    queued += self.poll(conversation)
            except NoRoom:
                log.info("freshchat_poll_deferred", conversation=conversation.fc_conversation_id)
                break
            except (RateLimited, AuthError):
                raise  # the whole side's trouble: the cycle records it
            except RemoteError as exc:
                self._isolate(conversation, exc)
                if isinstance(exc, TransientError):
                    trouble = trouble or exc
        if trouble is not None:
            # Every other conversation was read; the trouble still shows in `zfsync status`.
            raise trouble
        return queued

    def _isolate(self, conversation: Conversation, exc: RemoteError) -> None:
        """One conversation that cannot be read stops only itself: a deleted one is forgotten (the
        customer's next message opens a new one), any other is backed off on its own clock."""
        fc_id = conversation.fc_conversation_id
        if isinstance(exc, PermanentError) and exc.status == 404:
            self.store.forget_conversation(conversation.id)
            log.warning("freshchat_conversation_gone", conversation=fc_id, error=str(exc))
            return
        failures = self._failures.get(conversation.id, 0) + 1
        self._failures[conversation.id] = failures
        delay = backoff(failures)
        self.store.set_next_poll(conversation.id, self.clock() + delay)
        log.warning("freshchat_conversation_unreadable", conversation=fc_id, retry_in=round(delay), error=str(exc))

    def poll(self, conversation: Conversation) -> int:
        new = self._unread(conversation)
        self._failures.pop(conversation.id, None)
        now = self.clock()
        plan = plan_page(new, now, self.rules, self._known(new, conversation))
        if plan.waiting:
            log.info("freshchat_attachment_pending", conversation=conversation.fc_conversation_id)
        contact = self.store.contact_by_id(conversation.contact_id)
        activity_at = now if plan.agent_activity else None
        last_activity = activity_at or conversation.last_activity_at
        read = plan.read
        cursor = (read[-1].id, read[-1].created_time.timestamp()) if read else None
        # A group chat has no 7-day window: a reply reaches it however long its members were quiet.
        inbound_s = 0.0 if contact.is_group else contact.last_inbound_ms / 1000
        next_poll = next_poll_at(now, last_activity, inbound_s, self.intervals)
        if len(read) < len(new):
            next_poll = min(next_poll, now + self.intervals.hot)
        inserted = self.store.record_conversation_read(
            conversation.id,
            contact.id,
            plan.rows,
            cursor,
            next_poll,
            activity_at,
            plan.resolved,
            now,
            plan.answered_at,
            plan.resolved_at,
        )
        if inserted:
            log.info("freshchat_replies_queued", conversation=conversation.fc_conversation_id, count=inserted)
        return inserted

    def _known(self, new: list[FcMessage], conversation: Conversation) -> Known:
        """What the planner needs looked up: the signature of each agent who replied, the Zalo message
        behind each quote, and (for a resolve, with a rating template set) whether agents replied here."""
        replies = [m for m in new if m.actor_type == "agent" and m.message_type == "normal" and not m.event]
        quoted = {m.in_reply_to for m in replies if m.in_reply_to}
        quotes = self.store.zalo_ids_of_posts(quoted) if quoted else {}
        signatures = {m.actor_id: self.signatures.line(m.actor_id) for m in replies} if self.signatures else {}
        resolve = self.rules.rating_template and any(m.event == RESOLVED for m in new)
        replied = bool(resolve) and self.store.agent_replied(conversation.contact_id, conversation.fc_conversation_id)
        return Known(signatures, quotes, replied)

    def _unread(self, conversation: Conversation) -> list[FcMessage]:
        """The messages after the conversation's position, oldest first.

        Pages are walked newest first until the message at the position. Time is only a fallback for a
        position message that vanished: a message a little older than it (clocks differ) is still read,
        and deduplicated by id when queued.
        """
        floor = conversation.cursor_time - TIME_SLACK if conversation.cursor_time else None

        def at_position(message: FcMessage) -> bool:
            return message.id == conversation.cursor_id or (
                floor is not None and message.created_time.timestamp() < floor
            )

        read = pages.walk(
            self.fc.message_pages(conversation.fc_conversation_id), pages.from_first(at_position), MAX_PAGES
        )
        if read.end == pages.CAPPED:
            log.error(
                "freshchat_read_back_limit", conversation=conversation.fc_conversation_id, messages=len(read.items)
            )
        return read.items[::-1]
