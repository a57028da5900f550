"""The two sync cycles the daemon runs, and the side health they record.

`zalo_cycle` reads Zalo and delivers customer messages to FreshChat; `freshchat_cycle` reads the due
FreshChat conversations and delivers agent replies to Zalo. Each does a bounded amount of work and never
raises for a remote failure: it records the side's state for `zfsync status` and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import structlog

from zfsync.config import Settings
from zfsync.domain import F2Z, Z2F
from zfsync.errors import AuthError, InvalidResponse, PermanentError, RateLimited, RemoteError
from zfsync.store import Store
from zfsync.sync.delivery import AUTH_PAUSE, Deliverer, Writer
from zfsync.sync.freshchat_reader import FreshChatReader
from zfsync.sync.freshchat_writer import FreshChatWriter
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.profiles import ProfileRefresher
from zfsync.sync.schedule import Intervals, RequestBudget
from zfsync.sync.zalo_reader import ZaloReader
from zfsync.sync.zalo_writer import ZaloWriter

log = structlog.get_logger("zfsync.sync")

OK_REFRESH = 10.0  # seconds; `zfsync status` shows the last good poll to this precision

OK = "OK"
TRANSIENT_ERROR = "TRANSIENT_ERROR"
RATE_LIMITED = "RATE_LIMITED"
BAD_CREDENTIALS = "BAD_CREDENTIALS"
PERMANENT_ERROR = "PERMANENT_ERROR"


def health_state(error: RemoteError) -> str:
    if isinstance(error, RateLimited):
        return RATE_LIMITED
    if isinstance(error, AuthError):
        return BAD_CREDENTIALS
    if isinstance(error, PermanentError) and not isinstance(error, InvalidResponse):
        return PERMANENT_ERROR
    return TRANSIENT_ERROR


@dataclass
class CycleResult:
    ok: bool  # the cycle's poll reached its side (well, or with a classified error that is not ours)
    queued: int = 0
    delivered: int = 0


class Engine:
    def __init__(
        self, settings: Settings, store: Store, zalo: ZaloSide, freshchat: FreshChatSide, clock: Callable[[], float]
    ):
        self.store = store
        self.clock = clock
        fc = settings.freshchat
        self.budget = RequestBudget(fc.requests_per_minute, clock())
        self.zalo_reader = ZaloReader(zalo, store, clock, settings.zalo.feed_page_cap)
        self.freshchat_reader = FreshChatReader(
            freshchat,
            store,
            clock,
            Intervals(fc.hot_interval, fc.warm_interval, fc.cold_interval),
            self.budget,
            settings.sync.resolve_notice,
            settings.sync.long_text,
            fc.forward_bot_messages,
        )
        self.freshchat_writer = FreshChatWriter(
            freshchat, zalo, store, clock, fc.channel_id, settings.sync.display_name, self.budget
        )
        self.zalo_writer = ZaloWriter(zalo, store, clock, freshchat.download)
        self.deliverer = Deliverer(store, clock, settings.sync.max_attempts)
        self.profiles = ProfileRefresher(zalo, freshchat, store, clock, settings.sync.display_name)
        self._paused_until: dict[str, float] = {}  # side -> until when it is left alone (bad credentials)
        self._ok_written: dict[str, float] = {}  # side -> when its OK was last written
        self._reported: dict[str, str] = {}  # side -> last state logged, so a lasting outage logs once

    def zalo_cycle(self) -> CycleResult:
        """Read Zalo, deliver customer messages to FreshChat, then refresh a few day-old profiles."""
        result = self._cycle("zalo", self.zalo_reader.poll, "freshchat", Z2F, self.freshchat_writer)
        if result.ok:
            try:
                self.profiles.refresh_due()
            except RemoteError as exc:  # auth or rate limits: the next poll will record and report them
                log.info("profile_refresh_stopped", error=str(exc))
        return result

    def freshchat_cycle(self) -> CycleResult:
        """Read the due FreshChat conversations, then deliver agent replies to Zalo."""
        return self._cycle("freshchat", self.freshchat_reader.poll_due, "zalo", F2Z, self.zalo_writer)

    def _cycle(
        self, read_side: str, read: Callable[[], int], write_side: str, direction: str, writer: Writer
    ) -> CycleResult:
        result = CycleResult(ok=True)
        result.queued = self._guard(read_side, read, result)
        if result.queued or self.store.next_due_time(direction) is not None:
            deliver = lambda: self.deliverer.run(direction, writer)  # noqa: E731
            result.delivered = self._guard(write_side, deliver, result, poll=False)
        return result

    def _guard(self, side: str, step: Callable[[], int], result: CycleResult, poll: bool = True) -> int:
        if self._paused_until.get(side, 0.0) > self.clock():
            result.ok = result.ok and not poll
            return 0
        try:
            done = step()
        except RemoteError as exc:
            state = health_state(exc)
            if state == BAD_CREDENTIALS:
                # Every call would be refused the same way until an operator acts: ask again now and then.
                self._paused_until[exc.side] = self.clock() + AUTH_PAUSE
            elif isinstance(exc, RateLimited):
                self._paused_until[exc.side] = self.clock() + exc.retry_after  # back off, never spin
            self.store.set_health(exc.side, state, self.clock(), str(exc))
            if self._reported.get(exc.side) != state:
                level = "error" if state in (BAD_CREDENTIALS, PERMANENT_ERROR) else "warning"
                getattr(log, level)("side_unhealthy", side=exc.side, state=state, error=str(exc))
                self._reported[exc.side] = state
            if poll:
                result.ok = False
            return 0
        if poll and (self._reported.get(side) != OK or self.clock() - self._ok_written.get(side, 0.0) >= OK_REFRESH):
            # An unchanged OK is rewritten only now and then: an idle daemon should not write every tick.
            self.store.set_health(side, OK, self.clock())
            self._ok_written[side] = self.clock()
            if self._reported.get(side, OK) != OK:
                log.info("side_recovered", side=side)
            self._reported[side] = OK
        return done
