"""`scripts/bench --phases fleet`: one fleet daemon serving many tenants of one Zalo app.

200 tenants (40 in --quick), each its own OA on one simulated Zalo host that allows their app 4,000 requests
a minute in all (`zfsync.sim.zalo_host`, refusing with -32 past it); 20 (5) of them have their own FreshChat
account and carry traffic, the others share one idle account. Measured: the daemon's RSS and CPU and the Zalo
requests a minute once every feed is quiet, then latency both ways for the active tenants while they talk,
then again for all but two of them while those two are noisy neighbours (one's FreshChat answers only 429,
the other's Zalo tokens are revoked) and their customers and agents keep writing; the app's refusals
throughout; against one single-OA daemon measured idle the same way (what 200 single-OA processes would
cost, estimated from one).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from devtools import pgcluster
from devtools.daemonbench import RTT, DaemonBench, _iso_seconds, cpu_seconds, proc_status, summary
from zfsync.cli.demo import wait_until
from zfsync.domain import ZaloTokens
from zfsync.sim.base import Fault, SimServer
from zfsync.sim.freshchat import AGENT_ID, CHANNEL_ID, FreshChatSim
from zfsync.sim.zalo import ZaloSim
from zfsync.sim.zalo_host import ZaloHost
from zfsync.store import Store
from zfsync.store.secrets import Sealer, new_key
from zfsync.store.state import BASELINE_KEY

APP_LIMIT = 4000


Tenant = tuple[ZaloSim, SimServer]  # its OA on the Zalo host, its FreshChat account


def _account() -> SimServer:
    fc = FreshChatSim()
    fc.rtt = RTT
    return SimServer(fc).start()


def _fc(server: SimServer) -> FreshChatSim:
    return cast(FreshChatSim, server.app)


def _tenant_config(zalo: SimServer, fc: SimServer) -> str:
    return (
        f'[zalo]\napp_id = "sim-app"\napi_url = "{zalo.url}"\noauth_url = "{zalo.url}"\nallow_insecure_http = true\n'
        f'[freshchat]\napi_url = "{fc.url}"\nchannel_id = "{CHANNEL_ID}"\nallow_insecure_http = true\n'
    )


def _requests(host: ZaloHost) -> int:
    with host.lock:
        return sum(v for k, v in host.requests.items() if k.startswith("/v"))


def _usage(pids: list[int], seconds: float, requests: Any) -> dict[str, Any]:
    """RSS, CPU and Zalo requests of the daemons ``pids`` over ``seconds``, in all and each."""
    cpu, asked, started = [cpu_seconds(p) for p in pids], requests(), time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    each = [
        {"rss_mb": round(proc_status(p)["VmRSS"] / 1024, 1), "cpu_percent": round(100 * (cpu_seconds(p) - c) / took, 2)}
        for p, c in zip(pids, cpu, strict=True)
    ]
    return {
        "rss_mb": round(sum(e["rss_mb"] for e in each), 1),
        "cpu_percent": round(sum(e["cpu_percent"] for e in each), 2),
        "zalo_per_minute": round((requests() - asked) * 60 / took, 1),
        "daemons": each,
    }


def fleet_bench(work: Path, quick: bool, say: Any) -> dict[str, Any]:
    """One daemon on SQLite, then two sharing a PostgreSQL store, then one single-OA daemon."""
    (work / "one").mkdir()
    result = _fleet_run(work / "one", quick, say, None)
    try:
        cluster = pgcluster.Cluster()
    except pgcluster.Unavailable as exc:
        result["two_daemons"] = {"skipped": str(exc)}
    else:
        (work / "two").mkdir()
        try:
            result["two_daemons"] = _fleet_run(work / "two", quick, say, cluster)
        finally:
            cluster.stop()
    say("fleet: one single-OA daemon idle, for comparison ...")
    (work / "single").mkdir()
    single = DaemonBench(work / "single")
    try:
        single.start()
        time.sleep(5)
        one = _usage([single.demo.daemon.pid], result["window"], single.zalo_requests)  # type: ignore[union-attr]
    finally:
        single.close()
    tenants = result["tenants"]
    result["single_oa_idle"] = one
    result["single_oa_times_tenants"] = {
        "rss_mb": round(one["rss_mb"] * tenants, 1),
        "cpu_percent": round(one["cpu_percent"] * tenants, 2),
        "zalo_per_minute": round(one["zalo_per_minute"] * tenants, 1),
    }
    return result


def _fleet_run(work: Path, quick: bool, say: Any, cluster: pgcluster.Cluster | None) -> dict[str, Any]:
    """The fleet's daemons (one on SQLite; two on ``cluster``) serving the tenants: quiet, then talking."""
    tenants, busy = (40, 5) if quick else (200, 20)
    quiet_after, window = (20.0, 20.0) if quick else (60.0, 60.0)
    daemons = 1 if cluster is None else 2
    host = ZaloHost(per_app_minute=APP_LIMIT)
    host.rtt = RTT
    zalo = SimServer(host).start()
    idle_account = _account()
    accounts = [_account() for _ in range(busy)]
    key = new_key()
    url = cluster.create_database("fleetbench") if cluster is not None else ""
    store_section = f'url = "{url}"' if url else 'path = "fleet.db"'
    (work / "fleet.toml").write_text(
        f"[fleet]\nzalo_requests_per_minute = {APP_LIMIT}\nquiet_after = {quiet_after}\nquiet_interval = 15\n"
        f'[store]\n{store_section}\n[log]\nlevel = "warning"\nformat = "json"\n'
    )
    password = pgcluster.PASSWORD if url else ""
    (work / "zfsync.env").write_text(f"ZFSYNC_SECRETS_KEY={key}\nZFSYNC_STORE_PASSWORD={password}\n")
    (work / "zfsync.env").chmod(0o600)
    store = Store.open(url or work / "fleet.db", password, sealer=Sealer(key))
    ids, active = [], []
    secrets = store.sealer.seal(
        json.dumps({"ZFSYNC_FRESHCHAT_API_KEY": "sim-key", "ZFSYNC_ZALO_APP_SECRET": "sim-secret"})
    )
    for n in range(tenants):
        oa = host.add_oa(f"shop-{n:03d}")
        fc = accounts[n] if n < busy else idle_account
        record = store.add_tenant(f"shop-{n:03d}", _tenant_config(zalo, fc), secrets, "sim-app")
        access, refresh = oa.mint_tokens()
        store.for_tenant(record.id).save_tokens(ZaloTokens(access, refresh, 86400), time.time())
        ids.append(record.id)
        if n < busy:
            active.append((oa, fc))
    say(f"fleet: {tenants} tenants, {busy} active; {daemons} daemon(s) starting ...")
    logs = [(work / f"daemon-{n}.log").open("w") for n in range(daemons)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "zfsync", "--config", str(work / "fleet.toml"), "run"], stdout=log, stderr=log
        )
        for log in logs
    ]
    try:
        started = time.monotonic()
        ready = wait_until(lambda: all(store.for_tenant(t).get_state(BASELINE_KEY) for t in ids), timeout=600)
        if not ready:
            raise SystemExit(f"bench: the fleet did not poll every tenant; see {work}/daemon-*.log")
        result: dict[str, Any] = {"tenants": tenants, "active": busy, "app_limit": APP_LIMIT, "window": window}
        result["daemons"] = daemons
        result["all_polled_seconds"] = round(time.monotonic() - started, 1)
        time.sleep(quiet_after + 5)  # every feed quiet
        say(f"fleet: idle for {window:.0f} s ...")
        result["idle"] = _usage([p.pid for p in processes], window, lambda: _requests(host))
        result["idle"]["share_of_limit"] = round(result["idle"]["zalo_per_minute"] / APP_LIMIT, 3)
        result["held"] = sorted(Counter(t.owner.split()[-1] for t in store.tenants() if t.owner).values())
        say(f"fleet: {busy} tenants talking for {window:.0f} s ...")
        result["active_latency"] = _talk(active, window)
        say(f"fleet: {busy - 2} of them talking beside two noisy neighbours for {window:.0f} s ...")
        result["beside_noise"] = _beside_noise(active[2:], active[:2], window)
        result["during_traffic"] = {"rss_mb": round(sum(proc_status(p.pid)["VmRSS"] for p in processes) / 1024, 1)}
        result["app_refusals"] = host.refused("sim-app")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(60)
        for log in logs:
            log.close()
        store.close()
        for server in (zalo, idle_account, *accounts):
            server.stop()
    return result


def _beside_noise(calm: list[Tenant], noisy: list[Tenant], seconds: float) -> dict[str, Any]:
    """``calm`` talking while one noisy tenant's FreshChat answers only 429 and the other's Zalo tokens
    are revoked (every call -216, the refresh refused), both with customers and agents still writing."""
    (_, storm_fc), (dead_oa, _) = noisy
    _fc(storm_fc).faults.append(Fault("/v2/", "status", count=10**9, code=429, seconds=1))
    with dead_oa.lock:
        dead_oa.access_tokens.clear()
        dead_oa.refresh_tokens.clear()
    return _talk(calm, seconds, noise=noisy)


def _talk(pairs: list[Tenant], seconds: float, noise: list[Tenant] | None = None) -> dict[str, Any]:
    """Customers and agents of ``pairs`` write at random, one message every 50 to 250 ms; those of ``noise``
    too, one message in five, unmeasured."""
    rng = random.Random(9)
    user = "8500000000000000001"
    for oa, _ in pairs:
        oa.add_customer_message(user, "Khách", text="xin chào")
    wait_until(lambda: all(_fc(fc).conversation_of(user) for _, fc in pairs), timeout=120)
    pending_z: dict[tuple[int, str], float] = {}
    pending_f: dict[tuple[int, str], float] = {}
    end, count = time.time() + seconds, 0
    while time.time() < end:
        count += 1
        if noise and rng.random() < 0.2:
            oa, fc = rng.choice(noise)
            oa.add_customer_message(user, "Khách", text=f"ồn {count}")
            conversation = _fc(fc).conversation_of(user)
            if conversation is not None:
                _fc(fc).add_agent_message(conversation, f"ồn {count}", actor_id=AGENT_ID)
            time.sleep(rng.uniform(0.05, 0.25))
            continue
        n = rng.randrange(len(pairs))
        oa, fc = pairs[n]
        if rng.random() < 0.5:
            row = oa.add_customer_message(user, "Khách", text=f"hỏi {count}")
            pending_z[(n, f"hỏi {count}")] = row["time"] / 1000
        else:
            conversation = _fc(fc).conversation_of(user)
            if conversation is None:
                raise RuntimeError(f"bench: no FreshChat conversation for tenant {n}'s customer")
            _fc(fc).add_agent_message(conversation, f"đáp {count}", actor_id=AGENT_ID)
            pending_f[(n, f"đáp {count}")] = time.time()
        time.sleep(rng.uniform(0.05, 0.25))
    time.sleep(15)  # the last ones arrive
    z2f, f2z = [], []
    for n, (oa, fc) in enumerate(pairs):
        with fc.app.lock:
            for messages in _fc(fc).messages.values():
                for m in messages:
                    text = (m["message_parts"] or [{}])[0].get("text", {}).get("content", "")
                    if m["actor_type"] == "user" and (n, text) in pending_z:
                        z2f.append(_iso_seconds(m["created_time"]) - pending_z.pop((n, text)))
        with oa.lock:
            for sent in oa.sent:
                if (n, sent["text"]) in pending_f:
                    f2z.append(sent["time"] / 1000 - pending_f.pop((n, sent["text"])))
    return {
        "zalo_to_freshchat": {**summary(z2f), "undelivered": len(pending_z)},
        "freshchat_to_zalo": {**summary(f2z), "undelivered": len(pending_f)},
    }
