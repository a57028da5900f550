"""A customer who writes again mends what made some replies fail (the 7-day window, the follow, the free
quota): those go once more, before the agents' new ones (they are older), and the agent is told
(``sync.retry_when_customer_returns``; the choice is `zfsync.sync.decide.retries`')."""

from __future__ import annotations

from typing import Protocol

import structlog

from zfsync.domain import Contact, FailedReply, NewRow
from zfsync.sync.decide import notes, retries

log = structlog.get_logger("zfsync.sync")


class ReturnRecord(Protocol):
    """What a retry on the customer's return reads and writes."""

    def failed_replies(self, contact_id: int) -> list[FailedReply]: ...

    def retry_replies(self, row_ids: list[int], *, on_return: bool = False) -> int: ...

    def insert_rows(self, contact_id: int, rows: list[NewRow], now: float) -> int: ...


def retry_on_return(store: ReturnRecord, contact: Contact, now: float) -> None:
    """The customer wrote again: the replies that failed for what that mends (the window, the follow,
    the quota) go once more, before the agents' new ones (they are older), with a note saying so."""
    failed = store.failed_replies(contact.id)
    chosen = retries.on_return(failed)
    if not chosen:
        return
    store.retry_replies(chosen, on_return=True)
    by_id = {f.row_id: f for f in failed}
    for conversation_id in sorted({by_id[i].conversation_id for i in chosen if by_id[i].conversation_id}):
        count = sum(1 for i in chosen if by_id[i].conversation_id == conversation_id)
        note = notes.note_row(
            f"retried:{conversation_id}:{min(chosen)}:{int(now)}",
            notes.retried_on_return_note(count),
            conversation_id,
            "",
            now,
            level=notes.FAILURE,
        )
        store.insert_rows(contact.id, [note], now)
    log.info("failed_replies_retried_on_return", contact=contact.zalo_user_id, count=len(chosen))
