"""`zfsync sim`: both simulators on loopback, for trying zfsync by hand."""

from __future__ import annotations

import contextlib
import signal
import threading

from zfsync.sim.base import SimServer
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.zalo import ZaloSim


def start(host: str = "127.0.0.1", zalo_port: int = 0, freshchat_port: int = 0) -> tuple[SimServer, SimServer]:
    zalo = SimServer(ZaloSim(), host, zalo_port).start()
    freshchat = SimServer(FreshChatSim(), host, freshchat_port).start()
    return zalo, freshchat


def serve(host: str, zalo_port: int, freshchat_port: int, rtt: float) -> int:
    zalo, freshchat = start(host, zalo_port, freshchat_port)
    zalo.app.rtt = freshchat.app.rtt = rtt
    zalo_app: ZaloSim = zalo.app  # type: ignore[assignment]
    refresh = zalo_app.mint_tokens()[1]
    print(
        f"Zalo OA API and OAuth simulator: {zalo.url}   (app_id {zalo_app.app_id}, "
        f"ZFSYNC_ZALO_APP_SECRET={zalo_app.app_secret})"
    )
    print(
        f"FreshChat API simulator:         {freshchat.url}   (ZFSYNC_FRESHCHAT_API_KEY=sim-key, "
        f"channel_id {CHANNEL_ID})"
    )
    print(f"A refresh token to import:       zfsync auth zalo --refresh-token {refresh}")
    print(
        f'Make a customer write:  curl -d \'{{"user_id":"2512007384617209999","name":"Minh Khánh",'
        f'"text":"Xin chào"}}\' {zalo.url}/_sim/customer_message'
    )
    print(
        f'Make an agent reply:    curl -d \'{{"reference_id":"zalo-2512007384617209999","text":"Chào bạn"}}\''
        f" {freshchat.url}/_sim/agent_reply"
    )
    print("Ctrl-C stops.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    zalo.stop()
    freshchat.stop()
    return 0
