"""Crash-safety proof: the real daemon, SIGKILLed at random moments while messages flow both ways.

The simulators run in this process; the daemon runs as a subprocess and is killed with SIGKILL (no
handler, no cleanup) after a seeded random time, then started again, over and over. Traffic keeps
arriving meanwhile. At the end the daemon runs until both sides are drained, and every message is checked:
each customer message must appear in FreshChat exactly once, and each agent reply on Zalo exactly once,
in the order they were written per user.

With ``--postgres`` the store is a throwaway PostgreSQL database; with ``--standby`` as well, three daemons
share it (one active, two standing by) and each kill hits whichever is active at that moment, so every
kill is a failover: the summary gives how many, and the longest time without an active daemon.

What is written, and how what arrived is matched to it, is `devtools.traffic`.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devtools import pgcluster
from devtools.pgcluster import Cluster
from devtools.traffic import Traffic
from zfsync.cli.demo import Demo, wait_until
from zfsync.runtime.status import ACTIVE_KEY


@dataclass
class Report:
    seed: int
    modes: list[str] = field(default_factory=list)
    kills: int = 0
    zalo_to_freshchat: int = 0
    freshchat_to_zalo: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    failovers: int = 0
    longest_gap: float = 0.0  # seconds from a kill of the active daemon until another one was active

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order)

    def render(self) -> str:
        return (
            f"crashtest seed={self.seed}{''.join(f' --{m}' for m in self.modes)}: {self.kills} SIGKILLs, "
            f"{self.zalo_to_freshchat} messages Zalo→FreshChat, {self.freshchat_to_zalo} FreshChat→Zalo, "
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, out of order {len(self.out_of_order)}, "
            + (
                f"{self.failovers} failovers, longest gap {self.longest_gap:.1f} s, "
                if {"standby", "fleet"} & set(self.modes)
                else ""
            )
            + f"{self.wall_seconds:.0f} s"
        )


class CrashTest(Traffic):
    def __init__(
        self,
        workdir: Path,
        seed: int,
        users: int,
        messages: int,
        ties: bool = False,
        id_mismatch: bool = False,
        postgres: Cluster | None = None,
        standby: bool = False,
        two_ids: bool = False,
        groups: int = 0,
    ):
        self.rng = random.Random(seed)
        flags = (
            ("ties", ties),
            ("id-mismatch", id_mismatch),
            ("two-ids", two_ids),
            ("postgres", postgres),
            ("standby", standby),
            (f"groups {groups}", groups),
        )
        self.report = Report(seed, modes=[m for m, on in flags if on])
        self.postgres = postgres
        self.running: list[subprocess.Popen[bytes]] = []  # the daemons of a standby run
        self.database = "crashtest"
        sync = "groups = true" if groups else ""
        if postgres is not None:
            self.demo = Demo(workdir, postgres.create_database(self.database), pgcluster.PASSWORD, sync)
        else:
            self.demo = Demo(workdir, sync=sync)
        # Zalo rows of one millisecond share it; sends answer ids the listings never show (sim modes).
        self.demo.zalo.modes.ties = ties
        self.demo.zalo.modes.id_mismatch = id_mismatch
        self.demo.zalo.modes.two_ids = two_ids  # a message's id in the conversation is not its feed id
        super().__init__(self.demo, self.rng, users, messages, groups)

    # --- the run -------------------------------------------------------------------------------------

    def run(self, kills: int) -> Report:
        started = time.monotonic()
        self.authorise()
        # The first start takes what Zalo already lists as history; traffic starts once it has looked.
        self.demo.start_daemon()
        self.wait_for_polling()
        per_round = max(1, (2 * self.messages) // max(1, kills))
        for _ in range(kills):
            if self.demo.daemon is None or self.demo.daemon.poll() is not None:
                self.demo.start_daemon()
                if self.postgres is not None and self.demo.daemon is not None:
                    # On PostgreSQL a new daemon first waits out a former holder's lease: kill it once it works.
                    self.wait_for_active([self.demo.daemon], previous=None, timeout=60)
            self.traffic(per_round)
            time.sleep(self.rng.uniform(0.05, 1.5))  # the moment of the kill: anywhere in a cycle
            assert self.demo.daemon is not None
            self.demo.daemon.send_signal(signal.SIGKILL)
            self.demo.daemon.wait()
            self.report.kills += 1
            self.demo.daemon = None
        while self.z_count < self.messages or self.f_count < self.messages:
            written = self.z_count + self.f_count
            self.traffic(50)
            if self.z_count + self.f_count == written:
                # Agents reply only in open conversations: if the kills left none, a daemon must open some.
                if self.demo.daemon is None:
                    self.demo.start_daemon()
                time.sleep(0.2)
        if self.demo.daemon is None:
            self.demo.start_daemon()
        self.drain()
        self.demo.stop_daemon()
        self.check()
        self.report.wall_seconds = time.monotonic() - started
        return self.report

    def run_standby(self, kills: int, daemons: int = 3) -> Report:
        """Several daemons on one PostgreSQL store; each kill hits the active one, and a new daemon joins
        the standbys in its place."""
        started = time.monotonic()
        self.authorise()
        running = self.running = [self.demo.spawn() for _ in range(daemons)]
        active = self.wait_for_active(running, previous=None, timeout=60)
        # The first start takes what Zalo already lists as history; traffic starts once it has looked.
        self.wait_for_polling()
        per_round = max(1, (2 * self.messages) // max(1, kills))
        for _ in range(kills):
            self.traffic(per_round)
            time.sleep(self.rng.uniform(0.05, 3.0))  # the moment of the kill: anywhere in the active's work
            victim = next(p for p in running if p.pid == active)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed_at = time.monotonic()
            self.report.kills += 1
            running = self.running = [p for p in running if p is not victim] + [self.demo.spawn()]
            active = self.wait_for_active(running, previous=active, timeout=120)
            self.report.failovers += 1
            self.report.longest_gap = max(self.report.longest_gap, time.monotonic() - killed_at)
        while self.z_count < self.messages or self.f_count < self.messages:
            self.traffic(50)
        self.drain()
        self.check()
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            process.wait(timeout=60)
        self.report.wall_seconds = time.monotonic() - started
        return self.report

    def authorise(self) -> None:
        auth = self.demo.zfsync("auth", "zalo", f"--refresh-token={self.demo.zalo.mint_tokens()[1]}")
        if auth.returncode != 0:
            raise SystemExit(f"crashtest: authorisation failed: {auth.stderr.strip()}")

    def wait_for_polling(self) -> None:
        if not wait_until(lambda: self.demo.zalo.requests.get("/v2.0/oa/listrecentchat", 0) >= 2, timeout=60):
            raise SystemExit("crashtest: the (active) daemon did not start polling; see its log")

    def wait_for_active(self, running: list[subprocess.Popen[bytes]], previous: int | None, timeout: float) -> int:
        """The pid of the daemon of ``running`` that announced itself active (other than ``previous``)."""
        assert self.postgres is not None
        pids = {p.pid for p in running}
        found: list[int] = []

        def announced() -> bool:
            rows = self.postgres.sql(f"SELECT value FROM state WHERE key = '{ACTIVE_KEY}'", self.database)  # type: ignore[union-attr]
            pid = int(json.loads(str(rows[0][0]))["pid"]) if rows else None
            if pid is not None and pid != previous and pid in pids:
                found.append(pid)
                return True
            return False

        if not wait_until(announced, timeout=timeout):
            raise SystemExit(f"crashtest: no daemon became active within {timeout:.0f} s; see {self.demo.log_path}")
        return found[-1]

    def drain(self, patience: float = 120.0) -> None:
        """Let the daemon run until everything written has arrived. A backlog drains at the quotas' pace, so
        it gives up only when nothing new arrived for ``patience`` seconds (longer than a quota window)."""
        progress_at = time.monotonic()
        seen = -1
        settled_at: float | None = None
        while time.monotonic() - progress_at < patience:
            arrived = self.arrived()
            count = sum(len(v) for side in arrived for v in side.values())
            if count != seen:
                seen, progress_at = count, time.monotonic()
            complete = all(
                set(self.written[u]) <= set(arrived[0][u]) and set(self.replied[u]) <= set(arrived[1][u])
                for u in self.users
            )
            if complete:
                settled_at = settled_at or time.monotonic()
                if time.monotonic() - settled_at > 3.0:  # a few more cycles: would anything come twice?
                    return
            time.sleep(0.2)

    def check(self) -> None:
        check(self, self.report)

    def close(self) -> None:
        for process in self.running:
            if process.poll() is None:
                process.kill()
                process.wait()
        self.demo.close()


def check(traffic: Traffic, report: Report, prefix: str = "") -> None:
    """Add to ``report`` what of ``traffic`` arrived: each message once, in the order written per user
    (a problem named with ``prefix``: a fleet's tenant)."""
    z, f = traffic.arrived()
    for expected, got in ((traffic.written, z), (traffic.replied, f)):
        for user in traffic.users:
            counts = Counter(got[user])
            report.lost += [f"{prefix}{m}" for m in expected[user] if counts[m] == 0]
            report.duplicated += [f"{prefix}{m}" for m, n in counts.items() if n > 1]
            if [m for m in got[user] if m in set(expected[user])] != [m for m in expected[user] if counts[m] > 0]:
                report.out_of_order.append(f"{prefix}{user}")
    report.zalo_to_freshchat += sum(len(v) for v in z.values())
    report.freshchat_to_zalo += sum(len(v) for v in f.values())
    # Images must not double either: one photo send per image reply.
    with traffic.demo.zalo.lock:
        sent = [*traffic.demo.zalo.sent, *traffic.demo.zalo.gmf.sent]
        photos = sum(1 for s in sent if s.get("kind") == "photo")
    if photos != traffic.image_replies:
        problems = report.duplicated if photos > traffic.image_replies else report.lost
        problems.append(f"{prefix}photos sent {photos}, expected {traffic.image_replies}")


def finish(report: Report, json_path: Path | None) -> int:
    """Print the report (and write it as JSON); the exit status: 0 when nothing was lost, doubled or reordered."""
    print(report.render())
    problems = {"lost": report.lost, "duplicated": report.duplicated, "out of order": report.out_of_order}
    for label, items in problems.items():
        if items:
            print(f"  {label}: {', '.join(items[:20])}{' ...' if len(items) > 20 else ''}")
    if json_path:
        json_path.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/crashtest", description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs (default 100)")
    parser.add_argument("--messages", type=int, default=2000, help="messages each way (default 2000)")
    parser.add_argument("--users", type=int, default=100, help="Zalo users (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; the same seed replays the same run")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--ties", action="store_true", help="Zalo rows of one millisecond share their time")
    parser.add_argument(
        "--id-mismatch", action="store_true", help="Zalo's send answers ids unlike the ids its listings show"
    )
    parser.add_argument(
        "--two-ids", action="store_true", help="Zalo's conversation listing shows each message under another id"
    )
    parser.add_argument(
        "--groups", type=int, default=0, help="Zalo group chats (3 members each) among the users, sync.groups on"
    )
    parser.add_argument("--postgres", action="store_true", help="the store on a throwaway PostgreSQL")
    parser.add_argument(
        "--standby", action="store_true", help="three daemons share the PostgreSQL store; every kill is a failover"
    )
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="a fleet on PostgreSQL: --tenants tenants, 2 daemons and a third halfway, each kill a random daemon",
    )
    parser.add_argument("--tenants", type=int, default=50, help="with --fleet: tenants (default 50)")
    args = parser.parse_args(argv)
    if args.fleet:
        return _fleet(args)
    if args.standby and not args.postgres:
        parser.error("--standby needs --postgres: only a PostgreSQL store can be shared")
    try:
        cluster = pgcluster.Cluster() if args.postgres else None
    except pgcluster.Unavailable as exc:
        parser.error(f"--postgres: {exc}")
    with tempfile.TemporaryDirectory(prefix="zfsync-crashtest-") as workdir:
        test = CrashTest(
            Path(workdir),
            args.seed,
            args.users,
            args.messages,
            args.ties,
            args.id_mismatch,
            cluster,
            args.standby,
            args.two_ids,
            args.groups,
        )
        try:
            report = test.run_standby(args.kills) if args.standby else test.run(args.kills)
        finally:
            test.close()
            if cluster is not None:
                cluster.stop()
    return finish(report, args.json)


def _fleet(args: argparse.Namespace) -> int:
    from devtools.fleetcrash import FleetCrashTest

    try:
        cluster = pgcluster.Cluster()
    except pgcluster.Unavailable as exc:
        raise SystemExit(f"crashtest --fleet needs PostgreSQL: {exc}") from None
    per_tenant = max(10, args.messages // args.tenants)
    users = max(2, args.users // args.tenants)
    with tempfile.TemporaryDirectory(prefix="zfsync-crashtest-fleet-") as workdir:
        test = FleetCrashTest(Path(workdir), args.seed, args.tenants, users, per_tenant, cluster)
        try:
            report = test.run(args.kills)
        finally:
            test.close()
            cluster.stop()
    return finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
