"""A fleet daemon's metrics stay bounded: tenants past ``[fleet] metrics_tenants`` fold into one label set."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zfsync.runtime.metrics import FleetCollector


class OneDesk(Collector):
    def __init__(self, backlog: float, health: float, up: float, heartbeat: float, delivered: float):
        self.values = backlog, health, up, heartbeat, delivered

    def collect(self) -> Iterator[Metric]:
        backlog, health, up, heartbeat, delivered = self.values
        info = GaugeMetricFamily("zfsync_build_info", "version", labels=["version"])
        info.add_metric(["1.0"], 1)
        yield info
        family = GaugeMetricFamily("zfsync_backlog", "waiting", labels=["direction"])
        family.add_metric(["z2f"], backlog)
        yield family
        yield GaugeMetricFamily("zfsync_health_status", "status", value=health)
        side = GaugeMetricFamily("zfsync_side_up", "up", labels=["side"])
        side.add_metric(["zalo"], up)
        yield side
        yield GaugeMetricFamily("zfsync_heartbeat_timestamp_seconds", "beat", value=heartbeat)
        messages = CounterMetricFamily("zfsync_messages", "delivered", labels=["direction"])
        messages.add_metric(["z2f"], delivered)
        yield messages


def written(desks: dict[str, OneDesk], labelled: int) -> str:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(FleetCollector(lambda: list(desks.items()), lambda: 0, labelled))  # type: ignore[arg-type]
    return generate_latest(reg).decode()


DESKS = {
    "dao": OneDesk(backlog=4, health=2, up=0, heartbeat=900, delivered=7),
    "an": OneDesk(backlog=1, health=0, up=1, heartbeat=1000, delivered=3),
    "chi": OneDesk(backlog=2, health=1, up=1, heartbeat=1100, delivered=5),
    "binh": OneDesk(backlog=0, health=0, up=1, heartbeat=1200, delivered=2),
}


def test_under_the_cap_every_tenant_keeps_its_label():
    text = written(DESKS, labelled=10)
    for name in DESKS:
        assert f'zfsync_backlog{{direction="z2f",tenant="{name}"}}' in text
    assert "_others" not in text
    assert 'zfsync_fleet_tenants{state="folded"} 0.0' in text
    assert text.count("zfsync_build_info{") == 1


def test_past_the_cap_the_rest_fold_into_others_counts_summed_and_the_worst_kept():
    text = written(DESKS, labelled=2)
    # By name: an and binh keep their label; chi and dao fold.
    assert 'zfsync_backlog{direction="z2f",tenant="an"} 1.0' in text
    assert 'zfsync_backlog{direction="z2f",tenant="binh"} 0.0' in text
    assert 'tenant="chi"' not in text and 'tenant="dao"' not in text
    assert 'zfsync_backlog{direction="z2f",tenant="_others"} 6.0' in text
    assert 'zfsync_messages_total{direction="z2f",tenant="_others"} 12.0' in text
    assert 'zfsync_health_status{tenant="_others"} 2.0' in text
    assert 'zfsync_side_up{side="zalo",tenant="_others"} 0.0' in text
    assert 'zfsync_heartbeat_timestamp_seconds{tenant="_others"} 900.0' in text
    assert 'zfsync_fleet_tenants{state="folded"} 2.0' in text
    assert 'zfsync_fleet_tenants{state="served"} 4.0' in text


def test_a_cap_of_nought_folds_every_tenant_into_one_set():
    text = written(DESKS, labelled=0)
    assert 'zfsync_backlog{direction="z2f",tenant="_others"} 7.0' in text
    assert text.count("zfsync_backlog{") == 1
