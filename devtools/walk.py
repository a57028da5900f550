"""The walk of one message (`python -m devtools.walk`): which of zfsync's files a customer's text and an
agent's reply pass through, and in which forms, on the production path (the real clients over the
in-process simulators, driven through the daemon's own steps).

A call counts when one of its arguments carries the message: a text holding it, or a value (a dict, a
list, a domain object) whose text shows it. So the walk is what a reader follows when they trace the
message by hand, not every file a cycle touches. Its form there is the type of what carries it, seen
through the containers around it (a list, a page scan, an outbox row): wire JSON as text or as a dict, a
domain type, or the bare text. A change of form is a form met for the first time.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from devtools.drive import Drive
from zfsync.config import from_mapping
from zfsync.domain import ZaloTokens
from zfsync.runtime.app import build_clients, build_engine
from zfsync.sim.fakes import FakeClock
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.inprocess import session_for
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store

PACKAGE = str(Path(__file__).resolve().parent.parent / "zfsync")
SKIPPED = ("/sim/", "/log.py")  # the simulators are not zfsync's path; logging is beside it
CUSTOMER, AGENT = "walk-customer-7c1f", "walk-agent-9e2d"
USER = "2512007384617209999"


class Walk:
    """The files a marked message entered, in order, and the forms it had there."""

    def __init__(self, marker: str):
        self.marker = marker
        self.files: list[str] = []
        self.forms: list[str] = []

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        path = frame.f_code.co_filename
        if event != "call" or not path.startswith(PACKAGE) or any(s in path for s in SKIPPED):
            return
        for name, value in frame.f_locals.items():
            if name != "self" and self._carries(value):
                self._note(path[len(PACKAGE) - len("zfsync") :], self._form(value))
                return

    def _carries(self, value: Any) -> bool:
        if isinstance(value, bytes):
            return self.marker.encode() in value
        if isinstance(value, str | dict | list | tuple) or hasattr(value, "__dataclass_fields__"):
            try:
                return self.marker in (value if isinstance(value, str) else repr(value))
            except Exception:
                return False
        return False

    def _note(self, file: str, form: str) -> None:
        if file not in self.files:
            self.files.append(file)
        if form not in self.forms:
            self.forms.append(form)

    def _form(self, value: Any) -> str:
        """What carries the message, seen through the containers around it."""
        if isinstance(value, list | tuple | set):
            return next((self._form(v) for v in value if self._carries(v)), "list")
        inner = getattr(value, "content", None) if type(value).__name__ in WRAPPERS else None
        if inner is None and type(value).__name__ in WRAPPERS:
            inner = next((v for v in vars(value).values() if self._carries(v)), None)
        if inner is not None:
            return self._form(inner)
        if isinstance(value, str | bytes):
            return "JSON text" if value[:1] in ("{", "[", b"{", b"[") else "text"
        return "JSON dict" if isinstance(value, dict) else type(value).__name__


WRAPPERS = ("OutboxRow", "NewRow", "Scan", "Page", "Sent", "Held")  # they carry a message, they are not one


def traced(marker: str, run: Callable[[], None]) -> Walk:
    walk = Walk(marker)
    sys.setprofile(walk)
    try:
        run()
    finally:
        sys.setprofile(None)
    return walk


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="zfsync-walk-"))
    clock = FakeClock()
    zalo, fc = ZaloSim(), FreshChatSim()
    zalo.clock = fc.clock = clock
    zalo_urls = {"api_url": "http://zalo.sim", "oauth_url": "http://zalo.sim"}
    raw: dict[str, dict[str, object]] = {
        "zalo": {"app_id": "sim-app", **zalo_urls, "allow_insecure_http": True},
        "freshchat": {"api_url": "http://freshchat.sim", "channel_id": CHANNEL_ID, "allow_insecure_http": True},
        "store": {"path": str(workdir / "zfsync.db")},
        "sync": {"language": "en"},
    }
    settings = from_mapping(raw, {"ZFSYNC_ZALO_APP_SECRET": "sim-secret", "ZFSYNC_FRESHCHAT_API_KEY": "sim-key"})
    store = Store.open(settings.store_path)
    access, refresh = zalo.mint_tokens()
    store.save_tokens(ZaloTokens(access, refresh, 90_000), clock())
    sessions = (session_for(zalo, "http://zalo.sim"), session_for(fc, "http://freshchat.sim"))
    clients = build_clients(settings, store, clock, *sessions, sleep=clock.advance)
    engine = build_engine(settings, store, clients.zalo, clients.freshchat, clock, lane_threads=False)
    drive = Drive(settings, store, engine)
    drive.zalo()  # the first start's baseline
    zalo.add_customer_message(USER, "Minh Khánh", text=f"Xin chào {CUSTOMER}")
    clock.advance(2)
    customer = traced(CUSTOMER, drive.zalo)
    conversation = fc.conversation_of(USER)
    assert conversation is not None, "the customer's text did not reach FreshChat"
    fc.add_agent_message(conversation, f"Dạ {AGENT}")
    clock.advance(settings.freshchat.hot_interval)
    agent = traced(AGENT, drive.freshchat)
    assert any(AGENT in s["text"] for s in zalo.sent), "the agent's reply did not reach Zalo"
    for title, walk in (("customer text, Zalo -> FreshChat", customer), ("agent reply, FreshChat -> Zalo", agent)):
        print(f"{title}: {len(walk.files)} files, {len(walk.forms)} forms, {len(walk.forms) - 1} changes of form")
        print("  files: " + " -> ".join(walk.files))
        print("  forms: " + " -> ".join(walk.forms))
    store.close()


if __name__ == "__main__":
    main()
