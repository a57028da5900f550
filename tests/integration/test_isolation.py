"""No customer waits for another: the real `zfsync run` against the simulators while one attachment drips
(headers at once, then a byte every half second, as from a congested CDN), in both directions."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.test_daemon import DEADLINE, until, write_config, zfsync
from zfsync.sim.base import SimServer
from zfsync.sim.freshchat import FreshChatSim
from zfsync.sim.zalo import ZaloSim
from zfsync.sync.write import lanes

DRIP = 0.5  # seconds a byte: a 300-byte picture takes minutes to arrive
A, B = "8400000000000000001", "8400000000000000002"


def picture() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((12, 12), 60).convert("RGB").save(out, "PNG")
    assert len(out.getvalue()) > 200  # long enough to drip for well over a minute
    return out.getvalue()


class Daemon:
    """`zfsync run` in a subprocess, its output read line by line as it comes."""

    running: list[Daemon] = []  # noqa: RUF012  (every one started, killed at the test's end if still alive)

    def __init__(self, config: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zfsync", "--config", str(config), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        Daemon.running.append(self)
        assert until(lambda: any('"daemon_ready"' in line for line in self.lines)), self.errors

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=DEADLINE)
        for reader in self._readers:
            reader.join(timeout=DEADLINE)
        return code

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def sims():
    zalo, fc = SimServer(ZaloSim()).start(), SimServer(FreshChatSim()).start()
    yield zalo, fc
    for daemon in Daemon.running:  # a test that failed half-way leaves no daemon behind
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait(timeout=DEADLINE)
    Daemon.running.clear()
    zalo.stop()
    fc.stop()


def start(tmp_path: Path, sims) -> tuple[ZaloSim, FreshChatSim, Path, Daemon]:
    zalo_server, fc_server = sims
    zalo, fc = zalo_server.app, fc_server.app
    config = write_config(tmp_path, zalo_server.url, fc_server.url)
    assert zfsync(config, "auth", "zalo", f"--refresh-token={zalo.mint_tokens()[1]}").returncode == 0
    return zalo, fc, config, Daemon(config)


def customer_texts(fc: FreshChatSim, user_id: str) -> list[str]:
    conversation = fc.conversation_of(user_id)
    if conversation is None:
        return []
    with fc.lock:
        messages = list(fc.messages[conversation])
    return [
        p["text"]["content"] for m in messages if m["actor_type"] == "user" for p in m["message_parts"] if "text" in p
    ]


def customer_images(fc: FreshChatSim, user_id: str) -> int:
    conversation = fc.conversation_of(user_id)
    if conversation is None:
        return 0
    with fc.lock:
        return sum(1 for m in fc.messages[conversation] for p in m["message_parts"] if "image" in p)


def slow_photo(zalo: ZaloSim, user_id: str) -> str:
    url = zalo.add_media(picture(), "image/png", "anh.png", drip=DRIP)
    zalo.add_customer_message(user_id, f"Khách {user_id[-1]}", type="photo", url=url, thumb=url)
    return url


def assert_structured(daemon: Daemon) -> None:
    """Every line the daemon wrote is one of structlog's JSON events; none is a warning in normal operation."""
    assert daemon.errors == []
    for line in daemon.lines:
        event = json.loads(line)  # not JSON: a library wrote around structlog
        assert event["event"] and event["level"]
    assert [e for e in daemon.events() if e["level"] in ("warning", "error", "critical")] == []


def test_a_dripping_photo_holds_up_no_other_customer_and_the_journal_stays_quiet(tmp_path, sims):
    zalo, fc, _, daemon = start(tmp_path, sims)
    slow_photo(zalo, A)
    zalo.add_customer_message(A, "Khách 1", text="after my photo")  # behind the photo: A's order holds
    assert until(lambda: any(e["event"] == "zalo_messages_queued" for e in daemon.events()))
    zalo.add_customer_message(B, "Khách 2", text="Tin gấp 0")
    assert until(lambda: customer_texts(fc, B) == ["Tin gấp 0"])
    zalo.add_customer_message(B, "Khách 2", text="Tin gấp 1")
    assert until(lambda: customer_texts(fc, B) == ["Tin gấp 0", "Tin gấp 1"])
    # All of that while A's photo is still arriving, byte by byte; A's next message waits behind it.
    assert customer_images(fc, A) == 0 and "after my photo" not in customer_texts(fc, A)
    assert daemon.stop() == 0  # at once: the transfer in flight is abandoned, to be taken up again
    assert_structured(daemon)
    assert any(e["event"] == "delivery_interrupted" for e in daemon.events())


def test_texts_still_cross_while_every_attachment_worker_is_busy(tmp_path, sims):
    zalo, fc, _, daemon = start(tmp_path, sims)
    slowed = [f"84000000000000001{n:02d}" for n in range(lanes.HEAVY_WORKERS + 2)]
    for user_id in slowed:
        slow_photo(zalo, user_id)
    assert until(lambda: sum(e["event"] == "zalo_messages_queued" for e in daemon.events()) >= 1)
    for n in range(3):
        zalo.add_customer_message(B, "Khách 2", text=f"Tin gấp {n}")
    assert until(lambda: customer_texts(fc, B) == ["Tin gấp 0", "Tin gấp 1", "Tin gấp 2"])
    assert all(customer_images(fc, user_id) == 0 for user_id in slowed)
    assert daemon.stop() == 0
    assert_structured(daemon)


def test_a_dripping_agent_image_holds_up_no_other_reply(tmp_path, sims):
    zalo, fc, _, daemon = start(tmp_path, sims)
    for user_id in (A, B):
        zalo.add_customer_message(user_id, f"Khách {user_id[-1]}", text="Xin chào")
    assert until(lambda: customer_texts(fc, A) and customer_texts(fc, B))
    image_url = fc.add_media(picture(), "image/png", "bao-gia.png", drip=DRIP)
    fc.add_agent_message(fc.conversation_of(A), parts=[{"image": {"url": image_url}}])
    fc.add_agent_message(fc.conversation_of(A), "caption after the image")
    fc.add_agent_message(fc.conversation_of(B), "Dạ, em gửi anh báo giá ạ")
    assert until(lambda: [s["text"] for s in zalo.sent if s["user_id"] == B] == ["Dạ, em gửi anh báo giá ạ"])
    assert [s for s in zalo.sent if s["user_id"] == A] == []  # A's image still arriving; A's text behind it
    assert daemon.stop() == 0
    assert_structured(daemon)


def test_a_kill_while_a_photo_drips_loses_and_doubles_nothing(tmp_path, sims):
    zalo, fc, config, daemon = start(tmp_path, sims)
    url = slow_photo(zalo, A)
    zalo.add_customer_message(A, "Khách 1", text="after my photo")
    zalo.add_customer_message(B, "Khách 2", text="Tin gấp 0")
    assert until(lambda: customer_texts(fc, B) == ["Tin gấp 0"])
    image_url = fc.add_media(picture(), "image/png", "bao-gia.png", drip=DRIP)
    fc.add_agent_message(fc.conversation_of(B), parts=[{"image": {"url": image_url}}])
    assert until(lambda: any(e["event"] == "freshchat_replies_queued" for e in daemon.events()))
    daemon.stop(signal.SIGKILL)
    zalo.set_media_drip(url, 0.0)
    fc.set_media_drip(image_url, 0.0)
    zalo.add_customer_message(B, "Khách 2", text="Tin gấp 1")
    daemon = Daemon(config)
    assert until(lambda: customer_images(fc, A) == 1 and "after my photo" in customer_texts(fc, A))
    assert until(lambda: len([s for s in zalo.sent if s["user_id"] == B]) == 1)
    assert until(lambda: customer_texts(fc, B) == ["Tin gấp 0", "Tin gấp 1"])
    assert daemon.stop() == 0
    assert customer_images(fc, A) == 1
    assert customer_texts(fc, A)[-1] == "after my photo"  # after the photo's own line, once
    assert [s.get("kind") for s in zalo.sent if s["user_id"] == B] == ["photo"]
    assert_structured(daemon)
