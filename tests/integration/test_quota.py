"""Living within each side's quota, against simulators that enforce one (with its headers, -32 and 429)."""

from __future__ import annotations

import threading
from dataclasses import replace

from tests.conftest import SIMS_IN_PROCESS, make_engine, on
from zfsync.cli import status_text
from zfsync.runtime import status
from zfsync.runtime.status import HEARTBEAT_KEY, QUOTA_KEY
from zfsync.sides.priority import Priority, current_purpose
from zfsync.sim.freshchat import AGENT_ID
from zfsync.sync.read import zalo_reader

CUSTOMER = "2512007384617209999"


def with_zalo_quota(b, per_minute: int, ceiling: int | None = None) -> None:
    """The simulator allows ``per_minute``; zfsync is configured with ``ceiling`` (default: the same)."""
    b.zalo.modes.quota_per_minute = per_minute
    zalo = replace(b.settings.zalo, requests_per_minute=ceiling or per_minute)
    b.settings = replace(b.settings, zalo=zalo)
    b.restart()


@on(SIMS_IN_PROCESS)
def test_an_agent_reply_is_sent_while_a_catch_up_is_using_the_zalo_budget(bridge):
    b = bridge
    with_zalo_quota(b, 30)
    b.zalo.add_customer_message(CUSTOMER, "Khánh", text="chào shop")
    b.settle(rounds=2)
    conversation = b.conversation_of(CUSTOMER)
    # While zfsync was down, 20 customers wrote 5 messages each; the feed shows only the newest 20 rows,
    # so most must be caught up user by user, at catch-up priority.
    b.zalo.modes.feed_depth = 20
    users = [f"84{9_100_000_000_000_000 + n:017d}" for n in range(20)]
    for n in range(5):
        for user in users:
            b.zalo.add_customer_message(user, f"Khách {user[-2:]}", text=f"{user[-2:]}: tin {n}")
    catching_up, go_on = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        if current_purpose() == Priority.CATCHUP:  # a catch-up read waits for the budget: hold it there
            catching_up.set()
            go_on.wait(10)
        b.clock.advance(seconds)

    b.engine = make_engine(b, sleep)
    catch_up = threading.Thread(target=b.engine.poll_zalo)
    catch_up.start()
    assert catching_up.wait(10), "the catch-up never had to wait for the budget"
    b.fc.add_agent_message(conversation, "Dạ, shop trả lời ngay ạ", actor_id=AGENT_ID)
    b.drive.freshchat()  # reads FreshChat, then sends on Zalo at send priority
    assert b.sent_to(CUSTOMER) == ["Dạ, shop trả lời ngay ạ"]
    assert catch_up.is_alive()  # the catch-up is still waiting for the budget: the reply went first
    go_on.set()
    catch_up.join(30)
    b.settle(rounds=12, step=10.0)
    for user in users:
        got = [m["message_parts"][0]["text"]["content"] for m in b.customer_messages(user)]
        assert got == [f"{user[-2:]}: tin {n}" for n in range(5)]
    assert b.zalo.quota.refused == 0


@on(SIMS_IN_PROCESS)
def test_the_headers_teach_a_lower_limit_and_status_says_how_often_zalo_is_polled(bridge):
    b = bridge
    with_zalo_quota(b, 50, ceiling=4000)  # configured for Zalo's documented 4,000; the package allows 50
    b.zalo.add_customer_message(CUSTOMER, "Khánh", text="alo")
    b.cycle()
    assert b.engine.zalo.quota.limit == 50
    assert b.engine.zalo_interval() == 4.0  # polling may take 30 % of 50 a minute: every 4 s, not every 2 s
    b.store.set_state(HEARTBEAT_KEY, str(b.clock()))
    b.store.set_state(QUOTA_KEY, __import__("json").dumps(b.engine.quotas()))
    text = status_text.render(status.collect(b.store, now=b.clock()), now=b.clock())
    assert "quota      Zalo 50/min" in text and "polling every 4 s (configured 2 s" in text


@on(SIMS_IN_PROCESS)
def test_a_refusal_waits_for_the_minute_to_end_then_everything_goes_through(bridge, monkeypatch):
    b = bridge
    # One catch-up reader: with several, a reader that waits moves the shared fake clock while another's
    # request is still on its way, which lands it in the next minute (real clocks do that too, rarely).
    monkeypatch.setattr(zalo_reader, "GAP_FILL_WORKERS", 1)
    # zfsync believes in 4,000 a minute and the simulator sends no headers: the -32 is the only news.
    b.zalo.modes.quota_headers = False
    with_zalo_quota(b, 15, ceiling=4000)
    b.clock.now = (int(b.clock.now // 60) + 1) * 60 + 30  # half a minute into a fresh minute
    for n in range(20):  # about 25 reads to catch up: more than a minute allows
        b.zalo.add_customer_message(f"84{9_200_000_000_000_000 + n:017d}", "K", text=f"tin {n}")
    quota = b.engine.zalo.quota
    b.drive.zalo()
    assert b.zalo.quota.refused == 1
    assert b.store.health()["zalo"]["state"] == "RATE_LIMITED"
    # What the refusal taught: fewer than were made in that minute. Calls then wait for the minute's end,
    # not a blanket minute, and go on paced by it, so the simulator never refuses again.
    assert quota.limit == 15
    b.settle(rounds=20, step=10.0)
    arrived = sum(len(b.customer_messages(f"84{9_200_000_000_000_000 + n:017d}")) for n in range(20))
    assert arrived == 20
    assert b.store.health()["zalo"]["state"] == "OK"
    assert b.zalo.quota.refused == 1  # never refused again


@on(SIMS_IN_PROCESS)
def test_a_quota_that_carries_the_traffic_is_never_refused(bridge):
    b = bridge
    with_zalo_quota(b, 100)
    b.fc.modes.quota_per_minute = 200
    for minute in range(5):
        for second in range(0, 60, 2):
            if second % 10 == 0:
                user = f"84{9_300_000_000_000_000 + (second // 10):017d}"
                b.zalo.add_customer_message(user, "K", text=f"{minute}:{second}")
                if b.customer_messages(user):
                    b.fc.add_agent_message(b.conversation_of(user), f"đáp {minute}:{second}", actor_id=AGENT_ID)
            b.cycle()
    assert b.zalo.quota.refused == 0 and b.fc.quota.refused == 0
    assert sum(b.zalo.requests.values()) > 150  # the traffic was real: about 30 feed polls a minute


@on(SIMS_IN_PROCESS)
def test_a_poll_that_finds_no_room_for_its_next_page_stops_and_reads_it_all_later(bridge):
    b = bridge
    b.zalo.add_customer_message(CUSTOMER, "Khánh", text="chào shop")
    b.settle(rounds=2)
    conversation = b.conversation_of(CUSTOMER)
    replies = [f"đáp {n}" for n in range(60)]  # two of FreshChat's pages
    for text in replies:
        b.fc.add_agent_message(conversation, text, actor_id=AGENT_ID)
    b.clock.advance(60.0)
    # FreshChat says the minute has one request left for polls beyond what the sends keep.
    quota = b.engine.freshchat.quota
    quota.observe(None, quota.reserve(Priority.FEED) + 1)
    assert quota.available(Priority.FEED) == 1
    started = b.clock()
    assert b.engine.poll_freshchat().queued == 0  # the second page found no room: nothing half-read is queued
    assert b.clock() == started  # and the job did not wait out the window
    assert b.store.next_poll_time() is not None and b.store.next_poll_time() <= started  # still due
    b.clock.advance(61.0)
    b.settle(rounds=2)
    assert b.sent_to(CUSTOMER) == replies
