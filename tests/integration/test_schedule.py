"""The FreshChat poll schedule over simulated time: cost follows active conversations, not all of them."""

from __future__ import annotations

import statistics
from dataclasses import replace

from devtools.scenario import seed_mapped
from tests.conftest import SIMS_IN_PROCESS, on
from zfsync.sim.freshchat import AGENT_ID

BUDGET = 600  # requests a minute


def fc_requests(bridge) -> int:
    return sum(bridge.fc.requests.values())


@on(SIMS_IN_PROCESS)
def test_ten_thousand_mapped_twenty_active_stays_under_budget_and_active_stay_fast(bridge):
    b = bridge
    b.settings = replace(b.settings, freshchat=replace(b.settings.freshchat, requests_per_minute=BUDGET))
    b.restart()
    seed_mapped(b.store, b.zalo, b.fc, 10_000, last_activity_at=b.clock() - 2 * 86_400)
    seeded_until = b.clock()
    active = seed_mapped(b.store, b.zalo, b.fc, 20, last_activity_at=b.clock() - 3 * 86_400, start=10_000)
    for user_id in active:  # twenty customers write now: their conversations turn hot
        b.zalo.add_customer_message(user_id, text="cần hỗ trợ")
    b.drive.zalo()

    per_minute: list[int] = []
    replies: dict[str, float] = {}  # reply text -> when the agent wrote it
    for minute in range(10):
        before = fc_requests(b)
        for second in range(60):
            if second % 15 == 0:  # each active conversation gets an agent reply every 15 s
                for user_id in active:
                    text = f"reply {minute}:{second} to {user_id}"
                    b.fc.add_agent_message(b.conversation_of(user_id), text, actor_id=AGENT_ID)
                    replies[text] = b.clock()
            b.drive.freshchat()
            b.clock.advance(1.0)
        per_minute.append(fc_requests(b) - before)

    delivered = {s["text"]: s["time"] / 1000 for s in b.zalo.sent}
    assert set(replies) <= set(delivered)  # every reply reached the customer
    latencies = sorted(delivered[text] - written for text, written in replies.items())
    p95 = latencies[int(len(latencies) * 0.95)]
    assert max(per_minute[1:]) <= BUDGET, per_minute  # the first minute may spend the saved-up bucket
    assert p95 <= b.settings.freshchat.hot_interval + 2, (p95, statistics.median(latencies))
    # The quiet conversations are not forgotten: a quarter of the budget keeps sweeping them.
    swept = [c for c in b.store.conversations_due(b.clock() + 10**9, 20_000, 0) if c.next_poll_at > seeded_until]
    assert len(swept) >= 500, len(swept)


@on(SIMS_IN_PROCESS)
def test_a_new_zalo_message_makes_a_cold_conversation_hot_at_once(bridge):
    b = bridge
    (user_id,) = seed_mapped(b.store, b.zalo, b.fc, 1, last_activity_at=b.clock() - 86_400)
    b.zalo.add_customer_message(user_id, text="alo")
    b.drive.zalo()
    conversation = b.store.current_conversation(b.store.contact(user_id).id)
    assert conversation.next_poll_at <= b.clock()


@on(SIMS_IN_PROCESS)
def test_customers_outside_the_window_only_get_the_slow_sweep(bridge):
    b = bridge
    seed_mapped(b.store, b.zalo, b.fc, 50, last_activity_at=b.clock() - 30 * 86_400)
    for _ in range(3600):
        b.drive.freshchat()
        b.clock.advance(1.0)
    # 50 conversations, swept every 6 hours: one poll each in the hour, not 50 x 360.
    assert fc_requests(b) <= 60
