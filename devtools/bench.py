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
   a 500-message backlog from 20 users caught up, next to the rate the quotas allow;
6. a history import at the first start (``sync.import_history_days``): its rate against the part of the
   FreshChat budget it may use, and the latency of live traffic both ways while it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.daemonbench import DEFAULTS, RTT, DaemonBench, cpu_seconds, proc_status
from devtools.fleetbench import fleet_bench
from devtools.scenario import seed_mapped
from devtools.schedulebench import schedule_run
from zfsync import log
from zfsync.cli.demo import wait_until
from zfsync.store import Store
from zfsync.sync.decide.schedule import SWEEP_INTERVAL

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


# --- 6: history import ---------------------------------------------------------------------------------


def history_import(workdir: Path, quick: bool) -> dict[str, Any]:
    """Customers who wrote before the first start, imported while 10 other conversations are live."""
    from zfsync.sides.priority import Priority
    from zfsync.sides.quota import Quota

    customers, each = (20, 30) if quick else (50, 40)
    bench = DaemonBench(workdir)
    bench.demo.config.write_text(bench.demo.config.read_text() + "\n[sync]\nimport_history_days = 3\n")
    ids = [f"86{n:017d}" for n in range(customers)]
    start = time.time() - 86_400
    for i in range(each):
        for n, user_id in enumerate(ids):
            at = int((start + (i * customers + n) * 30) * 1000)
            bench.demo.zalo.add_customer_message(user_id, f"Khách {n}", text=f"cũ {n}-{i}", time=at)
    total = customers * each

    def imported() -> int:
        return sum(len(bench.demo.fc_messages(u)) for u in ids)

    try:
        fc_before = bench.freshchat_requests()
        started = time.time()
        bench.start()
        latency = bench.latency(45 if quick else 120)
        running = imported() < total  # the live traffic above was measured while the import ran
        done = wait_until(lambda: imported() >= total, timeout=3600)
        took = time.time() - started
        got = {u: [p["text"]["content"] for m in bench.demo.fc_messages(u) for p in m["message_parts"]] for u in ids}
        expected = {u: [f"cũ {n}-{i}" for i in range(each)] for n, u in enumerate(ids)}
        # What the import may spend: the budget less what each priority above it keeps.
        budget = int(DEFAULTS["budget"])
        allowed = budget - Quota("freshchat", budget).reserve(Priority.HISTORY)
        return {
            "messages": total,
            "customers": customers,
            "seconds": round(took, 1),
            "per_second": round(total / took, 2),
            "freshchat_per_minute": round((bench.freshchat_requests() - fc_before) * 60 / took, 1),
            "history_may_use_per_minute": allowed,
            "share_of_what_it_may_use": round(total * 60 / took / allowed, 3),
            "complete": done,
            "doubled": sum(len(got[u]) - len(set(got[u])) for u in ids),
            "lost": sum(len(set(expected[u]) - set(got[u])) for u in ids),
            "reordered": sum(1 for u in ids if got[u] != expected[u]),
            "import_ran_during_latency": running,
            "latency": latency,
        }
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
            in_feed=20,  # Zalo's feed is not empty on an OA in use: idle polls stop at its known rows
        )
        store.close()
        bench.start()
        time.sleep(5)  # past the start-up
        assert bench.demo.daemon is not None
        pid = bench.demo.daemon.pid
        cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
        time.sleep(seconds)
        cpu = (cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
        status = proc_status(pid)
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


PHASES = (1, 2, 3, 4, 5, 6)
FLEET = 7  # `--phases fleet`: not among the default six (a fleet is an integrator's, and takes minutes)


def run(quick: bool, say: Callable[[str], None], phases: tuple[int, ...] = PHASES) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "mode": "quick" if quick else "full", "rtt": RTT}
    with tempfile.TemporaryDirectory(prefix="zfsync-bench-") as tmp:
        work = Path(tmp)
        if {1, 2} & set(phases):
            _live(work, quick, say, phases, results)
        if 3 in phases:
            say("3/6 FreshChat schedule vs naive polling, simulated time ...")
            (work / "s").mkdir()
            minutes = 8 if quick else 60  # long enough for the naive schedule to get round 10,000 twice
            results["schedule"] = [
                {
                    "adaptive": schedule_run(n, 20, minutes, False, work / "s"),
                    "naive": schedule_run(n, 20, minutes, True, work / "s"),
                }
                for n in (10, 1000, 10_000)
            ]
        if 4 in phases:
            say("4/6 footprint while idle ...")
            (work / "f").mkdir()
            results["footprint"] = footprint(work / "f", 10_000, 10, 10 if quick else 60)
        if 5 in phases:
            say("5/6 tight quotas: Zalo 100/min, FreshChat 200/min ...")
            (work / "q").mkdir()
            results["tight"] = tight_quotas(work / "q", quick)
        if 6 in phases:
            say("6/6 history import at the first start, live traffic meanwhile ...")
            (work / "h").mkdir()
            results["history"] = history_import(work / "h", quick)
        if FLEET in phases:
            say("fleet: many tenants of one Zalo app in one daemon ...")
            (work / "fleet").mkdir()
            results["fleet"] = fleet_bench(work / "fleet", quick, say)
    return results


def _live(
    work: Path, quick: bool, say: Callable[[str], None], phases: tuple[int, ...], results: dict[str, Any]
) -> None:
    """Phases 1 and 2, one real daemon: latency and Zalo request rates, then a backlog caught up."""
    say("1/6 latency and Zalo request rates (real daemon, 100 ms round trips) ...")
    (work / "d").mkdir()
    bench = DaemonBench(work / "d")
    try:
        bench.start()
        if 1 in phases:
            results["latency"] = bench.latency(15 if quick else 120)
            results["zalo_requests"] = bench.zalo_rates(10 if quick else 60, burst=100 if quick else 200)
        if 2 in phases:
            say("2/6 catch-up of a backlog ...")
            # Every post is a FreshChat request: the default ceiling of 400 a minute bounds the rate.
            results["catch_up"] = bench.catch_up(500 if quick else 2000, 25 if quick else 100)
            results["catch_up"]["allowed_per_second"] = round(DEFAULTS["budget"] / 60, 2)
            results["catch_up"]["budget_share"] = round(
                results["catch_up"]["freshchat_per_minute"] / DEFAULTS["budget"], 3
            )
    finally:
        bench.close()


def render(r: dict[str, Any]) -> str:
    lines = [
        f"zfsync benchmark ({r['mode']}) on {r['machine']}; simulators with {r['rtt'] * 1000:.0f} ms round trips;"
        f" default settings (Zalo poll 2 s, FreshChat hot 2 s, budget 400/min), 10 active conversations",
        "",
        "| measure | result | target |",
        "|---|---|---|",
    ]
    if "latency" in r:
        lines += _latency_rows(r)
    if "catch_up" in r:
        lines += _catch_up_rows(r)
    if "schedule" in r:
        lines += _schedule_rows(r)
    if "footprint" in r:
        f = r["footprint"]
        lines.append(
            f"| idle, {f['conversations']} conversations, {f['messages']} messages | RSS {f['rss_mb']} MB "
            f"(peak {f['peak_rss_mb']}), CPU {f['idle_cpu_percent']} % of a core | ≤ 64 MB, ≤ 0.5 % |"
        )
    if "tight" in r:
        lines += _tight_rows(r)
    if "fleet" in r:
        lines += _fleet_rows(r["fleet"])
    if "history" in r:
        lines += _history_rows(r)
    return "\n".join(lines)


def _latency_rows(r: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (("zalo_to_freshchat", "Zalo → FreshChat"), ("freshchat_to_zalo", "FreshChat → Zalo")):
        s = r["latency"][key]
        lines.append(
            f"| latency {label}, default intervals ({s['count']} msgs) | p50 {s['p50']} s, p95 {s['p95']} s, "
            f"max {s['max']} s (floor {s['floor']:.1f} s{_undelivered(s)}) | p95 ≤ 3 s |"
        )
    z = r["zalo_requests"]
    lines.append(f"| Zalo requests/min idle, in a burst | {z['idle_per_minute']}, {z['burst_per_minute']} | |")
    return lines


def _catch_up_rows(r: dict[str, Any]) -> list[str]:
    c = r["catch_up"]
    return [
        f"| catch-up of {c['messages']} msgs from {c['users']} users | {c['per_second']} msgs/s ({c['seconds']} s), "
        f"FreshChat {c['freshchat_per_minute']} req/min = {c['budget_share']:.0%} of the {DEFAULTS['budget']}/min "
        f"budget (one post a message, two more a new customer); lost {c['lost']}, doubled {c['doubled']}, "
        f"reordered {c['reordered']} | ≥ 95 % of the budget |"
    ]


def _schedule_rows(r: dict[str, Any]) -> list[str]:
    lines = []
    for row in r["schedule"]:
        a, n = row["adaptive"], row["naive"]
        ratio = n["reply_p95"] / a["reply_p95"] if a["reply_p95"] else float("inf")
        lines.append(
            f"| {a['mapped']} mapped, {a['active']} active: FreshChat req/min, reply p95 | "
            f"adaptive {a['requests_per_minute']}/min, {a['reply_p95']} s; naive {n['requests_per_minute']}/min, "
            f"{n['reply_p95']} s ({ratio:.0f}× better) | ≥ 20× at 10,000 |"
        )
    return lines


def _tight_rows(r: dict[str, Any]) -> list[str]:
    lines = []
    t = r["tight"]
    quotas = f"Zalo {t['quotas']['zalo']}/min, FreshChat {t['quotas']['freshchat']}/min"
    lines += _direction_rows(t["latency"], lambda label: f"{quotas}: latency {label}", "p95 ≤ 4 s")
    lines.append(f"| {quotas}: refusals in steady state | {t['steady_refusals']} | 0 |")
    c = t["catch_up"]
    lines.append(
        f"| {quotas}: catch-up of {c['messages']} msgs from {c['users']} users | {c['per_second']} msgs/s "
        f"({c['share_of_allowed']:.0%} of the {c['allowed_per_second']} the quotas allow), lost {c['lost']}, "
        f"doubled {c['doubled']}, reordered {c['reordered']}, {c['refusals']} refusals | ≥ 80 % |"
    )
    return lines


def _history_rows(r: dict[str, Any]) -> list[str]:
    h = r["history"]
    lines = [
        f"| history import at the first start, {h['messages']} msgs from {h['customers']} customers | "
        f"{h['per_second']} msgs/s ({h['seconds']} s) = {h['share_of_what_it_may_use']:.0%} of the "
        f"{h['history_may_use_per_minute']}/min the budget leaves it; FreshChat {h['freshchat_per_minute']} req/min "
        f"in all; lost {h['lost']}, doubled {h['doubled']}, reordered {h['reordered']} | within the budget |"
    ]
    during = "while it ran" if h["import_ran_during_latency"] else "(the import ended first)"
    for key, label in (("zalo_to_freshchat", "Zalo → FreshChat"), ("freshchat_to_zalo", "FreshChat → Zalo")):
        s = h["latency"][key]
        lines.append(
            f"| live latency {label} during the import ({s['count']} msgs) | p50 {s['p50']} s, p95 {s['p95']} s "
            f"{during}{_undelivered(s)} | p95 ≤ 3 s |"
        )
    return lines


def _fleet_rows(f: dict[str, Any]) -> list[str]:
    one, many = f["single_oa_idle"], f["single_oa_times_tenants"]
    lines = _fleet_run_rows(f, "one daemon")
    two = f.get("two_daemons", {})
    if "skipped" in two:
        lines.append(f"| fleet: two daemons on PostgreSQL | skipped: {two['skipped']} | |")
    elif two:
        lines += _fleet_run_rows(two, f"two daemons on PostgreSQL (holding {' and '.join(map(str, two['held']))})")
    lines.append(
        f"| {f['tenants']} single-OA daemons, estimated from one | RSS {many['rss_mb']} MB, CPU "
        f"{many['cpu_percent']} %, Zalo {many['zalo_per_minute']}/min (one: {one['rss_mb']} MB, "
        f"{one['cpu_percent']} %) | |"
    )
    return lines


def _fleet_run_rows(f: dict[str, Any], how: str) -> list[str]:
    idle, n = f["idle"], f["tenants"]
    lines = [
        f"| fleet, {how}: {n} tenants of one app ({f['app_limit']}/min), all quiet | RSS {idle['rss_mb']} MB "
        f"({idle['rss_mb'] / n:.2f} MB a tenant), CPU {idle['cpu_percent']} % of a core "
        f"({idle['cpu_percent'] / n:.3f} % a tenant) | ≤ 1.5 MB, ≤ 0.125 % a tenant |",
        f"| fleet, {how}: Zalo requests a minute, all quiet | {idle['zalo_per_minute']} "
        f"({idle['share_of_limit'] * 100:.0f} % of the app's limit) | ≤ 50 % |",
    ]
    talking = f"{f['active']} tenants talking"
    noisy = f"{f['active'] - 2} tenants talking beside a 429 storm and a dead token"

    def named(who: str) -> Any:
        return lambda label: f"fleet, {how}: latency {label}, {who}"

    lines += _direction_rows(f["active_latency"], named(talking), "p95 ≤ 3 s")
    lines += _direction_rows(f["beside_noise"], named(noisy), "p95 as without")
    lines.append(f"| fleet, {how}: requests the app's limit refused | {f['app_refusals']} | 0 |")
    return lines


def _direction_rows(latency: dict[str, Any], measure: Any, target: str) -> list[str]:
    """A row per direction: ``measure(label)`` names it, then the count, p50, p95 and what was not delivered."""
    rows = []
    for key, label in (("zalo_to_freshchat", "Zalo → FreshChat"), ("freshchat_to_zalo", "FreshChat → Zalo")):
        s = latency[key]
        rows.append(
            f"| {measure(label)} ({s['count']} msgs) | p50 {s['p50']} s, p95 {s['p95']} s{_undelivered(s)} | {target} |"
        )
    return rows


def _undelivered(s: dict[str, Any]) -> str:
    return f", {s['undelivered']} undelivered" if s["undelivered"] else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller and shorter: under 2 minutes")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where to write the JSON")
    parser.add_argument(
        "--phases",
        default=",".join(map(str, PHASES)),
        help="which measurements, e.g. 2,6 or fleet (default: the six of one OA)",
    )
    args = parser.parse_args(argv)
    try:
        named = [p.strip() for p in args.phases.split(",") if p.strip()]
        phases = tuple(sorted({FLEET if p == "fleet" else int(p) for p in named}))
    except ValueError:
        parser.error(f"--phases: expected numbers from 1 to 6 separated by commas, got {args.phases!r}")
    if not phases or not set(phases) <= {*PHASES, FLEET}:
        parser.error(f"--phases: expected numbers from 1 to 6 or fleet, separated by commas, got {args.phases!r}")
    log.setup("warning")  # the in-process runs would otherwise log every message
    started = time.monotonic()
    results = run(args.quick, lambda line: print(line, file=sys.stderr, flush=True), phases)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(render(results))
    print(f"\n({results['wall_seconds']} s; JSON in {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
