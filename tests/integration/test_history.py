"""History on first connect: each customer's Zalo messages of the last days copied into FreshChat, oldest
first behind a note that says so, after every live message, resumable after a kill, never doubled."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.conftest import FAKES, SIMS_IN_PROCESS, Bridge, fake_sides, make_engine, on, start_bridge, start_fakes_bridge
from zfsync import cli
from zfsync.cli import status_text
from zfsync.runtime import status
from zfsync.sides.priority import Priority
from zfsync.sim.fakes import FakeClock
from zfsync.sim.freshchat import FreshChatSim
from zfsync.sim.zalo import ZaloSim
from zfsync.sync.read import history
from zfsync.sync.write import freshchat_posts

DAY = 86_400


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it."""


def user_id(n: int) -> str:
    return f"84{n:017d}"


def texts(messages: list[dict]) -> list[str]:
    return [p["text"]["content"] for m in messages for p in m["message_parts"] if "text" in p]


def desk(tmp_path, store_url: str, customers: int, each: int, backend: str = FAKES, **sync: object) -> Iterator[Bridge]:
    """A desk whose customers wrote on Zalo before zfsync's first start: ``each`` messages apiece over the
    last three days (every tenth an OA staff answer), and one message 20 days old that is out of reach."""
    if backend == FAKES:
        zalo, fc = fake_sides(FakeClock())
    else:
        zalo, fc = ZaloSim(), FreshChatSim()
        holder: list = []
        zalo.clock = fc.clock = lambda: holder[0]() if holder else time.time()
    start = time.time() - 3 * DAY
    for n in range(customers):
        zalo.add_customer_message(user_id(n), f"Khách {n}", text=f"u{n} too old", time=int((start - 17 * DAY) * 1000))
    for i in range(each):
        for n in range(customers):
            at = int((start + (i * customers + n) * 60) * 1000)
            if i % 10 == 9:
                zalo.add_oa_message(user_id(n), f"OA trả lời u{n} h{i}", time_ms=at)
            else:
                zalo.add_customer_message(user_id(n), f"Khách {n}", text=f"u{n} h{i}", time=at)
    if backend == FAKES:
        b = start_fakes_bridge(store_url, (zalo, fc), **sync)
    else:
        urls = ("http://zalo.sim", "http://freshchat.sim")
        b = start_bridge(tmp_path, zalo, fc, *urls, in_process=True, store_url=store_url, **sync)
        holder.append(b.clock)
    try:
        yield b
    finally:  # also when the test closes the generator
        b.store.close()


@pytest.fixture
def twenty(tmp_path, store_url, monkeypatch) -> Iterator[Bridge]:
    monkeypatch.setattr(history, "USERS_PER_STEP", 2)  # the import spans cycles, so a kill lands inside it
    yield from desk(tmp_path, store_url, 20, 30, import_history_days=7)


def imported(n: int) -> list[str]:
    return [f"u{n} h{i}" for i in range(30) if i % 10 != 9]


def test_twenty_customers_imported_killed_twice_resumed_live_first_nothing_doubled(twenty, monkeypatch):
    b = twenty
    # The first start read two customers' history; the import goes on a few customers a cycle.
    assert b.store.history_import() is not None
    # Killed while reading: the third customer of a step is never recorded.
    calls = 0
    original_record = b.store.record_history

    def dying_record(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Killed  # the customer's history was read, and is never written
        return original_record(*args, **kwargs)

    monkeypatch.setattr(b.store, "record_history", dying_record)
    with pytest.raises(Killed):
        b.cycle()
    monkeypatch.setattr(b.store, "record_history", original_record)
    b.restart()
    # Killed while posting: FreshChat took the 25th imported message, the store never heard.
    posts = 0
    original_send = freshchat_posts.CustomerMessagePost.send

    def dying_send(self):
        nonlocal posts
        result = original_send(self)
        posts += self.row.history
        if posts == 25:
            raise Killed
        return result

    monkeypatch.setattr(freshchat_posts.CustomerMessagePost, "send", dying_send)
    with pytest.raises(Killed):
        b.cycle()
    monkeypatch.setattr(freshchat_posts.CustomerMessagePost, "send", original_send)
    b.restart()
    # Live messages arrive while the import is half done: two customers with history, one new.
    assert b.store.history_import() is not None and b.store.history_waiting() > 0
    live = {user_id(3): "live from u3", user_id(17): "live from u17", user_id(99): "live from a new customer"}
    for user, text in live.items():
        b.zalo.add_customer_message(user, "Khách", text=text)
    started: list[tuple[bool, str]] = []
    original_deliver = b.engine.deliverer.deliver

    def recorded_deliver(direction, row, writer):
        started.append((row.history, row.source_id))
        return original_deliver(direction, row, writer)

    monkeypatch.setattr(b.engine.deliverer, "deliver", recorded_deliver)
    b.cycle()
    # Every live message started before any imported one, and crossed in that one cycle.
    first = [is_history for is_history, _ in started[: len(live)]]
    assert first == [False] * len(live), started[:6]
    for user, text in live.items():
        assert text in texts(b.customer_messages(user))
    assert b.store.history_import() is not None or b.store.history_waiting() > 0  # the import was not done yet
    b.settle(rounds=12)
    assert b.store.history_import() is None and b.store.history_waiting() == 0
    for n in range(20):
        got = texts(b.customer_messages(user_id(n)))
        old = [t for t in got if t.startswith(f"u{n} h")]
        assert old == imported(n), f"customer {n}: {got}"
        assert f"u{n} too old" not in got
        conversation = b.conversation(b.conversation_of(user_id(n)))["messages"]
        notes = [m for m in conversation if m.get("message_type") == "private"]
        markers = [texts([m])[0] for m in notes if texts([m])[0].startswith("🕘")]
        assert len(markers) == 1 and "30 messages" in markers[0], markers
        oa_notes = [t for m in notes for t in texts([m]) if "OA trả lời" in t]
        assert len(oa_notes) == 3, oa_notes  # OA staff's answers reach the agent as notes, once each
        # The marker stands before the imported messages (a live one may stand before it).
        order = [texts([m])[0] for m in conversation]
        assert order.index(markers[0]) < order.index(f"u{n} h0")
    for user, text in live.items():
        assert texts(b.customer_messages(user)).count(text) == 1


def test_the_import_neither_doubles_the_live_path_nor_runs_twice(tmp_path, store_url, monkeypatch):
    gen = desk(tmp_path, store_url, 3, 10)  # no import at the first start
    b = next(gen)
    try:
        b.zalo.add_customer_message(user_id(0), "Khách 0", text="after the start")
        b.settle(rounds=2)
        assert texts(b.customer_messages(user_id(0))) == ["after the start"]
        b.store.save_history_import(history.request(7, b.clock()))
        b.settle(rounds=3)
        expected = [f"u0 h{i}" for i in range(10) if i != 9]
        assert texts(b.customer_messages(user_id(0))) == ["after the start", *expected]
        # Asked again, further back: only what the first import did not reach is taken, behind a note of its own.
        b.store.save_history_import(history.request(30, b.clock()))
        b.settle(rounds=3)
        assert texts(b.customer_messages(user_id(0))) == ["after the start", *expected, "u0 too old"]
        markers = [t for t in texts(b.notes()) if t.startswith("🕘") and "Khách 0" not in t]
        assert sum("1 messages" in t for t in markers) == 3 and sum("10 messages" in t for t in markers) == 3
        # Imported history is counted apart: it neither fakes a latency nor an old waiting message.
        figures = b.store.figures(b.clock())
        assert figures.latency["z2f"]["p95"] is not None and figures.latency["z2f"]["p95"] < 60
    finally:
        gen.close()


def test_an_answered_history_is_not_an_unanswered_customer(tmp_path, store_url):
    gen = desk(tmp_path, store_url, 2, 10, import_history_days=7)
    b = next(gen)
    try:
        b.settle(rounds=3)
        # Customer 0's last row is OA staff's answer (the tenth), so nobody waits: the status agrees.
        contact = b.store.contact(user_id(0))
        assert contact is not None and contact.answered_ms >= contact.last_inbound_ms > 0
    finally:
        gen.close()


def test_an_imported_question_left_unanswered_back_then_is_not_a_customer_waiting_now(tmp_path, store_url):
    gen = desk(tmp_path, store_url, 3, 5, import_history_days=7)  # each customer wrote last, days ago
    b = next(gen)
    try:
        b.settle(rounds=3)
        assert b.store.history_import() is None and b.store.history_waiting() == 0
        assert status.collect(b.store, b.clock(), unanswered_minutes=30)["unanswered"]["count"] == 0
        b.zalo.add_customer_message(user_id(0), "Khách 0", text="còn hàng không?")  # a live question waits
        b.cycle()
        b.clock.advance(31 * 60)
        assert status.collect(b.store, b.clock(), unanswered_minutes=30)["unanswered"]["count"] == 1
    finally:
        gen.close()


@on(SIMS_IN_PROCESS)
def test_the_cli_asks_for_an_import_and_refuses_a_bad_number_of_days(tmp_path, monkeypatch, capsys, bridge):
    from tests.conftest import cli_config

    config = cli_config(tmp_path, bridge.settings.store_path, monkeypatch, bridge.settings.store_url)
    assert cli.main(["--config", str(config), "import-history", "--days", "0"]) == 2
    assert "1 to 365 days" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "import-history", "--days", "14"]) == 0
    out = capsys.readouterr().out
    assert "last 14 days" in out and "zfsync status" in out
    job = bridge.store.history_import()
    assert job is not None and job.days == 14 and job.users is None
    report = status.collect(bridge.store, bridge.clock())
    assert report["history"] == {
        "days": 14,
        "customers": 0,
        "customers_read": 0,
        "queued": 0,
        "waiting": 0,
        "per_minute": 0.0,
        "eta_seconds": None,
    }
    assert "history    import of the last 14 days: listing the customers" in status_text.render(report)
    bridge.cycle()  # nobody wrote in those days: the import ends at once
    assert bridge.store.history_import() is None
    assert status.collect(bridge.store, bridge.clock())["history"]["days"] is None


def test_an_import_of_200_messages_ends_while_the_desks_polls_want_more_than_the_whole_budget(tmp_path, store_url):
    # 20 customers x 10 old messages, through the real clients and their budgets
    gen = desk(tmp_path, store_url, 20, 10, SIMS_IN_PROCESS, import_history_days=7)
    b = next(gen)
    try:
        b.settings = replace(b.settings, freshchat=replace(b.settings.freshchat, requests_per_minute=600))
        b.restart()

        def busy_desk_sleep(seconds: float) -> None:
            # While a call waits, the desk's polls (other threads in the daemon) take all they may first:
            # a busy desk wants more than the whole budget.
            polls = b.engine.freshchat.quota
            while polls.available(Priority.FEED):
                polls.acquire(Priority.FEED)
            b.clock.advance(seconds)
            if not shown and b.clock() - began > 90 and b.store.history_waiting():
                shown.append(status_text.render(status.collect(b.store, b.clock()), b.clock()))

        b.engine = make_engine(b, sleep=busy_desk_sleep)
        began, shown = b.clock(), []
        while b.store.history_import() is not None or b.store.history_waiting():
            waited = b.clock() - began
            assert waited < 1800, f"the import starved: {b.store.history_waiting()} rows wait after {waited:.0f} s"
            busy_desk_sleep(1.0)
            b.cycle()  # and 2 s more
        for n in range(20):
            got = [t for t in texts(b.customer_messages(user_id(n))) if t.startswith(f"u{n} h")]
            assert got == [f"u{n} h{i}" for i in range(10) if i != 9]  # the tenth is OA staff's, a note
        (line,) = [line for line in shown[0].splitlines() if line.strip().startswith("history")]
        assert "a minute lately, about" in line and " min left)" in line, line  # the pace while it ran
    finally:
        gen.close()
