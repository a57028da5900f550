"""`zfsync demo`: the simulators, the real daemon as a subprocess, and a scripted conversation.

It authorises the daemon the way an operator does (`zfsync auth zalo --refresh-token`), starts `zfsync
run`, makes customers write on "Zalo" and an agent answer in "FreshChat", restarts the daemon halfway, and
prints each message as it crosses with its latency. It exits 0 only if every message arrived exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zfsync.domain import group_key, reference_id
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.runner import start
from zfsync.sim.zalo import ZaloSim

TIMEOUT = 20.0
DEMO_GROUP = "f414c8f76fa586fbdfb4"  # the Zalo group chat the demo shows

CONFIG = """\
[zalo]
app_id = "{app_id}"
api_url = "{zalo_url}"
oauth_url = "{zalo_url}"
poll_interval = 1

[freshchat]
api_url = "{freshchat_url}"
channel_id = "{channel_id}"
hot_interval = 1

[store]
path = "zfsync.db"
url = "{store_url}"

[log]
format = "json"
"""


class Demo:
    def __init__(self, workdir: Path, store_url: str = "", store_password: str = "", sync: str = ""):
        """``sync``: lines of a ``[sync]`` table for the daemon's config ("groups = true")."""
        self.workdir = workdir
        self.zalo_server, self.fc_server = start()
        self.zalo: ZaloSim = self.zalo_server.app  # type: ignore[assignment]
        self.fc: FreshChatSim = self.fc_server.app  # type: ignore[assignment]
        self.config = workdir / "config.toml"
        self.config.write_text(
            CONFIG.format(
                app_id=self.zalo.app_id,
                zalo_url=self.zalo_server.url,
                freshchat_url=self.fc_server.url,
                channel_id=CHANNEL_ID,
                store_url=store_url,
            )
            + (f"\n[sync]\n{sync}\n" if sync else "")
        )
        (workdir / ".env").write_text(
            f"ZFSYNC_ZALO_APP_SECRET={self.zalo.app_secret}\nZFSYNC_FRESHCHAT_API_KEY={self.fc.api_key}\n"
            + (f"ZFSYNC_STORE_PASSWORD={store_password}\n" if store_password else "")
        )
        (workdir / ".env").chmod(0o600)  # secrets: zfsync refuses a file every user can read
        self.log_path = workdir / "daemon.log"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.failures = 0

    def zfsync(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zfsync", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            check=False,
            env=_env(),
        )

    def start_daemon(self) -> None:
        self.daemon = self.spawn()

    def spawn(self, log_path: Path | None = None) -> subprocess.Popen[bytes]:
        """One more `zfsync run` on this config (on a PostgreSQL store, several may run)."""
        with (log_path or self.log_path).open("ab") as sink:
            return subprocess.Popen(
                [sys.executable, "-m", "zfsync", "--config", str(self.config), "run"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=_env(),
            )

    def stop_daemon(self) -> None:
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(timeout=30)

    def close(self) -> None:
        self.stop_daemon()
        self.zalo_server.stop()
        self.fc_server.stop()

    # --- what crosses --------------------------------------------------------------------------------

    def fc_messages(self, user_id: str) -> list[dict[str, Any]]:
        with self.fc.lock:
            ref = reference_id(user_id)
            users = {u["id"] for u in self.fc.users.values() if u["reference_id"] == ref}
            found = []
            for conversation in self.fc.conversations.values():
                if conversation["user_id"] in users:
                    found += [m for m in self.fc.messages[conversation["conversation_id"]] if m["actor_type"] == "user"]
            return found

    def customer_writes(self, user_id: str, name: str, label: str, **fields: Any) -> None:
        before = len(self.fc_messages(user_id))
        started = time.monotonic()
        self.zalo.add_customer_message(user_id, name, **fields)
        arrived = wait_until(lambda: len(self.fc_messages(user_id)) > before)
        self._report("Zalo → FreshChat", f"{name}: {label}", started, arrived)

    def agent_replies(self, user_id: str, text: str) -> None:
        before = len([s for s in self.zalo.sent if s["user_id"] == user_id])
        started = time.monotonic()
        conversation_id = self.fc.conversation_of(user_id)
        if conversation_id is None:
            raise RuntimeError(f"no FreshChat conversation for {user_id}: the customer writes first")
        self.fc.add_agent_message(conversation_id, text)
        arrived = wait_until(lambda: len([s for s in self.zalo.sent if s["user_id"] == user_id]) > before)
        shown = text if len(text) <= 50 else f"{text[:28]}... ({len(text)} characters)"
        self._report("FreshChat → Zalo", f"agent: {shown}", started, arrived)

    def group_exchange(self, group_id: str) -> None:
        """A member writes in a Zalo group chat; an agent answers the group, mentioning her."""
        key = group_key(group_id)
        started = time.monotonic()
        self.zalo.add_group_message(
            group_id, "5550000000000000001", "Nhóm mình cần báo giá sỉ 50 thùng ạ", name="Chị Hoa"
        )
        arrived = wait_until(lambda: len(self.fc_messages(key)) > 0)
        self._report("Zalo → FreshChat", "group «Khách sỉ Hà Nội», Chị Hoa: báo giá sỉ?", started, arrived)
        conversation_id = self.fc.conversation_of(key)
        if conversation_id is None:
            return
        started = time.monotonic()
        self.fc.add_agent_message(conversation_id, "@Chị Hoa dạ, shop gửi báo giá sỉ trong 10 phút ạ.")
        arrived = wait_until(lambda: len(self.zalo.gmf.sent) > 0)
        self._report("FreshChat → Zalo", "agent to the group: @Chị Hoa (a Zalo mention)", started, arrived)

    def _report(self, direction: str, what: str, started: float, arrived: bool) -> None:
        if arrived:
            print(f"  {direction}  {what:<58} {time.monotonic() - started:5.2f} s", flush=True)
        else:
            self.failures += 1
            print(f"  {direction}  {what:<58} NOT ARRIVED after {TIMEOUT:.0f} s", flush=True)

    def run(self) -> int:
        print(f"Simulators: Zalo {self.zalo_server.url}, FreshChat {self.fc_server.url}")
        auth = self.zfsync("auth", "zalo", f"--refresh-token={self.zalo.mint_tokens()[1]}")
        print(f"$ zfsync auth zalo --refresh-token ...\n  {auth.stdout.strip() or auth.stderr.strip()}")
        if auth.returncode != 0:
            return 1
        self.start_daemon()
        # The first poll takes whatever the feeds already hold as history; wait until it has run.
        group = DEMO_GROUP
        self.zalo.add_group(group, "Khách sỉ Hà Nội", {"5550000000000000001": "Chị Hoa"})
        if not wait_until(lambda: self.zalo.requests.get("/v3.0/oa/group/listrecentchat", 0) > 0):
            print("the daemon never polled Zalo; see", self.log_path)
            return 1
        print("$ zfsync run   (started; messages as they cross, with end-to-end latency)")
        khanh, lan = "2512007384617209999", "9007199254740993123"
        self.customer_writes(
            khanh,
            "Minh Khánh",
            "Xin chào, đơn hàng #1234 của tôi đâu rồi?",
            text="Xin chào, đơn hàng #1234 của tôi đâu rồi?",
        )
        self.customer_writes(lan, "Lan Phạm", "Cho mình hỏi giờ mở cửa 😊", text="Cho mình hỏi giờ mở cửa 😊")
        self.agent_replies(khanh, "Chào anh Khánh, đơn #1234 đang được giao, dự kiến chiều nay ạ.")
        self.customer_writes(
            khanh, "Minh Khánh", "(location)", type="location", location='{"latitude":"10.7769","longitude":"106.7009"}'
        )
        print("$ systemctl restart zfsync   (the daemon is stopped and started again)")
        self.stop_daemon()
        started = time.monotonic()
        self.zalo.add_customer_message(lan, "Lan Phạm", text="Mình gửi lúc zfsync đang khởi động lại")
        self.start_daemon()
        arrived = wait_until(lambda: len(self.fc_messages(lan)) == 2)
        self._report("Zalo → FreshChat", "Lan Phạm: (written while the daemon was down)", started, arrived)
        self.agent_replies(lan, "Cửa hàng mở cửa từ 8:00 đến 21:00 mỗi ngày. " * 60)
        self.agent_replies(khanh, "Cảm ơn anh, shipper sẽ gọi trước khi đến.")
        self.group_exchange(group)
        return self.verify()

    def verify(self) -> int:
        expected = {"2512007384617209999": 2, "9007199254740993123": 2}
        for user_id, count in expected.items():
            got = len(self.fc_messages(user_id))
            if got != count:
                self.failures += 1
                print(f"  FreshChat has {got} customer messages of {user_id}, expected {count}")
        sent = [s["text"] for s in self.zalo.sent]
        if len(sent) != len(set(sent)) or len(sent) != 4:  # the long reply is 2 parts: 1 + 2 + 1
            self.failures += 1
            print(f"  Zalo received {len(sent)} OA messages, expected 4 distinct")
        to_group = [s["text"] for s in self.zalo.gmf.sent]
        if len(self.fc_messages(group_key(DEMO_GROUP))) != 1 or to_group != [
            "[@5550000000000000001] dạ, shop gửi báo giá sỉ trong 10 phút ạ."
        ]:
            self.failures += 1
            print(f"  the group chat: expected one message each way, the reply with Zalo's mention; got {to_group}")
        status = self.zfsync("status")
        print("$ zfsync status\n" + "\n".join("  " + line for line in status.stdout.rstrip().splitlines()))
        if self.failures:
            print(f"demo FAILED: {self.failures} problem(s); daemon log: {self.log_path}")
            return 1
        print("demo OK: every message crossed exactly once, both ways, across a restart, in a group chat too")
        return 0


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ZFSYNC_CONFIG", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_demo(keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="zfsync-demo-"))
    demo = Demo(workdir, sync="groups = true")
    try:
        return demo.run()
    finally:
        demo.close()
        if keep:
            print(f"demo files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
