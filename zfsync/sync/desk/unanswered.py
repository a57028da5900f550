"""Customers left waiting: a customer message no agent answered within ``sync.unanswered_minutes``.

An agent's reply or a resolve read from the conversation answers it (`zfsync.sync.read.freshchat_reader`);
an assignment does too, but FreshChat writes no message for it, so once a minute the customers waiting
past the threshold have their conversation asked for its assignee, each at most every five minutes
(a request per waiting customer, never per message). `zfsync status` and the metrics count them.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from zfsync.domain.errors import PermanentError, RemoteError, TransientError
from zfsync.sides.priority import Priority, purpose
from zfsync.sync.ports import FreshChatSide
from zfsync.sync.seams import Contacts

log = structlog.get_logger("zfsync.sync")

RUN_EVERY = 60.0
ASK_EVERY = 300.0  # seconds between two questions about one waiting customer's assignee
PER_RUN = 20
REPLY_WINDOW_MS = 7 * 86_400_000  # older than Zalo's window, a customer can no longer be answered


def waiting_range(now: float, after_minutes: float) -> tuple[int, int]:
    """The last messages that wait too long: written in ``(after, before]`` (ms)."""
    now_ms = int(now * 1000)
    return now_ms - int(after_minutes * 60_000), now_ms - REPLY_WINDOW_MS


class Unanswered:
    def __init__(
        self,
        freshchat: FreshChatSide,
        store: Contacts,
        clock: Callable[[], float],
        after_minutes: float,
        monotonic: Callable[[], float] | None = None,
    ):
        self.fc = freshchat
        self.store = store
        self.clock = clock
        self.after_minutes = after_minutes
        self.monotonic = monotonic or clock
        self._ran_at = float("-inf")

    def run_due(self) -> int:
        """Ask FreshChat about the customers waiting too long (once a minute); returns how many turned
        out assigned."""
        if not self.after_minutes or self.monotonic() - self._ran_at < RUN_EVERY:
            return 0
        self._ran_at = self.monotonic()
        now = self.clock()
        before, after = waiting_range(now, self.after_minutes)
        assigned = 0
        for contact in self.store.contacts_unanswered(before, after, now - ASK_EVERY, PER_RUN):
            conversation = self.store.current_conversation(contact.id)
            if conversation is None or not self.fc.quota.available(Priority.PROFILE):
                continue
            try:
                with purpose(Priority.PROFILE):
                    assignee = self.fc.conversation_assignee(conversation.fc_conversation_id)
            except (TransientError, PermanentError) as exc:
                log.info("assignee_unknown", conversation=conversation.fc_conversation_id, error=str(exc))
                continue
            except RemoteError as exc:  # auth or rate limits: the polls record and report them
                log.info("assignee_unknown", conversation=conversation.fc_conversation_id, error=str(exc))
                return assigned
            self.store.set_assign_checked(contact.id, now)
            if assignee:
                self.store.mark_answered(contact.id, contact.last_inbound_ms)
                assigned += 1
        return assigned
