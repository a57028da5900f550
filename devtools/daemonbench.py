"""The real daemon under measurement (`scripts/bench` phases 1, 2, 4 and 5): the demo's simulators with a
round trip on every call, traffic written to them, and the latencies and rates read back."""

from __future__ import annotations

import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

from devtools.scenario import zalo_user_id
from zfsync.cli.demo import Demo, wait_until
from zfsync.sim.freshchat import AGENT_ID

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
        fc_before = self.freshchat_requests()
        started = time.time()
        self.start()
        done = wait_until(lambda: sum(len(self.demo.fc_messages(u)) for u in ids) >= messages, timeout=1800)
        took = time.time() - started
        fc_used = self.freshchat_requests() - fc_before
        time.sleep(3)  # would anything come twice?
        arrived = {u: [p["text"]["content"] for m in self.demo.fc_messages(u) for p in m["message_parts"]] for u in ids}
        expected = {u: [f"backlog {i}" for i in range(messages) if ids[i % users] == u] for u in ids}
        got = sum(len(texts) for texts in arrived.values())
        return {
            "messages": messages,
            "users": users,
            "seconds": round(took, 1),
            "per_second": round(got / took, 1),
            # Each message is one post, and each new customer costs two more requests (find and create the
            # user; the first message opens the conversation): what the budget allows is requests, not posts.
            "freshchat_requests": fc_used,
            "freshchat_per_minute": round(fc_used * 60 / took, 1),
            "complete": done,
            "lost": sum(len(set(expected[u]) - set(arrived[u])) for u in ids),
            "doubled": sum(len(arrived[u]) - len(set(arrived[u])) for u in ids),
            "reordered": sum(1 for u in ids if [t for t in arrived[u] if t in set(expected[u])] != expected[u]),
        }

    def freshchat_requests(self) -> int:
        with self.demo.fc.lock:
            return sum(v for k, v in self.demo.fc.requests.items() if k.startswith("/v2"))

    def refusals(self) -> int:
        return self.demo.zalo.quota.refused + self.demo.fc.quota.refused

    def close(self) -> None:
        self.demo.close()


def _iso_seconds(value: str) -> float:
    from zfsync.sides.freshchat.wire import parse_time

    return parse_time(value).timestamp()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0])
    return values
