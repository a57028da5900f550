"""Prometheus metrics as an operator uses them: the written file parses with prometheus_client's own
parser and holds every documented metric with its type; the counters keep counting across a restart;
the alert rules and the dashboard name only metrics zfsync writes (and promtool accepts the rules)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SIMS_IN_PROCESS, cli_config, on
from zfsync.runtime import metrics
from zfsync.sim.base import Fault

ROOT = Path(__file__).resolve().parents[2]
KHANH = "2512007384617209999"
# Every metric docs/operating.md's "Metrics" table documents, with its type.
DOCUMENTED = {
    "zfsync_build_info": "gauge",
    "zfsync_health_status": "gauge",
    "zfsync_problems": "gauge",
    "zfsync_side_up": "gauge",
    "zfsync_side_state": "gauge",
    "zfsync_side_last_success_timestamp_seconds": "gauge",
    "zfsync_messages": "counter",
    "zfsync_chat_messages": "counter",
    "zfsync_delivery_failures": "counter",
    "zfsync_delivery_latency_seconds": "histogram",
    "zfsync_backlog": "gauge",
    "zfsync_oldest_pending_age_seconds": "gauge",
    "zfsync_conversations": "gauge",
    "zfsync_zalo_token_expiry_timestamp_seconds": "gauge",
    "zfsync_heartbeat_timestamp_seconds": "gauge",
    "zfsync_api_requests": "counter",
    "zfsync_rate_limited": "counter",
}


def written(b, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "zfsync.prom"
    metrics.write_textfile(path, metrics.registry(b.store))
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # node_exporter runs as another user
    return {family.name: family for family in text_string_to_metric_families(path.read_text())}


def sample(families: dict, name: str, **labels: str) -> float:
    family = families[re.sub(r"_(total|bucket|sum|count)$", "", name)]
    for s in family.samples:  # type: ignore[attr-defined]
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {name} {labels}")


def traffic(b) -> None:
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="xin chào")
    b.cycle()
    b.fc.add_agent_message(b.conversation_of(KHANH), "dạ")
    b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "zalo_error", code=-213, count=1))
    b.fc.add_agent_message(b.conversation_of(KHANH), "không tới được")
    b.zalo.faults.append(Fault("/v2.0/oa/listrecentchat", "zalo_error", code=-32, count=1))
    b.settle(rounds=3, step=61)


@on(SIMS_IN_PROCESS)
def test_every_documented_metric_is_written_with_its_type(bridge, tmp_path):
    traffic(bridge)
    families = written(bridge, tmp_path)
    assert {name: families[name].type for name in DOCUMENTED if name in families} == DOCUMENTED  # type: ignore[attr-defined]
    assert sample(families, "zfsync_messages_total", direction="z2f", kind="text") == 1
    assert sample(families, "zfsync_messages_total", direction="f2z", kind="text") == 1
    assert sample(families, "zfsync_chat_messages_total", direction="f2z", chat="direct") == 1
    assert sample(families, "zfsync_delivery_failures_total", direction="f2z", reason="-213") == 1
    assert sample(families, "zfsync_delivery_latency_seconds_count", direction="z2f") == 2  # the message, the note
    assert sample(families, "zfsync_delivery_latency_seconds_bucket", direction="z2f", le="+Inf") == 2
    assert sample(families, "zfsync_side_up", side="zalo") == 1
    assert sample(families, "zfsync_side_state", side="freshchat", state="OK") == 1
    assert sample(families, "zfsync_rate_limited_total", side="zalo") >= 1
    assert sample(families, "zfsync_api_requests_total", side="zalo", endpoint="/v3.0/oa/message/cs", outcome="ok") >= 2
    guide = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    for name, kind in DOCUMENTED.items():
        shown = name + ("_total" if kind == "counter" else "")
        assert f"`{shown}" in guide, f"{shown} is not documented in docs/operating.md"


def test_counters_keep_counting_across_a_restart(bridge, tmp_path):
    b = bridge
    b.reconfigure(retry_when_customer_returns=False)  # the customer's return would send the failed reply again
    traffic(b)
    before = written(b, tmp_path)
    b.restart()
    after = written(b, tmp_path)
    assert sample(after, "zfsync_messages_total", direction="z2f", kind="text") == sample(
        before, "zfsync_messages_total", direction="z2f", kind="text"
    )
    b.zalo.add_customer_message(KHANH, "Minh Khánh", text="lần nữa")
    b.cycle()
    later = written(b, tmp_path)
    assert sample(later, "zfsync_messages_total", direction="z2f", kind="text") == 2
    assert sample(later, "zfsync_delivery_latency_seconds_count", direction="z2f") == 3


def _names_used(text: str) -> set[str]:
    return set(re.findall(r"\bzfsync_[a-z_]+\b", text))


@on(SIMS_IN_PROCESS)
def test_the_rules_and_the_dashboard_name_only_written_metrics(bridge, tmp_path):
    traffic(bridge)
    samples = {s.name for family in written(bridge, tmp_path).values() for s in family.samples}  # type: ignore[attr-defined]
    rules = (ROOT / "deploy/prometheus/zfsync.rules.yml").read_text(encoding="utf-8")
    expressions = "\n".join(re.findall(r"^\s*expr: (.*)$", rules, flags=re.M))
    dashboard = json.loads((ROOT / "deploy/grafana/zfsync.dashboard.json").read_text(encoding="utf-8"))
    queries = "\n".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    assert _names_used(expressions) and _names_used(queries)
    assert _names_used(expressions) <= samples, _names_used(expressions) - samples
    assert _names_used(queries) <= samples, _names_used(queries) - samples


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool") or str(ROOT / ".venv/bin/promtool")
    if not os.access(promtool, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("promtool is missing on CI: scripts/setup fetches it from Debian's prometheus package")
        pytest.skip("promtool is not installed here (scripts/setup fetches it when run as root on Debian)")
    rules = ROOT / "deploy/prometheus/zfsync.rules.yml"
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    written = (ROOT / "deploy/prometheus/zfsync.rules.yml").read_text(encoding="utf-8").count("- alert:")
    assert f"SUCCESS: {written} rules found" in checked.stdout


@on(SIMS_IN_PROCESS)
def test_status_writes_the_store_metrics_too(bridge, tmp_path, monkeypatch):
    from zfsync import cli

    b = bridge
    traffic(b)
    config = cli_config(tmp_path, b.settings.store_path, monkeypatch, b.settings.store_url)
    out = tmp_path / "status.prom"
    cli.main(["--config", str(config), "status", "--prometheus", str(out)])
    names = {f.name for f in text_string_to_metric_families(out.read_text())}
    assert "zfsync_messages" in names and "zfsync_api_requests" not in names  # no process of its own to count
