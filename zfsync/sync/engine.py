"""The steps the daemon runs, and the side health they record.

`poll_zalo` reads Zalo and queues customer messages; `poll_freshchat` reads the due FreshChat
conversations and queues agent replies; each direction's `Lane` sends what is queued. Polls and
deliveries run as separate jobs, so a slow download or upload never holds back reading either side (and the
watchdog, which watches the polls, never restarts the service for a delivery in progress).
Each direction's deliveries run in a `Lane`: the daemon serves both lanes continuously, and a poll that
queued rows wakes them at once. Tests and benchmarks run the daemon's own steps
(`zfsync.runtime.steps`), one after another (devtools/drive.py).
Each step does a bounded amount of work and never raises for a remote failure: it records the side's
state for `zfsync status` and returns.

In-memory pacing (the request budgets, pauses) runs on a monotonic clock, so a step of the wall clock can
neither stop nor flood anything; times kept in the store are wall times, clamped by `recover_schedule`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

import structlog

from zfsync.domain import F2Z, Z2F, HistoryImport, SideHealth
from zfsync.domain.errors import AuthError, InvalidResponse, PermanentError, RateLimited, RemoteError
from zfsync.sync.decide.schedule import SWEEP_INTERVAL
from zfsync.sync.desk.group_packages import GroupPackages
from zfsync.sync.desk.profiles import ProfileRefresher
from zfsync.sync.desk.ratings import Ratings
from zfsync.sync.desk.reminders import Reminders
from zfsync.sync.desk.unanswered import Unanswered
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.read.freshchat_reader import FreshChatReader
from zfsync.sync.read.group_reader import GroupReader
from zfsync.sync.read.history import HistoryImporter
from zfsync.sync.read.zalo_reader import ZaloReader
from zfsync.sync.seams import EngineStore
from zfsync.sync.write.delivery import AUTH_PAUSE, MAX_DELAY, Deliverer
from zfsync.sync.write.freshchat_writer import FreshChatWriter
from zfsync.sync.write.lanes import RECHECK, Lane, Slots
from zfsync.sync.write.zalo_writer import ZaloWriter

log = structlog.get_logger("zfsync.sync")

OK_REFRESH = 30.0  # seconds; `zfsync status` shows the last good poll to this precision

OK, TRANSIENT_ERROR, RATE_LIMITED, BAD_CREDENTIALS, PERMANENT_ERROR = (
    SideHealth.OK,
    SideHealth.TRANSIENT_ERROR,
    SideHealth.RATE_LIMITED,
    SideHealth.BAD_CREDENTIALS,
    SideHealth.PERMANENT_ERROR,
)


FEED_SHARE = 0.3  # of Zalo's quota, the feed polls may take at most; the rest is for sends and catch-up


def zalo_interval(configured: float, limit: int) -> float:
    """The configured poll interval, stretched so that polling takes at most `FEED_SHARE` of ``limit``."""
    return max(configured, round(60.0 / (limit * FEED_SHARE), 1))


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


@dataclass(frozen=True)
class Parts:
    """What the engine runs, built by the composition root (`zfsync.runtime.app`)."""

    zalo_reader: ZaloReader
    freshchat_reader: FreshChatReader
    freshchat_writer: FreshChatWriter
    zalo_writer: ZaloWriter
    deliverer: Deliverer
    profiles: ProfileRefresher
    reminders: Reminders
    unanswered: Unanswered
    history: HistoryImporter
    ratings: Ratings
    groups: GroupReader | None = None  # sync.groups: the OA's group chats
    group_packages: GroupPackages | None = None


class Engine:
    def __init__(
        self,
        store: EngineStore,
        zalo: ZaloSide,
        freshchat: FreshChatSide,
        parts: Parts,
        zalo_poll_interval: float,
        clock: Callable[[], float],
        monotonic: Callable[[], float] | None = None,
        on_lane_crash: Callable[[str, Exception], float] | None = None,
        lane_threads: bool = True,
        slots: Slots | None = None,
    ):
        """``on_lane_crash(direction, error)``: a send died of an error nobody classified (a bug, a failing
        store); returns the seconds its lane rests (default: log it, rest `CRASH_PAUSE`). ``lane_threads``:
        the lanes send on worker threads (the daemon), or in the thread that takes their turn (tests)."""
        self.store = store
        self.clock = clock
        # Tests pass one fake clock for both; the daemon passes time.time and time.monotonic.
        self.monotonic = monotonic or clock
        self.freshchat = freshchat
        self.zalo = zalo
        self.zalo_poll_interval = zalo_poll_interval
        self._contacted_freshchat = False
        self.zalo_reader = parts.zalo_reader
        self.freshchat_reader = parts.freshchat_reader
        self.freshchat_writer, self.zalo_writer = parts.freshchat_writer, parts.zalo_writer
        self.deliverer = parts.deliverer
        self.profiles, self.reminders = parts.profiles, parts.reminders
        self.unanswered, self.ratings = parts.unanswered, parts.ratings
        self.history = parts.history
        groups, packages = parts.groups, parts.group_packages  # the group chats' own refusals stop only them
        self.poll_groups, self.check_packages = groups.poll if groups else int, packages.run_due if packages else bool
        self._paused_until: dict[str, float] = {}  # side -> until when it is left alone (bad credentials)
        self._ok_written: dict[str, float] = {}  # side -> when its OK was last written
        self._reported: dict[str, str] = {}  # side -> last state logged, so a lasting outage logs once
        # Set when rows were queued or sent: the daemon's FreshChat poll waits on it (a customer's message
        # makes their conversation due, so it is polled for an answer at once).
        self.activity = threading.Event()
        self.on_lane_crash = on_lane_crash
        self.lane_threads, self.slots = lane_threads, slots  # slots: sends in flight shared with other desks
        self.lanes: dict[str, Lane] = {
            Z2F: self._lane(Z2F, self.freshchat_writer, "freshchat"),
            F2Z: self._lane(F2Z, self.zalo_writer, "zalo"),
        }

    def _lane(self, direction: str, writer: FreshChatWriter | ZaloWriter, side: str) -> Lane:
        crashed = self.on_lane_crash
        return Lane(
            direction,
            self.store,
            self.deliverer,
            writer,
            self.clock,
            on_trouble=self._trouble,
            paused_for=lambda: self._paused_until.get(side, 0.0) - self.monotonic(),
            monotonic=self.monotonic,
            on_done=self._sent_one,
            on_crash=functools.partial(crashed, direction) if crashed is not None else None,
            threads=self.lane_threads,
            slots=self.slots,
        )

    def _sent_one(self) -> None:
        # A send may queue a note for the other direction (a failed reply) or open a conversation to poll.
        self.lanes[Z2F].wake()
        self.lanes[F2Z].wake()
        self.activity.set()

    def ask_assignees(self) -> None:
        """Whether the customers left waiting were assigned meanwhile (`Unanswered` paces itself)."""
        if self._paused_until.get("freshchat", 0.0) > self.monotonic():
            return
        self.unanswered.run_due()

    def poll_zalo(self) -> CycleResult:
        result = CycleResult(ok=True)
        result.queued = self._guard("zalo", lambda: self.zalo_reader.poll() + self.poll_groups(), result)
        if result.queued:
            self._queued()
        return result

    def import_history(self) -> int:
        """Read the next few customers of a history import asked for, if any; returns the rows queued."""
        if self._paused_until.get("zalo", 0.0) > self.monotonic():
            return 0
        try:
            queued = self.history.step()
        except RemoteError as exc:  # the import carries on where it got to, at the next step
            if isinstance(exc, (RateLimited, AuthError)):
                self._trouble(exc)
            log.info("history_import_paused", error=str(exc))
            return 0
        if queued:
            self._queued()
        return queued

    def history_state(self) -> HistoryImport | None:
        """The history import still reading customers, as far as it got (None: none)."""
        return self.store.history_import()

    def poll_freshchat(self) -> CycleResult:
        result = CycleResult(ok=True)
        result.queued = self._guard("freshchat", self._read_freshchat, result)
        if result.queued:
            self._queued()
        return result

    def _queued(self) -> None:
        """Rows were queued: both lanes look at what is due now (a reply may queue a note either way)."""
        for lane in self.lanes.values():
            lane.wake()
        self.activity.set()

    def _read_freshchat(self) -> int:
        if not self._contacted_freshchat:
            # Until something was asked, FreshChat's state is unknown: one cheap call settles it (and shows
            # a wrong key at once, not when the first customer writes).
            self.freshchat.account_configuration()
            self._contacted_freshchat = True
        self.freshchat_writer.check_routes_due()  # a wrong route is skipped and shown, never followed
        return self.freshchat_reader.poll_due()

    def refresh_profiles(self) -> None:
        """Refresh a few day-old profiles, when Zalo is not left alone (`ProfileRefresher` paces itself)."""
        if self._paused_until.get("zalo", 0.0) > self.monotonic():
            return
        try:
            self.profiles.refresh_due()
        except RemoteError as exc:  # auth or rate limits: the next poll will record and report them
            log.info("profile_refresh_stopped", error=str(exc))
        if any([self.reminders.run_due(), self.ratings.read_due(), self.check_packages()]):  # all run, whichever queued
            self._queued()

    def freshchat_wait(self) -> float:
        """Seconds until a FreshChat conversation is due for a poll (at most `RECHECK`)."""
        due = self.store.next_poll_time()
        if due is None:
            return RECHECK
        return min(RECHECK, max(0.0, due - self.clock()))

    def close(self) -> None:
        for lane in self.lanes.values():
            lane.close(wait=False)

    def zalo_interval(self) -> float:
        """How often to poll Zalo's feed: as configured, or slower when the quota cannot carry that and
        leave the larger part to sends and catch-up."""
        return zalo_interval(self.zalo_poll_interval, self.zalo.quota.limit)

    def quotas(self) -> dict[str, dict[str, object]]:
        """Each side's budget as `zfsync status` and the metrics show it."""
        report: dict[str, dict[str, object]] = {}
        for side, quota in (("zalo", self.zalo.quota), ("freshchat", self.freshchat.quota)):
            report[side] = asdict(quota.snapshot())
        report["zalo"].update(interval=self.zalo_interval(), configured_interval=self.zalo_poll_interval)
        return report

    def recover_schedule(self) -> None:
        """After a start or a step of the wall clock, bring persisted times back within reach: a poll or
        a retry hours in the future can only come from a clock that moved back."""
        changed = self.store.clamp_schedule(self.clock(), poll_horizon=SWEEP_INTERVAL, retry_horizon=MAX_DELAY)
        self._queued()
        if any(changed):
            log.warning("schedule_recovered", conversations=changed[0], rows=changed[1])

    def _trouble(self, exc: RemoteError) -> None:
        """Record a side's trouble for `zfsync status`, and leave the side alone while it lasts."""
        state = health_state(exc)
        if state == BAD_CREDENTIALS:
            # Every call would be refused the same way until an operator acts: ask again now and then.
            self._paused_until[exc.side] = self.monotonic() + AUTH_PAUSE
        elif isinstance(exc, RateLimited):
            self._paused_until[exc.side] = self.monotonic() + exc.retry_after  # back off, never spin
        self.store.set_health(exc.side, state, self.clock(), str(exc))
        if self._reported.get(exc.side) != state:
            level = "error" if state in (BAD_CREDENTIALS, PERMANENT_ERROR) else "warning"
            getattr(log, level)("side_unhealthy", side=exc.side, state=state, error=str(exc))
            self._reported[exc.side] = state

    def _guard(self, side: str, step: Callable[[], int], result: CycleResult) -> int:
        if self._paused_until.get(side, 0.0) > self.monotonic():
            result.ok = False
            return 0
        try:
            done = step()
        except RemoteError as exc:
            self._trouble(exc)
            result.ok = False
            return 0
        stale = abs(self.monotonic() - self._ok_written.get(side, float("-inf"))) >= OK_REFRESH
        if self._reported.get(side) != OK or stale:
            # An unchanged OK is rewritten only now and then: an idle daemon should not write every tick.
            self.store.set_health(side, OK, self.clock())
            self._ok_written[side] = self.monotonic()
            if self._reported.get(side, OK) != OK:
                log.info("side_recovered", side=side)
            self._reported[side] = OK
        return done
