"""Counters of this process's API calls, kept in memory (Prometheus' `rate()` handles their reset at a
restart). The message counters, which must survive restarts, come from the store (`zfsync.runtime.metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics

disable_created_metrics()  # the *_created series add nothing an operator alerts or graphs on

REGISTRY = CollectorRegistry(auto_describe=True)

API_REQUESTS = Counter(
    "zfsync_api_requests",
    "Requests made to Zalo and FreshChat, by side, endpoint and outcome (ok, http_4xx, http_5xx, timeout, "
    "connection, deadline, too_large).",
    ["side", "endpoint", "outcome"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "zfsync_rate_limited",
    "Answers that asked zfsync to slow down (HTTP 429, Zalo -32), by side.",
    ["side"],
    registry=REGISTRY,
)


def request(side: str, endpoint: str, outcome: str) -> None:
    API_REQUESTS.labels(side, endpoint, outcome).inc()


def rate_limited(side: str) -> None:
    RATE_LIMITED.labels(side).inc()
