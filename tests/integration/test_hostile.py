"""A hostile world, case by case (issue "Nothing wedges, nothing is lost silently"): each test reproduces
one way zfsync used to stop a whole direction, or lose a message, while `zfsync status` said healthy, and
shows the promise kept: the other customers flow, the stuck item is repaired or ends in `failed`, nothing
is lost, and status names the trouble with its fix."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import SIMS, SIMS_IN_PROCESS, on
from zfsync.cli import status_text
from zfsync.runtime import status
from zfsync.runtime.status import HEARTBEAT_KEY, STARTS_KEY
from zfsync.sides import http
from zfsync.sim.base import Fault
from zfsync.sync.engine import OK

KHANH = "2512007384617209999"
LAN = "2512007384617200001"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def talking(b, *users: str) -> dict[str, str]:
    for user in users:
        b.zalo.add_customer_message(user, "Khách", text=f"chào từ {user[-4:]}")
    b.cycle()
    return {user: b.conversation_of(user) for user in users}


def report(b) -> dict:
    b.store.set_state(HEARTBEAT_KEY, str(b.clock()))
    return status.collect(b.store, now=b.clock())


# --- 1. a deleted FreshChat conversation, or user ---------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("deleted", ["conversation", "user"])
def test_a_deleted_conversation_stops_nobody_and_is_recreated_on_the_next_message(bridge, deleted):
    b = bridge
    conversations = talking(b, KHANH, LAN)
    if deleted == "conversation":
        b.fc.delete_conversation(conversations[KHANH])
    else:
        user = next(u for u in b.fc.users.values() if u["reference_id"] == f"zalo-{KHANH}")
        b.fc.delete_user(user["id"])
    b.fc.add_agent_message(conversations[LAN], "Lan vẫn nhận được")
    b.settle(rounds=3)
    assert b.sent_to(LAN) == ["Lan vẫn nhận được"]  # the other customer flows
    b.zalo.add_customer_message(KHANH, "Khách", text="tôi quay lại")
    b.zalo.add_customer_message(KHANH, "Khách", text="và thêm nữa")
    b.settle(rounds=3)
    new = b.conversation_of(KHANH)
    assert new != conversations[KHANH]
    with b.fc.lock:
        assert texts([m for m in b.fc.messages[new] if m["actor_type"] == "user"]) == ["tôi quay lại", "và thêm nữa"]
    (note,) = texts(b.notes())
    assert "no longer has" in note
    b.fc.add_agent_message(new, "đã thấy")
    b.settle(rounds=2)
    assert b.sent_to(KHANH) == ["đã thấy"]
    r = report(b)
    assert r["sides"]["freshchat"]["state"] == OK and r["failed"] == 0 and r["exit_code"] == status.HEALTHY


@on(SIMS_IN_PROCESS)
def test_a_conversation_that_keeps_failing_is_backed_off_alone(bridge):
    b = bridge
    conversations = talking(b, KHANH, LAN)
    path = f"/v2/conversations/{conversations[KHANH]}/messages"
    b.fc.faults.append(Fault(path, "status", code=400, message="broken conversation", count=10_000))
    for i in range(5):
        b.fc.add_agent_message(conversations[LAN], f"lan {i}")
        b.settle(rounds=1, step=3)
    assert b.sent_to(LAN) == [f"lan {i}" for i in range(5)]
    reads = b.fc.requests.get(path, 0)
    assert reads <= 5  # backed off on its own clock, not retried every tick


# --- 2. a lone UTF-16 surrogate ------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_a_lone_surrogate_becomes_a_replacement_character_and_nothing_stops(bridge):
    b = bridge
    conversations = talking(b, KHANH, LAN)
    b.zalo.add_customer_message(KHANH, "Khách \ud83d", text="nửa emoji \ud83d ở đây")
    b.zalo.add_customer_message(LAN, "Lan", text="tin bình thường")
    b.fc.add_agent_message(conversations[KHANH], "trả lời \udc00 lạ")
    b.settle(rounds=3)
    got = texts(b.customer_messages(KHANH))[-1]
    assert got.startswith("nửa emoji \ufffd ở đây") and "replaced" in got
    assert texts(b.customer_messages(LAN))[-1] == "tin bình thường"
    assert b.sent_to(KHANH) == ["trả lời \ufffd lạ"]
    assert any("replaced" in note for note in texts(b.notes()))
    assert report(b)["exit_code"] == status.HEALTHY


# --- 3. a slow download, and an answer that drips ----------------------------------------------------


@on(SIMS)
def test_a_dripping_download_ends_at_its_deadline_and_holds_back_no_one(bridge, monkeypatch):
    b = bridge
    monkeypatch.setattr(http, "DOWNLOAD_DEADLINE", 0.5)
    talking(b, KHANH, LAN)
    url = b.zalo.add_media(b"\x89PNG" + b"x" * 200, "image/png", "cham.png")
    b.zalo.faults.append(Fault("/media/", "drip", seconds=0.05, count=100))
    b.zalo.add_customer_message(KHANH, "Khách", type="photo", url=url)
    b.zalo.add_customer_message(LAN, "Lan", text="tôi không phải chờ")
    polled = b.engine.poll_zalo()
    assert polled.queued == 2 and b.zalo.requests.get(url.split(b.zalo_url)[1], 0) == 0  # polls never download
    b.drive.deliver("z2f")
    assert texts(b.customer_messages(LAN))[-1] == "tôi không phải chờ"
    b.zalo.faults.clear()
    b.settle(rounds=4)
    assert any(p.get("image") for m in b.customer_messages(KHANH) for p in m["message_parts"])


@on(SIMS)
def test_an_api_answer_that_drips_is_a_transient_error_at_its_deadline(bridge, monkeypatch):
    b = bridge
    monkeypatch.setattr(http, "DEADLINE", 0.5)
    b.zalo.faults.append(Fault("/v2.0/oa/listrecentchat", "drip", seconds=0.05, count=1))
    b.zalo.add_customer_message(KHANH, "Khách", text="sau sự cố")
    b.engine.poll_zalo()
    health = b.store.health()["zalo"]
    assert health["state"] == "TRANSIENT_ERROR" and "deadline" in health["last_error"]
    b.cycle()
    assert texts(b.customer_messages(KHANH)) == ["sau sự cố"]


@on(SIMS)
def test_an_endless_answer_is_cut_at_the_size_cap(bridge, monkeypatch):
    b = bridge
    monkeypatch.setattr(http, "MAX_BODY", 1_000_000)
    b.zalo.faults.append(Fault("/v2.0/oa/listrecentchat", "endless", count=1))
    b.engine.poll_zalo()
    assert "over the 1 MB limit" in b.store.health()["zalo"]["last_error"]


# --- 4. old timestamps ----------------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_messages_older_than_the_newest_read_are_not_dropped(bridge):
    b = bridge
    conversations = talking(b, KHANH)
    # Zalo's servers disagree by seconds: a row written later carries an older time.
    b.zalo.add_customer_message(KHANH, "Khách", text="đồng hồ lệch")
    with b.zalo.lock:
        b.zalo.messages[-1]["time"] -= 5_000
    # FreshChat: a reply whose created_time is older than the last message read.
    b.fc.add_agent_message(conversations[KHANH], "mới")
    b.settle(rounds=1)
    late = b.fc.add_agent_message(conversations[KHANH], "cũ hơn")
    late["created_time"] = (datetime.now(UTC) - timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    b.settle(rounds=2)
    assert texts(b.customer_messages(KHANH))[-1] == "đồng hồ lệch"
    assert b.sent_to(KHANH) == ["mới", "cũ hơn"]


# --- 5. a large catch-up into one FreshChat conversation -----------------------------------------------


@on(SIMS_IN_PROCESS)
def test_a_reply_deeper_than_twenty_pages_is_still_sent(bridge):
    b = bridge
    conversations = talking(b, KHANH)
    for i in range(1_060):  # 21 pages of 50 while zfsync was away
        b.fc.add_agent_message(conversations[KHANH], f"r{i}")
    b.settle(rounds=3)
    assert b.sent_to(KHANH) == [f"r{i}" for i in range(1_060)]


# --- 6. limited feed depth ------------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
@pytest.mark.parametrize("fresh_install", [False, True])
def test_every_customer_is_found_after_an_outage_whatever_the_feed_depth(bridge, fresh_install):
    b = bridge
    if not fresh_install:
        talking(b, KHANH)
    b.zalo.modes.feed_depth = 50
    users = [f"84900000000000{n:05d}" for n in range(40)]
    for i in range(340):  # written while zfsync was down
        b.zalo.add_customer_message(users[(i * 7) % 40], "Khách", text=f"m{i}")
    b.settle(rounds=3)
    arrived = sum(len(b.customer_messages(u)) for u in users)
    assert arrived == 340
    for n, user in enumerate(users):
        assert texts(b.customer_messages(user)) == [f"m{i}" for i in range(340) if (i * 7) % 40 == n]


# --- 7. the wall clock stepping back --------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_a_clock_stepped_back_three_hours_strands_no_conversation(bridge):
    b = bridge
    conversations = talking(b, KHANH)
    b.clock.advance(-3 * 3600)  # what a restart after the step sees: every persisted time is hours ahead
    b.restart()
    b.engine.recover_schedule()
    b.fc.add_agent_message(conversations[KHANH], "sau khi đồng hồ lùi")
    b.cycle(times=2)
    assert b.sent_to(KHANH) == ["sau khi đồng hồ lùi"]


def test_the_daemon_runs_every_job_again_when_the_wall_clock_steps(monkeypatch):
    from zfsync.runtime.daemon import Daemon

    class Job:
        modified = 0

        def modify(self, **_: object) -> None:
            Job.modified += 1

    class Scheduler:
        timezone = UTC

        def get_jobs(self) -> list[Job]:
            return [Job(), Job()]

    class Wakeable:
        woken = 0

        def wake(self) -> None:
            Wakeable.woken += 1

    class Engine:
        recovered = 0
        lanes: ClassVar[dict[str, Wakeable]] = {"z2f": Wakeable(), "f2z": Wakeable()}

        def recover_schedule(self) -> None:
            Engine.recovered += 1

    daemon = Daemon(None, None, Engine())  # type: ignore[arg-type]
    daemon.desk.loops = {"zalo": Wakeable(), "freshchat": Wakeable()}  # type: ignore[dict-item]
    wall = iter([1000.0, 1001.0 - 3 * 3600, 1002.0 - 3 * 3600])
    monkeypatch.setattr("zfsync.runtime.daemon.time.time", lambda: next(wall))
    monkeypatch.setattr("zfsync.runtime.daemon.time.monotonic", iter([0.0, 1.0, 2.0, 3.0]).__next__)
    waits = iter([False, True])
    monkeypatch.setattr(daemon.stop_event, "wait", lambda timeout: next(waits))
    daemon.guard_clock(Scheduler())  # type: ignore[arg-type]
    assert (Engine.recovered, Job.modified, Wakeable.woken) == (1, 2, 4)  # both polls and both lanes


# --- 8. memory --------------------------------------------------------------------------------------------


def test_hostile_images_and_endless_answers_keep_memory_bounded(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (8900, 8900)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 200_000
    probe = textwrap.dedent(
        f"""
        import threading
        from zfsync.domain import Media
        from zfsync.sync.write.media import Unsendable, shrink_to_jpeg
        from zfsync.sim.base import Fault, SimServer
        from zfsync.sim.zalo import ZaloSim
        from zfsync.sides import http
        from zfsync.domain.errors import RemoteError
        server = SimServer(ZaloSim()).start()
        server.app.faults.append(Fault("/endless", "endless", count=8))
        data = open({str(bomb)!r}, "rb").read()
        refused = []
        def convert():
            try:
                shrink_to_jpeg(Media(data, "image/x-unknown", "bomb.bmp"), 1_000_000)
            except Unsendable as exc:
                refused.append(str(exc))
        def endless():
            try:
                http.call(http.new_session(), "GET", server.url + "/endless", side="zalo", endpoint="x")
            except RemoteError as exc:
                refused.append(str(exc))
        threads = [threading.Thread(target=f) for f in [convert] * 8 + [endless] * 8]
        for t in threads: t.start()
        for t in threads: t.join()
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so it would count the forked parent.
        peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(len(refused), peak_kb // 1024)
        """
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    refused, peak_mb = map(int, out.stdout.split()[-2:])
    assert refused == 16, out.stdout
    assert peak_mb < 150, f"peak RSS {peak_mb} MB"


# --- 9. the smaller ones ------------------------------------------------------------------------------------


def test_an_existing_store_file_is_made_private(tmp_path):
    from zfsync.store import Store

    path = tmp_path / "z.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    Store.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@on(SIMS_IN_PROCESS)
def test_freshchat_is_not_ok_before_it_was_asked_anything(bridge):
    b = bridge
    b.restart()
    b.fc.faults.append(Fault("/v2/accounts/configuration", "status", code=401, count=1))
    b.engine.poll_freshchat()
    assert b.store.health()["freshchat"]["state"] == "BAD_CREDENTIALS"


# --- 10. status tells the truth ---------------------------------------------------------------------------


@on(SIMS_IN_PROCESS)
def test_status_reports_a_stuck_poll_a_long_wait_and_a_crash_loop_with_their_fixes(bridge):
    b = bridge
    talking(b, KHANH)
    assert report(b)["exit_code"] == status.HEALTHY
    b.zalo.faults.append(Fault("/v3.0/oa/message/cs", "status", code=503, count=10_000))
    b.fc.add_agent_message(b.conversation_of(KHANH), "kẹt")
    b.cycle()
    b.clock.advance(1_000)
    r = report(b)
    text = status_text.render(r, now=b.clock())
    assert r["exit_code"] == status.DEGRADED
    assert "has waited" in text and "zfsync requeue" in text
    assert "has not been polled" in text and "journalctl" in text
    b.store.set_state(STARTS_KEY, ",".join(str(b.clock() - i * 60) for i in range(4)))
    assert "started 4 times" in status_text.render(report(b), now=b.clock())
    assert json.dumps(report(b)["problems"])  # in --json too


@on(SIMS_IN_PROCESS)
def test_no_token_or_key_reaches_the_log_at_debug_level_through_a_refresh_and_a_send(bridge):
    import io

    from zfsync import log

    out = io.StringIO()
    log.setup("debug", "json", out)
    try:
        b = bridge
        seen = set(b.zalo.access_tokens) | set(b.zalo.refresh_tokens)
        conversation = talking(b, KHANH)[KHANH]
        b.clock.advance(25 * 3600)  # past the access token's life: refreshed, the new pair stored
        b.cycle()
        b.fc.add_agent_message(conversation, "Dạ shop đây ạ")
        b.settle(rounds=6, step=200)  # a conversation quiet for a day is polled every 10 minutes
        assert b.sent_to(KHANH) == ["Dạ shop đây ạ"]
        seen |= set(b.zalo.access_tokens) | set(b.zalo.refresh_tokens)
        stored = b.store.load_tokens()
        assert stored is not None and stored.access_token in seen and len(seen) >= 4  # a refresh happened
        written = out.getvalue()
        assert 'INSERT INTO \\"token\\"' in written  # peewee's debug record of the SQL: there, masked
        leaked = [token for token in seen if token in written]
        assert leaked == [], "a Zalo token reached the log"
        assert b.settings.freshchat.api_key not in written and b.settings.zalo.app_secret not in written
    finally:
        log.setup("info", "json", io.StringIO())
