"""The outbox loop's one row, and the one retry policy, shared by both directions.

A row is claimed (``sending``) before its send. If a row is found already ``sending``, the previous attempt
ended without a recorded outcome (a crash, or a timeout after the request left), so the writer first looks
for the message on the destination and adopts it instead of sending twice.

An action says what became of its row as a value (`Sent`, `Skipped`, `Held`, `Refused`); only the sides'
failures arrive as exceptions (`zfsync.domain.errors.RemoteError`), classified by the clients.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from zfsync.domain import OutboxRow, Status
from zfsync.domain.errors import AuthError, NoRoom, PermanentError, RateLimited, RemoteError, TransientError
from zfsync.sync.seams import Outbox

log = structlog.get_logger("zfsync.sync")

BASE_DELAY = 2.0
MAX_DELAY = 600.0
AUTH_PAUSE = 30.0  # seconds before a side whose credentials were refused is tried again
NO_ROOM_RETRY = 2.0  # seconds before a send that found no room in its budget in time (imported history) tries again


@dataclass(frozen=True)
class Sent:
    dest_id: str  # the message's id on the destination
    conversation_id: str | None = None  # the FreshChat conversation it went to (None to Zalo)


@dataclass(frozen=True)
class Skipped:
    """Not to be sent after all (the echo of our own send, say); the reason is kept with the row."""

    reason: str


@dataclass(frozen=True)
class Held:
    """Not yet, for a reason that is no failure: offered again after ``delay`` seconds."""

    reason: str
    delay: float


@dataclass(frozen=True)
class Refused:
    """zfsync itself knows the row cannot go (no request was made): it ends failed, and the agent is told."""

    reason: str
    code: str
    advice: str = ""


Outcome = Sent | Skipped | Held | Refused


@dataclass(frozen=True)
class Failure:
    """Why a row ended failed, for the agent's note."""

    reason: str
    code: str
    advice: str
    final: bool  # refused for good (by the side, or by zfsync), not given up after transient failures
    attempts: int


class Action(Protocol):
    """One row's delivery, as the writer's planner decided it."""

    def send(self) -> Outcome:
        """Deliver the row; raises the `RemoteError` family for what a side refused."""
        ...

    def reconcile(self) -> Sent | None:
        """Find the row's message on the destination if an earlier attempt delivered it."""
        ...

    def gave_up(self, failure: Failure, now: float) -> None:
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
    """One row's delivery and the retry policy; `zfsync.sync.write.lanes` decides which rows go when."""

    def __init__(self, store: Outbox, clock: Callable[[], float], max_attempts: int):
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
                log.info("delivery_reconciled", direction=direction, row=row.id, dest_id=found.dest_id)
                self.store.finish_sent(row.id, found.dest_id, self.clock(), found.conversation_id)
                return 0
            outcome = action.send()
        except NoRoom:
            # Sent with limited patience (imported history): the request was not made; the row goes back in
            # line, as it stood, for later.
            self.store.postpone(
                row.id,
                self.clock() + NO_ROOM_RETRY,
                "waiting for room in the request budget (imported history goes after everything else)",
                "no_room",
                outcome_unknown=outcome_unknown,
                count_attempt=False,
            )
            return 0
        except RateLimited as exc:
            self.store.postpone(
                row.id, self.clock() + exc.retry_after, str(exc), _code(exc), outcome_unknown=False, count_attempt=False
            )
            raise
        except AuthError as exc:
            later = self.clock() + AUTH_PAUSE
            self.store.postpone(
                row.id, later, str(exc), _code(exc), outcome_unknown=outcome_unknown, count_attempt=False
            )
            raise
        except TransientError as exc:
            self._transient(direction, row, action, exc)
            return 0
        except PermanentError as exc:
            self._failed(direction, row, action, Failure(exc.reason, _code(exc), exc.advice, True, row.attempts + 1))
            return 0
        return self._record(direction, row, action, outcome, outcome_unknown)

    def _record(self, direction: str, row: OutboxRow, action: Action, outcome: Outcome, unknown: bool) -> int:
        if isinstance(outcome, Skipped):
            self.store.skip(row.id, outcome.reason, self.clock())
            log.info("delivery_skipped", direction=direction, row=row.id, reason=outcome.reason)
            return 0
        if isinstance(outcome, Held):
            later = self.clock() + outcome.delay
            self.store.postpone(row.id, later, outcome.reason, "", outcome_unknown=unknown, count_attempt=False)
            return 0
        if isinstance(outcome, Refused):
            failure = Failure(outcome.reason, outcome.code, outcome.advice, True, row.attempts + 1)
            self._failed(direction, row, action, failure)
            return 0
        self.store.finish_sent(row.id, outcome.dest_id, self.clock(), outcome.conversation_id)
        delay = {"history": True} if row.history else {"latency": round(self.clock() - row.source_time, 3)}
        log.info("message_delivered", direction=direction, row=row.id, kind=row.kind, dest_id=outcome.dest_id, **delay)
        return 1

    def _failed(self, direction: str, row: OutboxRow, action: Action, failure: Failure) -> None:
        self.store.fail(row.id, failure.reason, failure.code, self.clock())
        log.warning("delivery_failed", direction=direction, row=row.id, error=failure.reason, code=failure.code)
        action.gave_up(failure, self.clock())

    def _transient(self, direction: str, row: OutboxRow, action: Action, exc: TransientError) -> None:
        failures = row.attempts + 1
        if failures >= self.max_attempts:
            self.store.fail(row.id, exc.reason, _code(exc), self.clock())
            log.warning("delivery_gave_up", direction=direction, row=row.id, attempts=failures, error=str(exc))
            action.gave_up(Failure(exc.reason, _code(exc), exc.advice, False, failures), self.clock())
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
