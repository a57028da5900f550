"""The daemon's own steps (`zfsync.runtime.steps`) and lane turns, run one after another in the caller's
thread: how tests and benchmarks drive an engine, on a fake clock, with no thread to wait for. The
engine's lanes must run without threads (``build_engine(..., lane_threads=False)``), so a turn returns
once what it started is delivered."""

from __future__ import annotations

from zfsync.config import Settings
from zfsync.domain import F2Z, Z2F
from zfsync.runtime.daemon import watch_of
from zfsync.runtime.steps import Steps
from zfsync.store import Store
from zfsync.sync.engine import Engine

MAX_TURNS = 500  # a delivery is bounded; the next one carries on


class Drive:
    def __init__(self, settings: Settings, store: Store, engine: Engine):
        assert not engine.lane_threads, "a driven engine's lanes run in the driver's thread"
        self.engine = engine
        self.steps = Steps(settings, store, engine, watch_of(settings))
        self.steps.zalo_interval = engine.zalo_interval()

    def zalo(self) -> None:
        """What the daemon's Zalo side does in a round: poll, read on an import, deliver to FreshChat,
        refresh a few profiles (and ask whether the customers left waiting were assigned)."""
        self.steps.zalo()
        self.steps.history()
        self.deliver(Z2F)
        self.steps.profiles()

    def freshchat(self) -> None:
        """Poll the due FreshChat conversations, then deliver the agents' replies to Zalo."""
        self.steps.freshchat()
        self.deliver(F2Z)

    def deliver(self, direction: str) -> int:
        """The lane's turns until one starts nothing; returns how many messages were sent."""
        lane = self.engine.lanes[direction]
        before = lane.sent
        for _ in range(MAX_TURNS):
            if not lane.turn().begun:
                break
        return lane.sent - before
