"""Months of history in seconds: contacts already mapped to FreshChat conversations, in both simulators
and the store, as a long-running installation would have them. Used by the schedule tests and benchmarks.

The rows are written in bulk (`devtools.bulk.import_mapped`): tens of thousands of contacts must take seconds.
"""

from __future__ import annotations

import random
import time

from devtools.bulk import MappedContact, import_mapped
from zfsync.domain import reference_id
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store


def zalo_user_id(n: int) -> str:
    return f"84{n:017d}"


def seed_mapped(
    store: Store,
    zalo: ZaloSim,
    fc: FreshChatSim,
    count: int,
    last_activity_at: float,
    messages_each: int = 0,
    start: int = 0,
    polls_spread_over: float = 0.0,
    in_feed: int = 0,
) -> list[str]:
    """Map ``count`` Zalo users to FreshChat conversations last active at ``last_activity_at``, with
    ``messages_each`` delivered messages apiece in the store; returns their Zalo user ids.

    By default every conversation is due for a poll at once (the worst case). With ``polls_spread_over``
    their next polls are spread over that many seconds from now, as in an installation that has been
    running for a while. ``in_feed``: that many of the users' last messages stand in Zalo's feed, as on
    an OA in use (the first start takes them as history); by default the feed is empty."""
    rng = random.Random(start)
    ids = [zalo_user_id(start + n) for n in range(count)]
    time_ms = int(last_activity_at * 1000)
    conversation_of: dict[str, str] = {}
    with zalo.lock, fc.lock:
        for user_id in ids:
            zalo.users[user_id] = {"display_name": f"Khách {user_id[-5:]}", "avatar": "", "last_interaction": time_ms}
            fc_user = f"fcu-{user_id}"
            fc.users[fc_user] = {"id": fc_user, "reference_id": reference_id(user_id), "first_name": user_id}
            conversation_of[user_id] = fc.open_conversation(fc_user, CHANNEL_ID, [])["conversation_id"]
    for user_id in ids[-in_feed:] if in_feed else []:
        zalo.add_customer_message(user_id, text="Cảm ơn shop", time=time_ms)
    now = time.time()
    import_mapped(
        store,
        [
            MappedContact(
                zalo_user_id=u,
                fc_user_id=f"fcu-{u}",
                fc_conversation_id=conversation_of[u],
                last_activity_at=last_activity_at,
                next_poll_at=now + rng.random() * polls_spread_over if polls_spread_over else last_activity_at + 600,
            )
            for u in ids
        ],
        delivered_each=messages_each,
    )
    return ids
