"""Benchmarks: latency, API cost and footprint, measured against the simulators (scripts/bench).

Four measurements, each printed as a table row and written to JSON:

1. the real daemon at default intervals, 100 ms round trip on every API call: end-to-end latency each way
   for active conversations, next to the polling floor; Zalo requests a minute idle and in a burst;
2. a 2,000-message backlog from 100 users, caught up by the real daemon: messages a second, next to what
   FreshChat's default budget of 400 requests a minute allows (one post per message);
3. the FreshChat schedule with 10, 1,000 and 10,000 mapped conversations (20 active) under the default
   budget, next to a naive schedule that polls every conversation in turn under the same budget, in
   simulated time (in-process simulators, fake clock): requests a minute and agent-reply p95;
4. the real daemon idle with 10,000 conversations and 100,000 messages in its store: RSS and CPU;
5. the real daemon under tight quotas the simulators enforce (Zalo 100 requests a minute, FreshChat 200,
   learned from their headers): latency each way with 10 active conversations, rate-limit refusals, and
   a 500-message backlog from 20 users caught up, next to the rate the quotas allow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zfsync import log
from zfsync.app import build_clients, build_engine
from zfsync.config import Settings, from_mapping
from zfsync.demo import Demo, wait_until
from zfsync.domain import ZaloTokens
from zfsync.quota import Priority
from zfsync.sim.freshchat import AGENT_ID, CHANNEL_ID, FreshChatSim
from zfsync.sim.inprocess import session_for
from zfsync.sim.scenario import seed_mapped, zalo_user_id
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store
from zfsync.sync.freshchat_reader import FreshChatReader
from zfsync.sync.schedule import SWEEP_INTERVAL

RTT = 0.1
DEFAULTS = {"zalo_poll": 2.0, "hot": 2.0, "budget": 400}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": round(statistics.median(values), 2) if values else float("nan"),
        "p95": round(percentile(values, 0.95), 2),
        "max": round(max(values), 2) if values else float("nan"),
    }


# --- 1 and 2: the real daemon ----------------------------------------------------------------------------


class DaemonBench:
    """The real daemon as a subprocess, default intervals, every API call 100 ms away."""

    def __init__(self, workdir: Path):
        self.demo = Demo(workdir)
        config = self.demo.config.read_text()
        # Default intervals: drop the demo's 1 s settings.
        config = config.replace("poll_interval = 1\n", "").replace("hot_interval = 1\n", "")
        self.demo.config.write_text(config)
        self.demo.zalo.rtt = self.demo.fc.rtt = RTT
        auth = self.demo.zfsync("auth", "zalo", f"--refresh-token={self.demo.zalo.mint_tokens()[1]}")
        if auth.returncode != 0:
            raise SystemExit(f"bench: authorisation failed: {auth.stderr.strip()}")

    def start(self) -> None:
        polls = self.zalo_requests("/v2.0/oa/listrecentchat")
        self.demo.start_daemon()
        # Two polls: the first start takes what the feed holds as history, so traffic waits until it has.
        if not wait_until(lambda: self.zalo_requests("/v2.0/oa/listrecentchat") > polls + 1, timeout=60):
            raise SystemExit("bench: the daemon did not start polling")

    def zalo_requests(self, path: str | None = None) -> int:
        with self.demo.zalo.lock:
            counts = self.demo.zalo.requests
            return counts.get(path, 0) if path else sum(v for k, v in counts.items() if k.startswith("/v"))

    def latency(self, seconds: float, users: int = 10, pause: tuple[float, float] = (0.2, 1.0)) -> dict[str, Any]:
        """Customers and agents write at random among ``users`` active conversations for ``seconds``, one
        message every ``pause`` seconds."""
        rng = random.Random(8)
        ids = [f"85{n:017d}" for n in range(users)]
        for user_id in ids:  # open the conversations first
            self.demo.zalo.add_customer_message(user_id, f"Khách {user_id[-2:]}", text="xin chào")
        wait_until(lambda: all(self.demo.fc_messages(u) for u in ids), timeout=120)
        z2f: list[float] = []
        f2z: list[float] = []
        pending_z: dict[str, float] = {}
        pending_f: dict[str, float] = {}
        end = time.time() + seconds
        count = 0
        while time.time() < end:
            count += 1
            user_id = rng.choice(ids)
            if rng.random() < 0.5:
                row = self.demo.zalo.add_customer_message(user_id, "Khách", text=f"hỏi {count}")
                pending_z[f"hỏi {count}"] = row["time"] / 1000
            else:
                conversation = self.demo.fc.conversation_of(user_id)
                if conversation is None:
                    raise RuntimeError(f"no FreshChat conversation for {user_id}: the set-up opens one each")
                message = self.demo.fc.add_agent_message(conversation, f"đáp {count}", actor_id=AGENT_ID)
                pending_f[f"đáp {count}"] = _iso_seconds(message["created_time"])
            time.sleep(rng.uniform(*pause))
        time.sleep(10)  # let the last ones arrive
        with self.demo.fc.lock:
            for messages in self.demo.fc.messages.values():
                for m in messages:
                    text = (m["message_parts"] or [{}])[0].get("text", {}).get("content", "")
                    if m["actor_type"] == "user" and text in pending_z:
                        z2f.append(_iso_seconds(m["created_time"]) - pending_z.pop(text))
        with self.demo.zalo.lock:
            for sent in self.demo.zalo.sent:
                if sent["text"] in pending_f:
                    f2z.append(sent["time"] / 1000 - pending_f.pop(sent["text"]))
        floor = DEFAULTS["zalo_poll"] / 2 + 2 * RTT
        return {
            "zalo_to_freshchat": {**summary(z2f), "undelivered": len(pending_z), "floor": floor},
            "freshchat_to_zalo": {
                **summary(f2z),
                "undelivered": len(pending_f),
                "floor": DEFAULTS["hot"] / 2 + 2 * RTT,
            },
        }

    def zalo_rates(self, idle_seconds: float, burst: int = 200) -> dict[str, float]:
        before = self.zalo_requests()
        time.sleep(idle_seconds)
        idle = (self.zalo_requests() - before) * 60 / idle_seconds
        before = self.zalo_requests()
        started = time.time()
        for i in range(burst):
            self.demo.zalo.add_customer_message(zalo_user_id(500_000 + i % 20), "Burst", text=f"burst {i}")
        wait_until(lambda: sum(len(self.demo.fc_messages(zalo_user_id(500_000 + n))) for n in range(20)) >= burst, 300)
        took = time.time() - started
        return {
            "idle_per_minute": round(idle, 1),
            "burst_per_minute": round((self.zalo_requests() - before) * 60 / took, 1),
        }

    def catch_up(self, messages: int, users: int) -> dict[str, Any]:
        self.demo.stop_daemon()
        ids = [zalo_user_id(700_000 + n) for n in range(users)]
        for i in range(messages):
            self.demo.zalo.add_customer_message(ids[i % users], "Backlog", text=f"backlog {i}")
        started = time.time()
        self.start()
        done = wait_until(lambda: sum(len(self.demo.fc_messages(u)) for u in ids) >= messages, timeout=1800)
        took = time.time() - started
        time.sleep(3)  # would anything come twice?
        arrived = {u: [p["text"]["content"] for m in self.demo.fc_messages(u) for p in m["message_parts"]] for u in ids}
        expected = {u: [f"backlog {i}" for i in range(messages) if ids[i % users] == u] for u in ids}
        got = sum(len(texts) for texts in arrived.values())
        return {
            "messages": messages,
            "users": users,
            "seconds": round(took, 1),
            "per_second": round(got / took, 1),
            "complete": done,
            "lost": sum(len(set(expected[u]) - set(arrived[u])) for u in ids),
            "doubled": sum(len(arrived[u]) - len(set(arrived[u])) for u in ids),
            "reordered": sum(1 for u in ids if [t for t in arrived[u] if t in set(expected[u])] != expected[u]),
        }

    def refusals(self) -> int:
        return self.demo.zalo.quota.refused + self.demo.fc.quota.refused

    def close(self) -> None:
        self.demo.close()


def _iso_seconds(value: str) -> float:
    from zfsync.freshchat.client import parse_time

    return parse_time(value).timestamp()


# --- 3: the schedule in simulated time ------------------------------------------------------------------


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


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """A request budget that must wait, waits in simulated time."""
        self.now += seconds


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
    engine = build_engine(settings, store, clients.zalo, clients.freshchat, clock)
    if naive:
        r = engine.freshchat_reader
        engine.freshchat_reader = NaiveReader(r.fc, store, clock, r.intervals, r.resolve_notice, r.long_text, False)
    engine.zalo_cycle()
    seed_mapped(store, zalo, fc, mapped - active, last_activity_at=clock() - 2 * 86_400)
    hot = seed_mapped(store, zalo, fc, active, last_activity_at=clock() - 2 * 86_400, start=mapped)
    for user_id in hot:
        zalo.add_customer_message(user_id, text="cần hỗ trợ")
    engine.zalo_cycle()
    fc.requests.clear()
    first_minute = 0
    written: dict[str, float] = {}
    conversations = {u: fc._latest_of(f"fcu-{u}") or "" for u in hot}  # seeded: each has one
    for second in range(minutes * 60):
        if second % 30 == 0:
            for user_id in hot:
                text = f"reply {second} {user_id}"
                fc.add_agent_message(conversations[user_id], text, actor_id=AGENT_ID)
                written[text] = clock()
        engine.freshchat_cycle()
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


# --- 5: tight quotas ------------------------------------------------------------------------------------

TIGHT = {"zalo": 100, "freshchat": 200}  # requests a minute the simulators allow


def tight_quotas(workdir: Path, quick: bool) -> dict[str, Any]:
    """Default settings (zfsync learns the limits from the headers), simulators enforcing `TIGHT`."""
    bench = DaemonBench(workdir)
    bench.demo.zalo.modes.quota_per_minute = TIGHT["zalo"]
    bench.demo.fc.modes.quota_per_minute = TIGHT["freshchat"]
    try:
        bench.start()
        before = bench.refusals()
        # A busy desk: a message every 2 to 4 s among 10 active conversations, about 20 a minute.
        latency = bench.latency(30 if quick else 180, users=10, pause=(2.0, 4.0))
        steady_refusals = bench.refusals() - before
        before = bench.refusals()
        catch_up = bench.catch_up(500, 20)
        # Zalo reads 10 rows a request; FreshChat takes one post a message: the tighter bounds the rate.
        allowed = min(TIGHT["zalo"] * 10, TIGHT["freshchat"]) / 60
        catch_up.update(
            allowed_per_second=round(allowed, 2),
            share_of_allowed=round(catch_up["per_second"] / allowed, 2),
            refusals=bench.refusals() - before,
        )
        return {"latency": latency, "steady_refusals": steady_refusals, "catch_up": catch_up, "quotas": TIGHT}
    finally:
        bench.close()


# --- 4: footprint ---------------------------------------------------------------------------------------


def footprint(workdir: Path, conversations: int, messages_each: int, seconds: float) -> dict[str, Any]:
    bench = DaemonBench(workdir)
    try:
        store = Store.open(workdir / "zfsync.db")
        seed_mapped(
            store,
            bench.demo.zalo,
            bench.demo.fc,
            conversations,
            time.time() - 30 * 86_400,
            messages_each=messages_each,
            polls_spread_over=SWEEP_INTERVAL,
        )
        store.close()
        bench.start()
        time.sleep(5)  # past the start-up
        assert bench.demo.daemon is not None
        pid = bench.demo.daemon.pid
        cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu = (_cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
        status = _proc_status(pid)
        return {
            "conversations": conversations,
            "messages": conversations * messages_each,
            "rss_mb": round(status["VmRSS"] / 1024, 1),
            "peak_rss_mb": round(status["VmHWM"] / 1024, 1),
            "idle_cpu_percent": round(100 * cpu, 2),
            "seconds": seconds,
        }
    finally:
        bench.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0])
    return values


# --- the run --------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return (
        f"{platform.machine()}, {os.cpu_count()} cores{', ' + cpu if cpu else ''}, Python {platform.python_version()}"
    )


def run(quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "mode": "quick" if quick else "full", "rtt": RTT}
    with tempfile.TemporaryDirectory(prefix="zfsync-bench-") as tmp:
        work = Path(tmp)
        say("1/5 latency and Zalo request rates (real daemon, 100 ms round trips) ...")
        (work / "d").mkdir()
        bench = DaemonBench(work / "d")
        try:
            bench.start()
            results["latency"] = bench.latency(15 if quick else 120)
            results["zalo_requests"] = bench.zalo_rates(10 if quick else 60, burst=100 if quick else 200)
            say("2/5 catch-up of a backlog ...")
            # Every post is a FreshChat request: the default ceiling of 400 a minute bounds the rate.
            results["catch_up"] = bench.catch_up(500 if quick else 2000, 25 if quick else 100)
            results["catch_up"]["allowed_per_second"] = round(DEFAULTS["budget"] / 60, 2)
        finally:
            bench.close()
        say("3/5 FreshChat schedule vs naive polling, simulated time ...")
        (work / "s").mkdir()
        minutes = 8 if quick else 60  # long enough for the naive schedule to get round 10,000 twice
        results["schedule"] = [
            {
                "adaptive": schedule_run(n, 20, minutes, False, work / "s"),
                "naive": schedule_run(n, 20, minutes, True, work / "s"),
            }
            for n in (10, 1000, 10_000)
        ]
        say("4/5 footprint while idle ...")
        (work / "f").mkdir()
        results["footprint"] = footprint(work / "f", 10_000, 10, 10 if quick else 60)
        say("5/5 tight quotas: Zalo 100/min, FreshChat 200/min ...")
        (work / "q").mkdir()
        results["tight"] = tight_quotas(work / "q", quick)
    return results


def render(r: dict[str, Any]) -> str:
    lat = r["latency"]
    lines = [
        f"zfsync benchmark ({r['mode']}) on {r['machine']}; simulators with {r['rtt'] * 1000:.0f} ms round trips;"
        f" default settings (Zalo poll 2 s, FreshChat hot 2 s, budget 400/min), 10 active conversations",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    for key, label in (("zalo_to_freshchat", "Zalo → FreshChat"), ("freshchat_to_zalo", "FreshChat → Zalo")):
        s = lat[key]
        lines.append(
            f"| latency {label}, default intervals ({s['count']} msgs) | p50 {s['p50']} s, p95 {s['p95']} s, "
            f"max {s['max']} s (floor {s['floor']:.1f} s{_undelivered(s)}) | p95 ≤ 3 s |"
        )
    z = r["zalo_requests"]
    lines.append(f"| Zalo requests/min idle, in a burst | {z['idle_per_minute']}, {z['burst_per_minute']} | |")
    c = r["catch_up"]
    lines.append(
        f"| catch-up of {c['messages']} msgs from {c['users']} users | {c['per_second']} msgs/s "
        f"({c['seconds']} s; the FreshChat budget allows {c['allowed_per_second']}) | ≥ 80 % of the budget |"
    )
    for row in r["schedule"]:
        a, n = row["adaptive"], row["naive"]
        ratio = n["reply_p95"] / a["reply_p95"] if a["reply_p95"] else float("inf")
        lines.append(
            f"| {a['mapped']} mapped, {a['active']} active: FreshChat req/min, reply p95 | "
            f"adaptive {a['requests_per_minute']}/min, {a['reply_p95']} s; naive {n['requests_per_minute']}/min, "
            f"{n['reply_p95']} s ({ratio:.0f}× better) | ≥ 20× at 10,000 |"
        )
    f = r["footprint"]
    lines.append(
        f"| idle, {f['conversations']} conversations, {f['messages']} messages | RSS {f['rss_mb']} MB "
        f"(peak {f['peak_rss_mb']}), CPU {f['idle_cpu_percent']} % of a core | ≤ 64 MB, ≤ 1 % |"
    )
    t = r["tight"]
    quotas = f"Zalo {t['quotas']['zalo']}/min, FreshChat {t['quotas']['freshchat']}/min"
    for key, label in (("zalo_to_freshchat", "Zalo → FreshChat"), ("freshchat_to_zalo", "FreshChat → Zalo")):
        s = t["latency"][key]
        lines.append(
            f"| {quotas}: latency {label} ({s['count']} msgs) | p50 {s['p50']} s, p95 {s['p95']} s"
            f"{_undelivered(s)} | p95 ≤ 4 s |"
        )
    lines.append(f"| {quotas}: refusals in steady state | {t['steady_refusals']} | 0 |")
    c = t["catch_up"]
    lines.append(
        f"| {quotas}: catch-up of {c['messages']} msgs from {c['users']} users | {c['per_second']} msgs/s "
        f"({c['share_of_allowed']:.0%} of the {c['allowed_per_second']} the quotas allow), lost {c['lost']}, "
        f"doubled {c['doubled']}, reordered {c['reordered']}, {c['refusals']} refusals | ≥ 80 % |"
    )
    return "\n".join(lines)


def _undelivered(s: dict[str, Any]) -> str:
    return f", {s['undelivered']} undelivered" if s["undelivered"] else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller and shorter: under 2 minutes")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where to write the JSON")
    args = parser.parse_args(argv)
    log.setup("warning")  # the in-process runs would otherwise log every message
    started = time.monotonic()
    results = run(args.quick, lambda line: print(line, file=sys.stderr, flush=True))
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(render(results))
    print(f"\n({results['wall_seconds']} s; JSON in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
