"""Prometheus metrics, written with prometheus_client: by the daemon to a textfile for node_exporter's
textfile collector (``metrics.textfile``) or served on ``metrics.listen``, and by `zfsync status
--prometheus FILE`.

Message counters and the latency histogram are read from the store at each collection, so they count
every message since the store was made and keep counting across restarts. Gauges come from the same
report `zfsync status` prints. API request counters are this process's own (`zfsync.sides.telemetry`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from zfsync import __version__
from zfsync.domain import SideHealth
from zfsync.runtime import status
from zfsync.sides import telemetry
from zfsync.store import Store

# Around the poll intervals: 2 s polls put most deliveries between 1 and 3 s; minutes mean trouble.
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
STATES = (*SideHealth, "UNKNOWN")
DIRECTIONS = ("z2f", "f2z")


class StoreCollector(Collector):
    """Every metric that is a fact about the store, read afresh at each collection."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        zalo_interval: float = 2.0,
        unanswered_minutes: float = 30.0,
    ):
        self.store = store
        self.clock = clock
        self.zalo_interval = zalo_interval
        self.unanswered_minutes = unanswered_minutes

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        report = status.collect(self.store, now, self.zalo_interval, self.unanswered_minutes)
        info = GaugeMetricFamily(
            "zfsync_build_info", "The zfsync version that wrote these metrics.", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        health = GaugeMetricFamily("zfsync_health_status", "zfsync status exit code: 0 healthy, 1 degraded, 2 down.")
        health.add_metric([], report["exit_code"])
        yield health
        problems = GaugeMetricFamily("zfsync_problems", "Problems `zfsync status` lists, each with its fix.")
        problems.add_metric([], len(report["problems"]))
        yield problems
        store_up = GaugeMetricFamily(
            "zfsync_store_up",
            "1 while the store takes writes; 0 while it refuses them (a full disk, a read-only file).",
        )
        store_up.add_metric([], 1 if report["store"]["up"] else 0)
        yield store_up
        yield from self._sides(report)
        yield from self._messages()
        yield GaugeMetricFamily(
            "zfsync_window_refused_today",
            "Replies refused today (Vietnam's day) because the customer's 7-day window had closed.",
            value=report.get("window_refused_today", 0),
        )
        zns = report.get("zns")
        if zns:
            yield GaugeMetricFamily(
                "zfsync_zns_remaining", "ZNS template sends left today, as ZNS last said.", value=zns["remaining"]
            )
            yield GaugeMetricFamily("zfsync_zns_daily", "ZNS template sends the OA may make a day.", value=zns["daily"])
        backlog = GaugeMetricFamily("zfsync_backlog", "Messages waiting to be delivered.", labels=["direction"])
        oldest = GaugeMetricFamily(
            "zfsync_oldest_pending_age_seconds",
            "How long the message waiting longest has waited (0 when none waits).",
            labels=["direction"],
        )
        for direction in DIRECTIONS:
            backlog.add_metric([direction], report["backlog"][direction])
            row = self.store.oldest_open(direction)
            oldest.add_metric([direction], max(0.0, now - row.created_at) if row else 0.0)
        yield backlog
        yield oldest
        slow = GaugeMetricFamily(
            "zfsync_slow_deliveries",
            "Deliveries in flight for over a minute (a large attachment on a slow link); others go meanwhile.",
            labels=["direction"],
        )
        longest = GaugeMetricFamily(
            "zfsync_longest_delivery_seconds",
            "How long the delivery in flight longest has been (counted once it passes a minute; 0 when none).",
            labels=["direction"],
        )
        for direction in DIRECTIONS:
            flights = [f for f in report["slow"] if f.get("direction") == direction]
            slow.add_metric([direction], len(flights))
            longest.add_metric([direction], max((float(f.get("seconds") or 0) for f in flights), default=0.0))
        yield slow
        yield longest
        remaining = GaugeMetricFamily(
            "zfsync_zalo_package_remaining",
            "The OA's consultation messages left past the free replies, by source (sub_quota: the package's).",
            labels=["kind"],
        )
        total = GaugeMetricFamily(
            "zfsync_zalo_package_total", "The OA's consultation messages of each source in all.", labels=["kind"]
        )
        for kind, found in sorted(report["package"].items()):
            if isinstance(found, dict):
                remaining.add_metric([kind], float(found.get("remain") or 0))
                total.add_metric([kind], float(found.get("total") or 0))
        yield remaining
        yield total
        waiting = report["unanswered"]
        unanswered = GaugeMetricFamily(
            "zfsync_unanswered_customers",
            "Customers whose last message no agent answered within sync.unanswered_minutes (a reply, a resolve "
            "or an assignment answers it).",
        )
        unanswered.add_metric([], waiting["count"])
        yield unanswered
        longest_wait = GaugeMetricFamily(
            "zfsync_unanswered_longest_seconds", "How long the customer waiting longest for an agent has waited."
        )
        longest_wait.add_metric([], waiting["longest_seconds"])
        yield longest_wait
        history = GaugeMetricFamily(
            "zfsync_history_waiting", "Imported history messages (zfsync import-history) not delivered yet."
        )
        history.add_metric([], report["history"]["waiting"])
        yield history
        conversations = GaugeMetricFamily("zfsync_conversations", "FreshChat conversations mapped.")
        conversations.add_metric([], report["conversations"])
        yield conversations
        token = self.store.token_expiry()
        if token is not None:
            expiry = GaugeMetricFamily(
                "zfsync_zalo_token_expiry_timestamp_seconds",
                "When the Zalo access token expires (it is refreshed hours before); 0 if it was refused.",
            )
            expiry.add_metric([], 0.0 if token[1] else token[0])
            yield expiry
        beat = self.store.get_state(status.HEARTBEAT_KEY)
        heartbeat = GaugeMetricFamily(
            "zfsync_heartbeat_timestamp_seconds", "The daemon's last heartbeat (0 when it stopped cleanly)."
        )
        heartbeat.add_metric([], float(beat) if beat not in (None, "stopped") else 0.0)
        yield heartbeat

    def _sides(self, report: dict) -> Iterator[Metric]:
        up = GaugeMetricFamily("zfsync_side_up", "1 while the side's last poll went well.", labels=["side"])
        state = GaugeMetricFamily(
            "zfsync_side_state", "The side's state, one series per state.", labels=["side", "state"]
        )
        last = GaugeMetricFamily(
            "zfsync_side_last_success_timestamp_seconds", "When the side was last polled well.", labels=["side"]
        )
        for side, info in report["sides"].items():
            up.add_metric([side], 1 if info["state"] == SideHealth.OK else 0)
            for name in STATES:
                state.add_metric([side, name], 1 if info["state"] == name else 0)
            last.add_metric([side], info["last_ok"] or 0.0)
        yield up
        yield state
        yield last

    def _messages(self) -> Iterator[Metric]:
        messages = CounterMetricFamily(
            "zfsync_messages", "Messages delivered, by direction and kind.", labels=["direction", "kind"]
        )
        for direction, kind, count in self.store.delivered_counts():
            messages.add_metric([direction, kind], count)
        yield messages
        chats = CounterMetricFamily(
            "zfsync_chat_messages",
            "Messages delivered, by direction and chat: a customer's own (direct) or a Zalo group chat's (group).",
            labels=["direction", "chat"],
        )
        for direction, chat, count in self.store.delivered_by_chat():
            chats.add_metric([direction, chat], count)
        yield chats
        failures = CounterMetricFamily(
            "zfsync_delivery_failures",
            "Deliveries that ended failed, by direction and reason (the error code).",
            labels=["direction", "reason"],
        )
        for direction, reason, count in self.store.failure_counts():
            failures.add_metric([direction, reason], count)
        yield failures
        counts, stars_sum = self.store.rating_counts()
        stars = HistogramMetricFamily("zfsync_rating_stars", "Customers' ratings (sync.rating_template), in stars.")
        rated = [sum(counts[n] for n in range(1, bound + 1)) for bound in range(1, 6)]
        buckets = [(str(bound), count) for bound, count in zip(range(1, 6), rated, strict=True)]
        stars.add_metric([], [*buckets, ("+Inf", rated[-1])], stars_sum)
        yield stars
        latency = HistogramMetricFamily(
            "zfsync_delivery_latency_seconds",
            "Seconds from a message existing on one side to its copy on the other.",
            labels=["direction"],
        )
        found = self.store.latency_histogram(LATENCY_BUCKETS)
        for direction in DIRECTIONS:
            cumulative, total, count = found.get(direction, ([0] * len(LATENCY_BUCKETS), 0.0, 0))
            buckets = [(str(bound), value) for bound, value in zip(LATENCY_BUCKETS, cumulative, strict=True)]
            latency.add_metric([direction], [*buckets, ("+Inf", count)], total)
        yield latency


OTHERS = "_others"  # the tenant label of every tenant past a daemon's [fleet] metrics_tenants
# Summed over the tenants past the cap, a family means what it meant for one tenant, except these: the
# worst of them (highest status or age, oldest timestamp, any side down) is what an alert must see.
WORST_IS_HIGHEST = {
    "zfsync_health_status",
    "zfsync_oldest_pending_age_seconds",
    "zfsync_longest_delivery_seconds",
    "zfsync_unanswered_longest_seconds",
}
WORST_IS_LOWEST = {
    "zfsync_store_up",
    "zfsync_side_up",
    "zfsync_zalo_token_expiry_timestamp_seconds",
    "zfsync_heartbeat_timestamp_seconds",
    "zfsync_side_last_success_timestamp_seconds",
}


class FleetCollector(Collector):
    """A fleet's metrics: every tenant's store metrics with a ``tenant`` label (about 70 series each), and
    how many tenants this daemon serves. ``desks`` lists, at each collection, the tenants to report; the
    first ``labelled`` by name keep their own label, the rest are folded into ``tenant="_others"`` so that
    a daemon's series stay bounded however many tenants it holds."""

    def __init__(
        self,
        desks: Callable[[], list[tuple[str, StoreCollector]]],
        unusable: Callable[[], int],
        labelled: int = 200,
    ):
        self.desks = desks
        self.unusable = unusable
        self.labelled = labelled

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        folded: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = {}
        desks = sorted(self.desks(), key=lambda desk: desk[0])
        for rank, (tenant, collector) in enumerate(desks):
            for family in collector.collect():
                if family.name == "zfsync_build_info" and family.name in merged:
                    continue
                into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    if family.name == "zfsync_build_info":
                        into.add_sample(sample.name, sample.labels, sample.value, sample.timestamp, sample.exemplar)
                    elif rank < self.labelled:
                        labels = {**sample.labels, "tenant": tenant}
                        into.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
                    else:
                        key = (family.name, sample.name, tuple(sorted(sample.labels.items())))
                        folded[key] = _fold(family.name, folded.get(key), sample.value)
        for (family_name, sample_name, pairs), value in folded.items():
            merged[family_name].add_sample(sample_name, {**dict(pairs), "tenant": OTHERS}, value)
        yield from merged.values()
        served = GaugeMetricFamily("zfsync_fleet_tenants", "Tenants this daemon holds, by state.", labels=["state"])
        served.add_metric(["served"], len(desks))
        served.add_metric(["unusable"], self.unusable())
        served.add_metric(["folded"], max(0, len(desks) - self.labelled))
        yield served


def _fold(family: str, so_far: float | None, value: float) -> float:
    if so_far is None:
        return value
    if family in WORST_IS_HIGHEST:
        return max(so_far, value)
    if family in WORST_IS_LOWEST:
        return min(so_far, value)
    return so_far + value


def registry(
    store: Store, zalo_interval: float = 2.0, process: bool = True, unanswered_minutes: float = 30.0
) -> CollectorRegistry:
    """Every metric zfsync writes; ``process`` adds this process's API counters (the daemon's)."""
    reg = CollectorRegistry(auto_describe=True)
    reg.register(StoreCollector(store, zalo_interval=zalo_interval, unanswered_minutes=unanswered_minutes))
    if process:
        reg.register(ProcessCollector())
    return reg


class ProcessCollector(Collector):
    """This process's API request counters (`zfsync.sides.telemetry`)."""

    def collect(self) -> Iterator[Metric]:
        yield from telemetry.REGISTRY.collect()


def write_textfile(path: Path, reg: CollectorRegistry) -> None:
    """Atomically (prometheus_client writes a temporary file and renames it), readable by node_exporter."""
    write_to_textfile(str(path), reg)
    path.chmod(0o644)


def serve(listen: str, reg: CollectorRegistry) -> None:
    """Serve ``/metrics`` on ``host:port`` (``metrics.listen``): off unless configured, zfsync opens no port."""
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=reg)
