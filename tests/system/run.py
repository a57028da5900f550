"""The operator's story on a real systemd: a Debian bookworm container booted with systemd-nspawn, zfsync
installed with scripts/install, run as its unit, and tried the way an operator would. Each step prints one
line, `ok` or `FAILED: why`; the first failure ends the run with exit 1.

The root filesystem is made once with debootstrap and kept under ``$ZFSYNC_SYSTEST_CACHE`` (default
/var/cache/zfsync-systest); a stale or broken one is made again. The container shares the host's network,
so the simulators it runs are driven from here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ZFSYNC_SYSTEST_CACHE", "/var/cache/zfsync-systest"))
ROOTFS = CACHE / "rootfs"
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,util-linux,postgresql"
STAMP = f"bookworm minbase {PACKAGES}"
PREVIOUS_RELEASE = "5fddf78"  # the last release before schema step 2: the upgrade starts from it
ZALO, FRESHCHAT = "http://127.0.0.1:8701", "http://127.0.0.1:8702"
CHANNEL_ID = "3c1f1e7a-chan-0000-0000-000000000001"
ZFSYNC = "/opt/zfsync/bin/zfsync"
SHOPS = {  # a fleet's shops, each with its own simulators
    name: (f"http://127.0.0.1:87{n}1", f"http://127.0.0.1:87{n}2") for n, name in ((1, "an"), (2, "binh"), (3, "chi"))
}
PG_PORT = "55439"  # the container shares the host's network: not 5432, which the host may use
CONFIG = """\
[zalo]
app_id = "sim-app"
api_url = "{zalo}"
oauth_url = "{zalo}"
poll_interval = 1

[freshchat]
api_url = "{freshchat}"
channel_id = "{channel}"
hot_interval = 1

[store]
path = "{state}/zfsync.db"
"""


class StepFailed(Exception):
    pass


def sh(*args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if check and done.returncode != 0:
        raise StepFailed(f"{' '.join(args)} exited {done.returncode}: {(done.stderr or done.stdout).strip()[-800:]}")
    return done


def until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except (OSError, StepFailed, ValueError):
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise StepFailed(f"{what}: not within {timeout:.0f} s")


# --- the container -------------------------------------------------------------------------------------


def ensure_rootfs() -> None:
    stamp = CACHE / "stamp"
    installed_into = [p for p in ("opt/zfsync", "etc/zfsync", "var/lib/zfsync") if (ROOTFS / p).exists()]
    if (ROOTFS / "usr/bin/python3").exists() and stamp.exists() and stamp.read_text() == STAMP and not installed_into:
        return  # a cache with an install in it is stale: the containers run on throwaway snapshots of it
    shutil.rmtree(ROOTFS, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    sh("debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(ROOTFS))
    (ROOTFS / "etc/systemd/system/console-getty.service").symlink_to("/dev/null")
    stamp.write_text(STAMP)


def prepare_rootfs() -> None:
    """This tree, the previous release, and what pip needs to reach the package index from inside."""
    for name in ("zfsync-src", "zfsync-previous"):
        shutil.rmtree(ROOTFS / "opt" / name, ignore_errors=True)
        (ROOTFS / "opt" / name).mkdir(parents=True)
    files = sh("git", "ls-files", "-z", cwd=REPO).stdout.split("\0")
    for name in filter(None, files):
        source, target = REPO / name, ROOTFS / "opt/zfsync-src" / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    archive = subprocess.run(["git", "archive", PREVIOUS_RELEASE], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(ROOTFS / "opt/zfsync-previous")], input=archive, check=True)
    for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf", "/etc/xdg/pip", "/root/.config/pip"):
        source = Path(path)
        if source.is_dir():
            shutil.copytree(source, ROOTFS / path.lstrip("/"), dirs_exist_ok=True)
        elif source.exists():
            (ROOTFS / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, ROOTFS / path.lstrip("/"))


class Container:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def boot(self) -> None:
        self.process = subprocess.Popen(
            # --ephemeral: a throwaway snapshot of the cached root filesystem, so every run starts bare.
            [
                "systemd-nspawn",
                "-D",
                str(ROOTFS),
                "--ephemeral",
                "--boot",
                "--register=no",
                "--keep-unit",
                "--console=passive",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def init_pid() -> int:
            children = sh("pgrep", "-P", str(self.process.pid), check=False).stdout.split()  # type: ignore[union-attr]
            return int(children[0]) if children else 0

        self.pid = until(init_pid, 30, "the container's init started")
        until(
            lambda: self.run("systemctl", "is-system-running", check=False).stdout.strip() in ("running", "degraded"),
            60,
            "the container's systemd is up",
        )

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh("nsenter", "-t", str(self.pid), "-a", "--", *args, check=check, input=stdin)

    def write(self, path: str, text: str) -> None:
        self.run("sh", "-c", f"cat > {path}", stdin=text)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


# --- talking to the simulators ------------------------------------------------------------------------


def sim(base: str, action: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/_sim/{action}", data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def sim_media(base: str, data: bytes, name: str, content_type: str) -> str:
    """A file the simulator serves; returns its URL."""
    query = urllib.parse.urlencode({"name": name, "content_type": content_type})
    request = urllib.request.Request(f"{base}/_sim/media?{query}", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["url"])


def picture() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((12, 12), 60).convert("RGB").save(out, "PNG")
    return out.getvalue()


def customer_photos(user: str) -> int:
    state = sim(FRESHCHAT, "state")
    ids = {u["id"] for u in state["users"] if u["reference_id"] == f"zalo-{user}"}
    return sum(
        1
        for c in state["conversations"]
        if c["user_id"] in ids
        for m in c["messages"]
        for p in m["message_parts"]
        if "image" in p
    )


def customer_texts(user: str, freshchat: str = FRESHCHAT) -> list[str]:
    state = sim(freshchat, "state")
    ids = {u["id"] for u in state["users"] if u["reference_id"] == f"zalo-{user}"}
    return [
        p["text"]["content"]
        for c in state["conversations"]
        if c["user_id"] in ids
        for m in c["messages"]
        if m["actor_type"] == "user"
        for p in m["message_parts"]
        if "text" in p
    ]


def sent_texts(user: str, zalo: str = ZALO) -> list[str]:
    return [s["text"] for s in sim(zalo, "sent")["sent"] if s["user_id"] == user]


# --- the story ----------------------------------------------------------------------------------------


class Story:
    def __init__(self, box: Container):
        self.box = box
        self.count = 0

    def zfsync(self, *args: str, instance: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
        config = f"/etc/zfsync/{instance + '/' if instance else ''}config.toml"
        return self.box.run("runuser", "-u", "zfsync", "--", ZFSYNC, "--config", config, *args, check=check)

    def configure(self, instance: str = "") -> None:
        etc = f"/etc/zfsync/{instance}" if instance else "/etc/zfsync"
        state = f"/var/lib/zfsync/{instance}" if instance else "/var/lib/zfsync"
        text = CONFIG.format(zalo=ZALO, freshchat=FRESHCHAT, channel=CHANNEL_ID, state=state)
        self.box.write(f"{etc}/config.toml", text)
        self.box.write(f"{etc}/zfsync.env", "ZFSYNC_ZALO_APP_SECRET=sim-secret\nZFSYNC_FRESHCHAT_API_KEY=sim-key\n")

    def setup(self, instance: str = "") -> None:
        """What an operator's Ansible does: `zfsync setup --non-interactive`, secrets in the environment,
        over the files the installer left (kept as backups), starting the unit."""
        etc = f"/etc/zfsync/{instance}" if instance else "/etc/zfsync"
        token = sim(ZALO, "refresh_token", {})["refresh_token"]
        done = self.box.run(
            "env",
            "ZFSYNC_FRESHCHAT_API_KEY=sim-key",
            "ZFSYNC_ZALO_APP_SECRET=sim-secret",
            f"ZFSYNC_SETUP_ZALO_REFRESH_TOKEN={token}",
            ZFSYNC,
            "--config",
            f"{etc}/config.toml",
            "setup",
            "--non-interactive",
            "--freshchat-api-url",
            FRESHCHAT,
            "--channel-id",
            CHANNEL_ID,
            "--zalo-app-id",
            "sim-app",
            "--redirect-uri",
            "https://example.com/zalo-callback",
            "--zalo-api-url",
            ZALO,
            "--zalo-oauth-url",
            ZALO,
            "--yes",
            "--force",
            "--start",
        )
        if "sim-key" in done.stdout or "sim-secret" in done.stdout:
            raise StepFailed("zfsync setup printed a secret")
        modes = self.box.run("stat", "-c", "%a %U:%G", f"{etc}/config.toml", f"{etc}/zfsync.env").stdout.split("\n")
        if [m for m in modes if m] != ["640 root:zfsync"] * 2:
            raise StepFailed(f"zfsync setup wrote its files as {modes}, not 640 root:zfsync")

    def authorise(self, instance: str = "") -> None:
        token = sim(ZALO, "refresh_token", {})["refresh_token"]
        self.zfsync("auth", "zalo", f"--refresh-token={token}", instance=instance)

    def both_ways(self, user: str, zalo: str = ZALO, freshchat: str = FRESHCHAT) -> None:
        """A customer writes, an agent answers: each arrives exactly once."""
        self.count += 1
        text = f"xin chào {self.count}"
        sim(zalo, "customer_message", {"user_id": user, "name": "Khách", "text": text})
        until(lambda: text in customer_texts(user, freshchat), 30, f"'{text}' reached FreshChat")
        reply = f"dạ {self.count}"
        sim(freshchat, "agent_reply", {"reference_id": f"zalo-{user}", "text": reply})
        until(lambda: reply in sent_texts(user, zalo), 30, f"'{reply}' reached Zalo")
        if customer_texts(user, freshchat).count(text) != 1 or sent_texts(user, zalo).count(reply) != 1:
            raise StepFailed(f"a message arrived twice: {customer_texts(user, freshchat)} {sent_texts(user, zalo)}")

    def main_pid(self, unit: str) -> int:
        return int(self.box.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout.strip() or 0)

    def active(self, unit: str) -> bool:
        return self.box.run("systemctl", "is-active", unit, check=False).stdout.strip() == "active"

    def warnings(self, unit: str, since: str) -> str:
        return self.box.run(
            "journalctl", "-u", unit, "-p", "warning", "--since", since, "--no-pager", "-q", check=False
        ).stdout.strip()


def steps(story: Story) -> list[tuple[str, Callable[[], None]]]:
    box = story.box
    user = "2512007384617209999"
    started: dict[str, str] = {}

    def simulators() -> None:
        box.run("systemd-run", "--unit=zfsync-sim", "--property=Type=simple", ZFSYNC, "sim")
        until(lambda: sim(ZALO, "sent"), 30, "the simulators answer")

    def install_previous() -> None:
        box.run("/opt/zfsync-previous/scripts/install")

    def run_previous() -> None:
        story.configure()
        story.authorise()
        box.run("systemctl", "enable", "--now", "zfsync")
        story.both_ways(user)

    def upgrade() -> None:
        sim(ZALO, "customer_message", {"user_id": user, "name": "Khách", "text": "written during the upgrade"})
        box.run("/opt/zfsync-src/scripts/install")
        box.run("systemctl", "restart", "zfsync")
        until(lambda: "written during the upgrade" in customer_texts(user), 30, "the upgrade's message arrived")
        if customer_texts(user).count("written during the upgrade") != 1:
            raise StepFailed("a message arrived twice across the upgrade")
        story.both_ways(user)

    def started_only_after_ready() -> None:
        started["since"] = box.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
        box.run("systemctl", "restart", "zfsync")  # Type=notify: returns once READY=1 came
        if not story.active("zfsync"):
            raise StepFailed("zfsync is not active after start")
        status_text = box.run("systemctl", "show", "-p", "StatusText", "--value", "zfsync").stdout.strip()
        if "zalo OK" not in status_text:
            raise StepFailed(f"the unit's STATUS line is {status_text!r}")

    def check_as_operator() -> None:
        done = story.zfsync("check")
        if "freshchat" not in done.stdout:
            raise StepFailed(f"zfsync check said: {done.stdout}")

    def no_warning_at_start() -> None:
        story.both_ways(user)
        found = story.warnings("zfsync", started["since"])
        if found:
            raise StepFailed(f"warnings in normal operation: {found[:500]}")

    def slow_photo_keeps_the_journal_quiet() -> None:
        # One customer's photo is slow to come from the CDN (18 s before its first byte: the simulators in the
        # container are the previous release's, started before the upgrade, and a latency fault is what they
        # play) while another customer and an agent talk: they are not held up, and the journal stays quiet.
        since = box.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
        url = sim_media(ZALO, picture(), "anh.png", "image/png")
        sim(ZALO, "faults", {"path": "/media/", "kind": "latency", "seconds": 18, "count": 1})
        slow = "2512007384617200001"
        sim(ZALO, "customer_message", {"user_id": slow, "name": "Khách", "type": "photo", "url": url, "thumb": url})
        until(lambda: "zalo_messages_queued" in journal(since), 30, "the photo was queued")
        for _ in range(2):
            story.both_ways(user)
        if customer_photos(slow):
            raise StepFailed("the slow photo arrived already: the step measured nothing")
        until(lambda: customer_photos(slow), 60, "the slow photo arrived")
        found = story.warnings("zfsync", since)
        if found:
            raise StepFailed(f"warnings while a photo was slow: {found[:500]}")
        # Any line, ours or a library's, with its numbers and ids taken out: none may come every tick.
        lines = Counter(re.sub(r"[0-9a-f]{8,}|\d+(\.\d+)?", "#", line) for line in journal(since).splitlines())
        repeated = {line[:120]: n for line, n in lines.items() if n >= 15}
        if repeated:
            raise StepFailed(f"lines repeated while a photo was slow: {repeated}")

    def journal(since: str) -> str:
        return box.run("journalctl", "-u", "zfsync", "--since", since, "-o", "cat", "--no-pager", "-q").stdout

    def fault_is_logged() -> None:
        since = box.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
        sim(ZALO, "faults", {"path": "/v2.0/oa/listrecentchat", "kind": "status", "code": 503, "count": 3})
        until(
            lambda: "side_unhealthy" in story.warnings("zfsync", since), 30, "the fault reached journalctl -p warning"
        )
        story.both_ways(user)

    def traceback_reaches_the_journal() -> None:
        crash = (
            "from zfsync import log; log.setup('info', 'auto'); import structlog\n"
            "try:\n    raise RuntimeError('disk I/O error')\n"
            "except RuntimeError:\n    structlog.get_logger('zfsync.daemon').exception('cycle_crashed', loop='zalo')\n"
        )
        box.run("systemd-run", "--unit=zfsync-crash", "--wait", "/opt/zfsync/bin/python", "-c", crash)
        errors = box.run("journalctl", "-u", "zfsync-crash", "-p", "err", "--no-pager", "-q").stdout
        if "Traceback" not in errors or "RuntimeError: disk I/O error" not in errors:
            raise StepFailed(f"journalctl -p err shows: {errors[:500]!r}")

    def sigkill_restarts() -> None:
        before = story.main_pid("zfsync")
        box.run("systemctl", "kill", "-s", "KILL", "zfsync")
        sim(ZALO, "customer_message", {"user_id": user, "name": "Khách", "text": "written while killed"})
        until(
            lambda: story.active("zfsync") and story.main_pid("zfsync") not in (0, before), 60, "restart after SIGKILL"
        )
        until(lambda: "written while killed" in customer_texts(user), 30, "the message written while killed arrived")
        story.both_ways(user)

    def watchdog_restarts_a_hung_loop() -> None:
        before = story.main_pid("zfsync")
        show = ["systemctl", "show", "--timestamp=unix", "-p", "WatchdogUSec", "--value", "zfsync"]
        watchdog = box.run(*show).stdout.strip()
        seconds = {"min": 60.0, "s": 1.0}
        limit = sum(float(n) * seconds[u] for n, u in re.findall(r"([0-9.]+)(min|s)", watchdog)) or 120.0
        box.run("systemctl", "kill", "-s", "STOP", "zfsync")
        stopped = time.monotonic()
        until(
            lambda: story.active("zfsync") and story.main_pid("zfsync") not in (0, before),
            limit + 60,
            f"the watchdog ({watchdog}) restarted it",
        )
        if time.monotonic() - stopped > limit + 30:
            raise StepFailed(f"restarted {time.monotonic() - stopped:.0f} s after the hang; WatchdogSec is {watchdog}")
        story.both_ways(user)

    def security() -> None:
        scores: list[str] = []
        for unit in ("zfsync.service", "zfsync@shop.service"):
            out = box.run("systemd-analyze", "security", "--no-pager", unit, check=False).stdout
            line = next((x for x in out.splitlines() if "Overall exposure level" in x), "")
            score = float(line.split(":")[1].split()[0]) if line else 99.0
            if score > 2.0:
                raise StepFailed(f"{unit}: {line or out[-300:]}")
            scores.append(f"{unit} {score}")
        print(f"systemtest:   exposure: {', '.join(scores)}")

    def backup_and_restore() -> None:
        story.zfsync("backup", "/var/lib/zfsync/backup.db")
        box.run("systemctl", "stop", "zfsync")
        box.run(
            "sh",
            "-c",
            "cd /var/lib/zfsync && mv backup.db zfsync.db && rm -f zfsync.db-wal zfsync.db-shm",
        )
        box.run("systemctl", "start", "zfsync")
        story.both_ways(user)
        texts = customer_texts(user)
        if len(texts) != len(set(texts)):
            raise StepFailed(f"a message arrived twice after the restore: {texts}")

    def two_instances() -> None:
        for name in ("shop", "cafe"):
            box.run("/opt/zfsync-src/scripts/install", "--instance", name)
            story.setup(name)  # writes the instance's files, authorises its OA, starts zfsync@name
        box.run("systemctl", "stop", "zfsync")  # the instances alone now, each with its own store and tokens
        for name in ("shop", "cafe"):
            if not story.active(f"zfsync@{name}"):
                raise StepFailed(f"zfsync@{name} is not active")
            if box.run("test", "-s", f"/var/lib/zfsync/{name}/zfsync.db", check=False).returncode != 0:
                raise StepFailed(f"zfsync@{name} has no store of its own")
        box.run("systemctl", "stop", "zfsync@cafe")
        story.both_ways("2512007384617200001")  # carried by shop alone
        box.run("systemctl", "stop", "zfsync@shop")

    def fleet_of_three() -> None:
        # An integrator's fleet: the zfsync@ unit unchanged, its config a fleet's, three shops taken in with
        # `zfsync tenant add`, each with its own simulators (ports 87x1/87x2), all served by one daemon.
        box.run("/opt/zfsync-src/scripts/install", "--instance", "fleet")
        key = box.run(ZFSYNC, "tenant", "rekey", "--new-key").stdout.strip()
        box.write("/etc/zfsync/fleet/config.toml", '[fleet]\n[store]\npath = "/var/lib/zfsync/fleet/fleet.db"\n')
        box.write("/etc/zfsync/fleet/zfsync.env", f"ZFSYNC_SECRETS_KEY={key}\n")
        box.run("chown", "root:zfsync", "/etc/zfsync/fleet/config.toml", "/etc/zfsync/fleet/zfsync.env")
        box.run("chmod", "640", "/etc/zfsync/fleet/config.toml", "/etc/zfsync/fleet/zfsync.env")
        for name, (zalo, freshchat) in SHOPS.items():
            ports = ["--zalo-port", zalo.rsplit(":", 1)[1], "--freshchat-port", freshchat.rsplit(":", 1)[1]]
            box.run("systemd-run", f"--unit=zfsync-sim-{name}", "--property=Type=simple", ZFSYNC, "sim", *ports)
            until(lambda z=zalo: sim(z, "sent"), 30, f"{name}'s simulators answer")
            shop = f"/etc/zfsync/fleet/{name}"
            box.run("mkdir", "-p", shop)
            box.write(
                f"{shop}/config.toml", CONFIG.format(zalo=zalo, freshchat=freshchat, channel=CHANNEL_ID, state="/tmp")
            )
            box.write(f"{shop}/zfsync.env", "ZFSYNC_ZALO_APP_SECRET=sim-secret\nZFSYNC_FRESHCHAT_API_KEY=sim-key\n")
            box.run("chown", "-R", "root:zfsync", shop)
            box.run("chmod", "-R", "g+rX,o-rwx", shop)
            story.zfsync("tenant", "add", name, "--config", f"{shop}/config.toml", "--no-check", instance="fleet")
            token = sim(zalo, "refresh_token", {})["refresh_token"]
            story.zfsync("auth", "zalo", "--tenant", name, f"--refresh-token={token}", instance="fleet")
        box.run("systemctl", "start", "zfsync@fleet")
        if not story.active("zfsync@fleet"):
            raise StepFailed("zfsync@fleet is not active")
        customer = "2512007384617208888"  # the same customer id in every shop: each shop's stays its own
        until(lambda: story.zfsync("status", instance="fleet", check=False).returncode == 0, 60, "every tenant healthy")
        for zalo, freshchat in SHOPS.values():
            story.both_ways(customer, zalo, freshchat)
        files = "/var/lib/zfsync/fleet/fleet.db*"
        clear = box.run("sh", "-c", f"grep -a -l -e sim-key -e sim-secret {files}", check=False).stdout
        if clear.strip():
            raise StepFailed(f"the fleet's store holds a secret in clear: {clear.strip()}")
        box.run("systemctl", "stop", "zfsync@fleet")

    def fleet_on_postgresql() -> None:
        # Two VMs' worth: zfsync@fleet and zfsync@fleet2, the same fleet config, one PostgreSQL database
        # from Debian's package; the three shops of the step before, taken in again, spread over both; one
        # daemon killed, the other serves all three within two lease periods.
        box.run("pg_dropcluster", "--stop", "15", "main", check=False)
        box.run("pg_createcluster", "15", "fleet", "--port", PG_PORT, "--start")
        password = "pg-secret-of-the-fleet"
        box.run(
            "runuser", "-u", "postgres", "--", "psql", "-q", "-p", PG_PORT,
            "-c", f"CREATE ROLE zfsync LOGIN PASSWORD '{password}'",
        )  # fmt: skip
        box.run("runuser", "-u", "postgres", "--", "createdb", "-p", PG_PORT, "-O", "zfsync", "fleet")
        box.run("/opt/zfsync/bin/pip", "install", "--quiet", "/opt/zfsync-src[postgres]")
        key = box.run(ZFSYNC, "tenant", "rekey", "--new-key").stdout.strip()
        for instance in ("pgfleet", "pgfleet2"):
            box.run("/opt/zfsync-src/scripts/install", "--instance", instance)
            config = f'[fleet]\n[store]\nurl = "postgresql://zfsync@127.0.0.1:{PG_PORT}/fleet"\n'
            box.write(f"/etc/zfsync/{instance}/config.toml", config)
            box.write(
                f"/etc/zfsync/{instance}/zfsync.env", f"ZFSYNC_SECRETS_KEY={key}\nZFSYNC_STORE_PASSWORD={password}\n"
            )
            box.run("chown", "root:zfsync", f"/etc/zfsync/{instance}/config.toml", f"/etc/zfsync/{instance}/zfsync.env")
            box.run("chmod", "640", f"/etc/zfsync/{instance}/config.toml", f"/etc/zfsync/{instance}/zfsync.env")
        for name, (zalo, _) in SHOPS.items():
            config = f"/etc/zfsync/fleet/{name}/config.toml"
            story.zfsync("tenant", "add", name, "--config", config, "--no-check", instance="pgfleet")
            token = sim(zalo, "refresh_token", {})["refresh_token"]
            story.zfsync("auth", "zalo", "--tenant", name, f"--refresh-token={token}", instance="pgfleet")
        box.run("systemctl", "start", "zfsync@pgfleet", "zfsync@pgfleet2")
        for unit in ("zfsync@pgfleet", "zfsync@pgfleet2"):
            if not story.active(unit):
                raise StepFailed(f"{unit} is not active")

        def owners() -> list[str]:
            listed = story.zfsync("tenant", "list", "--json", instance="pgfleet", check=False)
            return [t["owner"] for t in json.loads(listed.stdout)] if listed.returncode == 0 else []

        until(lambda: len(set(owners()) - {""}) == 2 and all(owners()), 60, "the shops spread over both daemons")
        customer = "2512007384617207777"
        for zalo, freshchat in SHOPS.values():
            story.both_ways(customer, zalo, freshchat)
        # Killed, not stopped: it lets nothing go; `stop` only cancels the restart (RestartSec=5) a VM
        # that died would never get.
        box.run("systemctl", "kill", "--signal=SIGKILL", "zfsync@pgfleet2")
        stopped_at = time.monotonic()
        box.run("systemctl", "stop", "zfsync@pgfleet2")
        until(lambda: len(set(owners())) == 1 and all(owners()), 40, "zfsync@pgfleet serves every shop")
        taken_over = time.monotonic() - stopped_at
        if taken_over > 30:
            raise StepFailed(f"the killed daemon's shops waited {taken_over:.0f} s for an owner")
        for zalo, freshchat in SHOPS.values():
            story.both_ways(customer, zalo, freshchat)
        # Every shop healthy after the takeover (a takeover once counted as a start and, after a claim and a
        # balancing move, looked like a crash loop: degraded for ten minutes).
        until(lambda: story.zfsync("status", instance="pgfleet", check=False).returncode == 0, 60, "every shop healthy")
        box.run("systemctl", "stop", "zfsync@pgfleet")

    def downgrade_is_refused() -> None:
        box.run("/opt/zfsync-previous/scripts/install")
        refused = box.run(
            "runuser", "-u", "zfsync", "--", ZFSYNC, "--config", "/etc/zfsync/config.toml", "status", check=False
        )
        output = refused.stdout + refused.stderr
        if refused.returncode == 0 or "upgrade zfsync" not in output:
            raise StepFailed(f"the old version did not refuse the newer store: {output[-300:]}")
        box.run("/opt/zfsync-src/scripts/install")

    return [
        (f"scripts/install of the previous release ({PREVIOUS_RELEASE}) on a bare system", install_previous),
        ("simulators started in the container", simulators),
        ("auth as the service user, systemctl enable --now, traffic both ways", run_previous),
        ("install this tree over it: the migration applies, nothing lost", upgrade),
        ("zfsync check as the service user", check_as_operator),
        ("systemctl restart reaches active only after READY, with a STATUS line", started_only_after_ready),
        ("both directions carry messages; journalctl -p warning is empty", no_warning_at_start),
        (
            "a slow photo holds up no one; journalctl -p warning stays empty, no line repeats",
            slow_photo_keeps_the_journal_quiet,
        ),
        ("an injected fault shows in journalctl -p warning", fault_is_logged),
        ("a crash's traceback reaches the journal at error priority", traceback_reaches_the_journal),
        ("SIGKILL: restarted, nothing lost", sigkill_restarts),
        ("SIGSTOP: the watchdog restarts the hung daemon", watchdog_restarts_a_hung_loop),
        ("zfsync backup while running; restore; no duplicates", backup_and_restore),
        (
            "two instances set up by `zfsync setup --non-interactive`, zfsync@shop and zfsync@cafe side by side",
            two_instances,
        ),
        ("a fleet of three shops in zfsync@fleet: tenant add, auth --tenant, one daemon, apart", fleet_of_three),
        (
            "the shops on Debian's PostgreSQL, zfsync@pgfleet and zfsync@pgfleet2 sharing them; one killed, "
            "the other takes its shops within 30 s",
            fleet_on_postgresql,
        ),
        ("systemd-analyze security of the installed units <= 2.0", security),
        ("a downgrade is refused with the fix", downgrade_is_refused),
    ]


def main() -> int:
    if os.geteuid() != 0 or not shutil.which("systemd-nspawn") or not shutil.which("debootstrap"):
        print("systemtest: skipped: needs root, systemd-nspawn and debootstrap (scripts/setup installs them as root)")
        return 0 if not os.environ.get("CI") else 1
    started = time.monotonic()
    try:
        ensure_rootfs()
        prepare_rootfs()
    except (StepFailed, subprocess.CalledProcessError, OSError) as exc:
        print(f"systemtest: the container could not be prepared: {exc}")
        return 1
    box = Container()
    failed = False
    try:
        box.boot()
        story = Story(box)
        for name, step in steps(story):
            t0 = time.monotonic()
            try:
                step()
            except (StepFailed, OSError, ValueError) as exc:
                print(f"systemtest: {name}: FAILED: {exc}", flush=True)
                failed = True
                break
            print(f"systemtest: {name}: ok ({time.monotonic() - t0:.0f} s)", flush=True)
    except StepFailed as exc:
        print(f"systemtest: the container did not boot: {exc}")
        failed = True
    finally:
        box.stop()
    print(f"systemtest: {'FAILED' if failed else 'passed'} in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
