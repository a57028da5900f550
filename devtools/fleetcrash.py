"""`scripts/crashtest --fleet`: daemons sharing a fleet of tenants on PostgreSQL, SIGKILLed at random.

Every tenant has its own simulators and traffic both ways (`devtools.traffic`). Two daemons start, a third
joins halfway (it must get its share); each kill hits a random live daemon, which is started again at
once. After each kill the tenants it held are watched until another daemon holds them: the longest such
wait is the longest time a tenant was unowned. At the end every tenant's messages are checked as in the
single-OA crash test: none lost, none doubled, none out of order.
"""

from __future__ import annotations

import functools
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools import pgcluster
from devtools.crashtest import Report, check
from devtools.pgcluster import Cluster
from devtools.traffic import Traffic
from zfsync.cli.demo import Demo, wait_until
from zfsync.domain import ZaloTokens
from zfsync.store import Store
from zfsync.store.secrets import Sealer, new_key
from zfsync.store.state import BASELINE_KEY

DATABASE = "fleetcrash"


class FleetCrashTest:
    def __init__(self, workdir: Path, seed: int, tenants: int, users: int, messages: int, cluster: Cluster):
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.report = Report(seed, modes=["fleet", "postgres"])
        self.cluster = cluster
        url = cluster.create_database(DATABASE)
        key = new_key()
        self.config = workdir / "fleet.toml"
        self.config.write_text(
            f'[fleet]\nquiet_after = 30\n[store]\nurl = "{url}"\n[log]\nformat = "json"\nlevel = "info"\n'
        )
        env = workdir / "zfsync.env"
        env.write_text(f"ZFSYNC_SECRETS_KEY={key}\nZFSYNC_STORE_PASSWORD={pgcluster.PASSWORD}\n")
        env.chmod(0o600)
        self.store = Store.open(url, pgcluster.PASSWORD, sealer=Sealer(key))
        self.traffic: dict[str, Traffic] = {}
        self.ids: dict[str, int] = {}
        for n in range(tenants):
            name = f"t{n:02d}"
            (workdir / name).mkdir()
            demo = Demo(workdir / name)
            secrets = {"ZFSYNC_ZALO_APP_SECRET": demo.zalo.app_secret, "ZFSYNC_FRESHCHAT_API_KEY": demo.fc.api_key}
            record = self.store.add_tenant(
                name, demo.config.read_text(), self.store.sealer.seal(json.dumps(secrets)), demo.zalo.app_id
            )
            access, refresh = demo.zalo.mint_tokens()
            self.store.for_tenant(record.id).save_tokens(ZaloTokens(access, refresh, 86400), time.time())
            self.ids[name] = record.id
            self.traffic[name] = Traffic(demo, random.Random(self.rng.random()), users, messages)
        self.running: list[subprocess.Popen[bytes]] = []
        self.logs = 0

    def spawn(self) -> subprocess.Popen[bytes]:
        self.logs += 1
        with (self.workdir / f"daemon-{self.logs}.log").open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "zfsync", "--config", str(self.config), "run"], stdout=sink, stderr=sink
            )
        self.running.append(process)
        return process

    def owners(self) -> dict[str, str]:
        rows = self.cluster.sql(
            "SELECT name, CASE WHEN lease_until > extract(epoch FROM clock_timestamp()) THEN owner ELSE '' END"
            " FROM tenant",
            DATABASE,
        )
        return {str(name): str(owner) for name, owner in rows}

    def run(self, kills: int) -> Report:
        started = time.monotonic()
        for _ in range(2):
            self.spawn()
        ready = wait_until(
            lambda: all(self.store.for_tenant(t).get_state(BASELINE_KEY) for t in self.ids.values()), timeout=300
        )
        if not ready:
            raise SystemExit(f"crashtest --fleet: not every tenant was polled; see {self.workdir}/daemon-*.log")
        rounds = max(1, kills)
        per_round = {name: max(1, (2 * t.messages) // rounds) for name, t in self.traffic.items()}
        for number in range(kills):
            if number == kills // 2:
                self.spawn()  # a daemon added halfway: it must get its share
                if not wait_until(lambda: self._newest_has_share(), timeout=90):
                    raise SystemExit("crashtest --fleet: the daemon added halfway got no tenants within 90 s")
            for name, traffic in self.traffic.items():
                traffic.traffic(per_round[name])
            time.sleep(self.rng.uniform(0.2, 3.0))
            victim = self.rng.choice([p for p in self.running if p.poll() is None])
            held = [n for n, owner in self.owners().items() if owner.endswith(f" {victim.pid}")]
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at = time.monotonic()
            self.running.remove(victim)
            self.report.kills += 1
            self.spawn()
            taken = wait_until(functools.partial(self._taken, held, victim.pid), timeout=120)
            gap = time.monotonic() - killed_at
            if not taken:
                raise SystemExit(f"crashtest --fleet: tenants {held} were not taken over within 120 s")
            self.report.failovers += 1 if held else 0
            self.report.longest_gap = max(self.report.longest_gap, gap if held else 0.0)
        for traffic in self.traffic.values():
            while traffic.z_count < traffic.messages or traffic.f_count < traffic.messages:
                written = traffic.z_count + traffic.f_count
                traffic.traffic(50)
                if traffic.z_count + traffic.f_count == written:
                    time.sleep(0.2)  # agents reply only in open conversations: the daemons open them
        self.drain()
        self.check()
        for process in self.running:
            process.send_signal(signal.SIGTERM)
        for process in self.running:
            process.wait(timeout=120)
        self.report.wall_seconds = time.monotonic() - started
        return self.report

    def _taken(self, held: list[str], victim: int) -> bool:
        owners = self.owners()
        return all(owners.get(n) and not owners[n].endswith(f" {victim}") for n in held)

    def _newest_has_share(self) -> bool:
        newest = self.running[-1].pid
        return sum(1 for o in self.owners().values() if o.endswith(f" {newest}")) >= len(self.ids) // 3

    def drain(self, patience: float = 180.0) -> None:
        progress_at, seen = time.monotonic(), -1
        while time.monotonic() - progress_at < patience:
            arrived = {n: t.arrived() for n, t in self.traffic.items()}
            count = sum(len(v) for z, f in arrived.values() for side in (z, f) for v in side.values())
            if count != seen:
                seen, progress_at = count, time.monotonic()
            complete = all(
                set(t.written[u]) <= set(arrived[n][0][u]) and set(t.replied[u]) <= set(arrived[n][1][u])
                for n, t in self.traffic.items()
                for u in t.users
            )
            if complete:
                time.sleep(5.0)  # a few more cycles: would anything come twice?
                return
            time.sleep(0.5)

    def check(self) -> None:
        for name, traffic in self.traffic.items():
            check(traffic, self.report, f"{name}:")

    def close(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.store.close()
        for traffic in self.traffic.values():
            traffic.demo.close()
