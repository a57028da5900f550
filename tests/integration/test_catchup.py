"""Downtime, bursts, kills in the middle of catch-up, shifting pages, profile changes and resolves:
FreshChat must end up with exactly the customer's messages, in order, once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import FAKES, SIMS, on
from zfsync.sim.zalo import ZaloSim
from zfsync.sync.write import freshchat_posts

KHANH = "2512007384617209999"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def user_id(n: int) -> str:
    return f"84{n:017d}"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


@pytest.fixture(params=[False, True], ids=["one_id", "two_ids"])
def two_ids(request: pytest.FixtureRequest) -> bool:
    """Both answers the recordings allow: one id a message, or one in the feed and another in the conversation."""
    return bool(request.param)


@on(SIMS)
def test_fifty_users_times_ten_messages_while_the_daemon_is_down(bridge, two_ids):
    bridge.zalo.modes.two_ids = two_ids
    # The daemon is down: nothing polls while 500 messages arrive, interleaved across 50 users.
    for i in range(10):
        for n in range(50):
            bridge.zalo.add_customer_message(user_id(n), f"Khách {n}", text=f"u{n} m{i}")
    bridge.restart()
    bridge.settle(rounds=3)
    for n in range(50):
        assert texts(bridge.customer_messages(user_id(n))) == [f"u{n} m{i}" for i in range(10)]
    assert len(bridge.fc_state()["users"]) == 50


def test_a_burst_of_two_hundred_from_one_user_between_two_polls(bridge):
    for i in range(200):
        bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"b{i}")
    bridge.cycle()
    assert texts(bridge.customer_messages(KHANH)) == [f"b{i}" for i in range(200)]


@on(SIMS)
@pytest.mark.parametrize("kill_after_posts", [1, 37, 120])
def test_a_kill_in_the_middle_of_catch_up_loses_and_doubles_nothing(bridge, monkeypatch, kill_after_posts, two_ids):
    bridge.zalo.modes.two_ids = two_ids
    for i in range(15):
        for n in range(10):
            bridge.zalo.add_customer_message(user_id(n), f"Khách {n}", text=f"u{n} m{i}")
    posts = 0
    original = freshchat_posts.CustomerMessagePost.send

    def dying_send(self):
        nonlocal posts
        result = original(self)  # FreshChat accepted it ...
        posts += 1
        if posts == kill_after_posts:
            raise Killed  # ... and the process dies before the store records it
        return result

    monkeypatch.setattr(freshchat_posts.CustomerMessagePost, "send", dying_send)
    with pytest.raises(Killed):
        bridge.cycle()
    monkeypatch.setattr(freshchat_posts.CustomerMessagePost, "send", original)
    bridge.restart()
    bridge.settle(rounds=3)
    for n in range(10):
        assert texts(bridge.customer_messages(user_id(n))) == [f"u{n} m{i}" for i in range(15)]


@on(FAKES, SIMS)
def test_a_catch_up_cut_short_is_finished_next_cycle_without_reading_the_whole_feed_again(bridge, monkeypatch):
    # Thirty customers wrote 300 messages: the feed is read to its end (a page cap deeper than it), and each
    # customer is taken from their own conversation. The process dies after recording ten of them. Were the
    # next cycle to start over, a daemon killed more often than a catch-up lasts would never finish one.
    bridge.settings = replace(bridge.settings, zalo=replace(bridge.settings.zalo, feed_page_cap=500))
    bridge.restart()
    for i in range(10):
        for n in range(30):
            bridge.zalo.add_customer_message(user_id(n), f"Khách {n}", text=f"u{n} m{i}")
    recorded = 0
    original = bridge.store.record_zalo_messages

    def dying_record(*args, **kwargs):
        nonlocal recorded
        if recorded == 10:
            raise Killed  # the eleventh customer's messages are never written
        recorded += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(bridge.store, "record_zalo_messages", dying_record)
    with pytest.raises(Killed):
        bridge.engine.poll_zalo()
    monkeypatch.setattr(bridge.store, "record_zalo_messages", original)
    bridge.restart()
    feed_reads = bridge.zalo.requests["/v2.0/oa/listrecentchat"]
    bridge.engine.poll_zalo()
    # Down to the mark the cut-short cycle left, not the 300 rows again.
    assert bridge.zalo.requests["/v2.0/oa/listrecentchat"] - feed_reads == 1
    bridge.settle(rounds=3)
    for n in range(30):
        assert texts(bridge.customer_messages(user_id(n))) == [f"u{n} m{i}" for i in range(10)]


@on(SIMS)
def test_a_kill_between_capped_scans_resumes_where_it_stopped(bridge, two_ids):
    bridge.zalo.modes.two_ids = two_ids
    bridge.settings = replace(bridge.settings, zalo=replace(bridge.settings.zalo, feed_page_cap=2))
    bridge.restart()
    for i in range(30):
        for n in range(3):
            bridge.zalo.add_customer_message(user_id(n), f"Khách {n}", text=f"u{n} m{i}")
    bridge.drive.zalo()  # reads two pages of the backlog, then "dies"
    bridge.restart()
    bridge.settle(rounds=4)
    for n in range(3):
        assert texts(bridge.customer_messages(user_id(n))) == [f"u{n} m{i}" for i in range(30)]


@on(FAKES, SIMS)
def test_rows_repeated_across_pages_under_live_traffic_are_taken_once(bridge):
    for i in range(40):
        bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text=f"old{i}")
    # A new message lands before every page, so offsets shift and the next page repeats a row.
    bridge.zalo.arrivals_during_listing.extend((user_id(1), {"text": f"live{i}"}) for i in range(100))
    bridge.cycle()
    bridge.zalo.arrivals_during_listing.clear()
    bridge.settle(rounds=2)
    assert texts(bridge.customer_messages(KHANH)) == [f"old{i}" for i in range(40)]
    live = texts(bridge.customer_messages(user_id(1)))
    assert live == [f"live{i}" for i in range(len(live))] and len(live) >= 5


def test_a_profile_change_reaches_freshchat_within_a_day(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hi")
    bridge.cycle()
    bridge.zalo.users[KHANH].update(display_name="Khánh Nguyễn", avatar="https://s240.avatar.talk.zdn.vn/new.jpg")
    bridge.cycle()
    user = next(u for u in bridge.fc_state()["users"] if u["reference_id"] == f"zalo-{KHANH}")
    assert user["first_name"] == "Minh Khánh Zalo"  # not checked again within the day
    bridge.clock.advance(86_401)
    bridge.cycle()
    user = next(u for u in bridge.fc_state()["users"] if u["reference_id"] == f"zalo-{KHANH}")
    assert user["first_name"] == "Khánh Nguyễn Zalo"
    assert user["avatar"] == {"url": "https://s240.avatar.talk.zdn.vn/new.jpg"}
    names = {p["name"] for p in user["properties"]}
    assert {"external_user_provider", "zalo_user_id", "zalo_first_contact", "zalo_last_seen"} <= names
    requests_before = dict(bridge.zalo.requests)
    bridge.cycle(3)
    assert bridge.zalo.requests.get("/v3.0/oa/user/detail") == requests_before.get("/v3.0/oa/user/detail")


def test_a_failing_profile_call_never_holds_a_message_back(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="first")
    bridge.cycle()
    bridge.clock.advance(86_401)
    from zfsync.sim.base import Fault

    bridge.zalo.faults.append(Fault("/v3.0/oa/user/detail", "status", code=503, count=100))
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="second")
    bridge.cycle()
    assert texts(bridge.customer_messages(KHANH)) == ["first", "second"]


def test_a_message_after_a_resolve_reopens_the_same_conversation(bridge):
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hỏi")
    bridge.cycle()
    conversation = bridge.conversation_of(KHANH)
    bridge.fc.set_resolved(conversation, True)
    bridge.settle()
    assert bridge.sent_to(KHANH) == [bridge.settings.sync.resolve_notice]
    bridge.zalo.add_customer_message(KHANH, "Minh Khánh", text="hỏi thêm")
    bridge.cycle()
    assert bridge.conversation_of(KHANH) == conversation
    assert texts(bridge.customer_messages(KHANH)) == ["hỏi", "hỏi thêm"]
    (listed,) = [c for c in bridge.fc_state()["conversations"] if c["conversation_id"] == conversation]
    assert listed["status"] in ("new", "reopened")
    # A second resolve is a new resolution: one more notice.
    bridge.fc.set_resolved(conversation, True)
    bridge.settle()
    assert bridge.sent_to(KHANH) == [bridge.settings.sync.resolve_notice] * 2


@on(SIMS)
@pytest.mark.parametrize("burst", [9, 10, 11, 25, 60])
def test_more_than_a_page_written_while_we_page_keeps_each_customers_order(bridge, monkeypatch, burst, two_ids):
    bridge.zalo.modes.two_ids = two_ids
    # Two customers write 30 rows between polls; while zfsync reads the feed's first page, one of them
    # writes a burst. A burst of a page or more shifts every offset by more than a page, so the second page
    # read holds rows newer than the first: their order must still be Zalo's. (60 is more than the reader
    # looks ahead for the first page's last row: it then takes each customer from their conversation.)
    bridge.zalo.add_customer_message(user_id(2), "Khách 2", text="first")  # the next scan ends at it
    bridge.cycle()
    for i in range(15):
        for n in range(2):
            bridge.zalo.add_customer_message(user_id(n), f"Khách {n}", text=f"u{n} m{i}")
    real_page = ZaloSim.listrecentchat
    calls = 0

    def page_with_burst(self, request):
        nonlocal calls
        calls += 1
        if calls == 2:
            for i in range(15, 15 + burst):
                self.add_customer_message(user_id(0), "Khách 0", text=f"u0 m{i}")
        return real_page(self, request)

    monkeypatch.setattr(ZaloSim, "listrecentchat", page_with_burst)
    bridge.settle(rounds=3)
    assert texts(bridge.customer_messages(user_id(0))) == [f"u0 m{i}" for i in range(15 + burst)]
    assert texts(bridge.customer_messages(user_id(1))) == [f"u1 m{i}" for i in range(15)]
