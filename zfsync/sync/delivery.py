"""The outbox loop and the one retry policy, shared by both directions.

A row is claimed (``sending``) before its send. If a row is found already ``sending``, the previous attempt
ended without a recorded outcome (a crash, or a timeout after the request left), so the writer first looks
for the message on the destination and adopts it instead of sending twice.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

import structlog

from zfsync.domain import OutboxRow, Status
from zfsync.errors import AuthError, PermanentError, RateLimited, RemoteError, TransientError
from zfsync.store import Store

log = structlog.get_logger("zfsync.sync")

BASE_DELAY = 2.0
MAX_DELAY = 600.0
AUTH_PAUSE = 30.0  # seconds before a side whose credentials were refused is tried again


class Skip(Exception):
    """The row must not be sent after all (for example the echo of our own send); the reason is logged."""


class Hold(Exception):
    """The row cannot go yet for a reason that is no failure; it is offered again after ``delay`` seconds."""

    def __init__(self, reason: str, delay: float):
        super().__init__(reason)
        self.delay = delay


Sent = tuple[str, str | None]  # the destination message id, and the FreshChat conversation id (None to Zalo)


class Action(Protocol):
    """One row's delivery, as the writer's planner decided it."""

    def send(self) -> Sent:
        """Deliver the row (or raise `Skip` or `Hold`)."""
        ...

    def reconcile(self) -> Sent | None:
        """Find the row's message on the destination if an earlier attempt delivered it."""
        ...

    def gave_up(self, error: RemoteError, now: float) -> None:
        """React to the row ending ``failed`` (e.g. tell the agent)."""
        ...


class Writer(Protocol):
    def action(self, row: OutboxRow) -> Action:
        """What the row is to become on the destination; no request is made yet."""
        ...

    def heavy(self, row: OutboxRow) -> bool:
        """Whether delivering the row copies an attachment (a download and an upload: maybe slow)."""
        ...


def backoff(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential with full jitter on the upper half: 2 s, 4 s, 8 s ... capped at 10 minutes."""
    delay = min(MAX_DELAY, BASE_DELAY * (2 ** max(0, failures - 1)))
    return delay / 2 + rng() * delay / 2


class Deliverer:
    """One row's delivery and the retry policy; `zfsync.sync.lanes` decides which rows go when."""

    def __init__(self, store: Store, clock: Callable[[], float], max_attempts: int):
        self.store = store
        self.clock = clock
        self.max_attempts = max_attempts

    def deliver(self, direction: str, row: OutboxRow, writer: Writer) -> int:
        """Claim, reconcile or send, and record the outcome; returns 1 if a message was sent.

        `AuthError` and `RateLimited` are re-raised after the row is put back (they concern the whole
        side, whose health the caller records); every other failure concerns this row alone.
        """
        now = self.clock()
        outcome_unknown = row.status == Status.SENDING
        if not self.store.claim(row, now):
            return 0
        action = writer.action(row)
        try:
            found = action.reconcile() if outcome_unknown else None
            if found is not None:
                log.info("delivery_reconciled", direction=direction, row=row.id, dest_id=found[0])
                self.store.finish_sent(row.id, found[0], self.clock(), found[1])
                return 0
            dest_id, conversation_id = action.send()
        except Skip as skip:
            self.store.skip(row.id, str(skip), self.clock())
            log.info("delivery_skipped", direction=direction, row=row.id, reason=str(skip))
            return 0
        except Hold as hold:
            self.store.postpone(
                row.id, self.clock() + hold.delay, str(hold), "", outcome_unknown=outcome_unknown, count_attempt=False
            )
            return 0
        except RateLimited as exc:
            self.store.postpone(
                row.id, self.clock() + exc.retry_after, str(exc), _code(exc), outcome_unknown=False, count_attempt=False
            )
            raise
        except AuthError as exc:
            self.store.postpone(
                row.id,
                self.clock() + AUTH_PAUSE,
                str(exc),
                _code(exc),
                outcome_unknown=outcome_unknown,
                count_attempt=False,
            )
            raise
        except TransientError as exc:
            self._transient(direction, row, action, exc)
            return 0
        except PermanentError as exc:
            self.store.fail(row.id, exc.reason, _code(exc), self.clock())
            log.warning("delivery_failed", direction=direction, row=row.id, error=str(exc), code=_code(exc))
            action.gave_up(exc, self.clock())
            return 0
        self.store.finish_sent(row.id, dest_id, self.clock(), conversation_id)
        log.info(
            "message_delivered",
            direction=direction,
            row=row.id,
            kind=row.kind,
            dest_id=dest_id,
            latency=round(self.clock() - row.source_time, 3),
        )
        return 1

    def _transient(self, direction: str, row: OutboxRow, action: Action, exc: TransientError) -> None:
        failures = row.attempts + 1
        if failures >= self.max_attempts:
            self.store.fail(row.id, exc.reason, _code(exc), self.clock())
            log.warning("delivery_gave_up", direction=direction, row=row.id, attempts=failures, error=str(exc))
            action.gave_up(exc, self.clock())
            return
        # Any transient failure during a send may hide a delivery (the request left, the answer did not
        # come back), so the row stays `sending` and is reconciled before the next send.
        delay = backoff(failures)
        self.store.postpone(row.id, self.clock() + delay, str(exc), _code(exc), outcome_unknown=True)
        log.info(
            "delivery_retry", direction=direction, row=row.id, attempts=failures, delay=round(delay, 1), error=str(exc)
        )


def _code(exc: RemoteError) -> str:
    return "" if exc.code is None else str(exc.code)
