"""The FreshChat poll schedule in simulated time (`scripts/bench` phase 3): the adaptive schedule next to a
naive one that polls every conversation in turn, under the same budget, with in-process simulators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.daemonbench import percentile
from devtools.drive import Drive
from devtools.scenario import seed_mapped
from zfsync.config import Settings, from_mapping
from zfsync.domain import ZaloTokens
from zfsync.runtime.app import build_clients, build_engine
from zfsync.sides.priority import Priority
from zfsync.sim.fakes import FakeClock
from zfsync.sim.freshchat import AGENT_ID, CHANNEL_ID, FreshChatSim
from zfsync.sim.inprocess import session_for
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store
from zfsync.sync.read.freshchat_reader import FreshChatReader


class NaiveReader(FreshChatReader):
    """Polls every mapped conversation in turn, as fast as the same budget allows."""

    def poll_due(self) -> int:
        now = self.clock()
        queued = 0
        allowed = self.fc.quota.available(Priority.FEED)
        for conversation in self.store.conversations_due(float("inf"), allowed, float("inf")):
            queued += self.poll(conversation)
            self.store.set_next_poll(conversation.id, now)  # to the back of the queue
        return queued


def schedule_run(mapped: int, active: int, minutes: int, naive: bool, workdir: Path) -> dict[str, Any]:
    clock = FakeClock()
    zalo, fc = ZaloSim(), FreshChatSim()
    zalo.clock = fc.clock = clock
    settings = _settings("http://zalo.sim", "http://freshchat.sim", workdir / f"s{mapped}{naive}.db")
    store = Store.open(settings.store_path)
    access, refresh = zalo.mint_tokens()
    store.save_tokens(ZaloTokens(access, refresh, 90_000), clock())
    clients = build_clients(
        settings,
        store,
        clock,
        session_for(zalo, "http://zalo.sim"),
        session_for(fc, "http://freshchat.sim"),
        sleep=clock.advance,
    )
    engine = build_engine(settings, store, clients.zalo, clients.freshchat, clock, lane_threads=False)
    if naive:
        r = engine.freshchat_reader
        engine.freshchat_reader = NaiveReader(r.fc, store, clock, r.intervals, r.rules)
    drive = Drive(settings, store, engine)
    drive.zalo()
    seed_mapped(store, zalo, fc, mapped - active, last_activity_at=clock() - 2 * 86_400)
    hot = seed_mapped(store, zalo, fc, active, last_activity_at=clock() - 2 * 86_400, start=mapped)
    for user_id in hot:
        zalo.add_customer_message(user_id, text="cần hỗ trợ")
    drive.zalo()
    fc.requests.clear()
    first_minute = 0
    written: dict[str, float] = {}
    conversations = {u: fc.latest_of(f"fcu-{u}") or "" for u in hot}  # seeded: each has one
    for second in range(minutes * 60):
        if second % 30 == 0:
            for user_id in hot:
                text = f"reply {second} {user_id}"
                fc.add_agent_message(conversations[user_id], text, actor_id=AGENT_ID)
                written[text] = clock()
        drive.freshchat()
        clock.now += 1.0
        if second == 59:
            first_minute = sum(fc.requests.values())  # spent partly from the bucket saved up at start
    sent = {s["text"]: s["time"] / 1000 for s in zalo.sent}
    latencies = [sent.get(text, clock()) - at for text, at in written.items()]
    store.close()
    return {
        "mapped": mapped,
        "active": active,
        "requests_per_minute": round((sum(fc.requests.values()) - first_minute) / (minutes - 1), 1),
        "reply_p95": round(percentile(latencies, 0.95), 1),
        "undelivered": sum(1 for text in written if text not in sent),
    }


def _settings(zalo_url: str, fc_url: str, store_path: Path) -> Settings:
    raw = {
        # The in-process simulators answer at made-up http hosts: no secret leaves the process.
        "zalo": {"app_id": "sim-app", "api_url": zalo_url, "oauth_url": zalo_url, "allow_insecure_http": True},
        "freshchat": {"api_url": fc_url, "channel_id": CHANNEL_ID, "allow_insecure_http": True},
        "store": {"path": str(store_path)},
    }
    return from_mapping(raw, {"ZFSYNC_ZALO_APP_SECRET": "sim-secret", "ZFSYNC_FRESHCHAT_API_KEY": "sim-key"})
