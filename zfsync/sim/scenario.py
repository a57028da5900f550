"""Months of history in seconds: contacts already mapped to FreshChat conversations, in both simulators
and the store, as a long-running installation would have them. Used by the schedule tests and benchmarks.
"""

from __future__ import annotations

from zfsync.domain import Z2F
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.zalo import ZaloSim
from zfsync.store import SENT, NewRow, Store
from zfsync.sync.freshchat_writer import reference_id


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
) -> list[str]:
    """Map ``count`` Zalo users to FreshChat conversations last active at ``last_activity_at``, with
    ``messages_each`` delivered messages apiece in the store; returns their Zalo user ids."""
    ids = [zalo_user_id(start + n) for n in range(count)]
    time_ms = int(last_activity_at * 1000)
    with store.atomic():
        for user_id in ids:
            with zalo.lock, fc.lock:
                zalo.users[user_id] = {
                    "display_name": f"Khách {user_id[-5:]}",
                    "avatar": "",
                    "last_interaction": time_ms,
                }
                fc_user = f"fcu-{user_id}"
                fc.users[fc_user] = {"id": fc_user, "reference_id": reference_id(user_id), "first_name": user_id}
                conversation_id = fc._create_conversation(fc_user, CHANNEL_ID, [])["conversation_id"]
            rows = [
                NewRow(
                    Z2F,
                    f"hist-{user_id}-{i}",
                    "text",
                    {"type": "text", "message": f"old {i}"},
                    last_activity_at,
                    status=SENT,
                    dest_id=f"fcm-{user_id}-{i}",
                )
                for i in range(messages_each)
            ]
            contact = store.record_zalo_messages(
                user_id, user_id, "", rows, (time_ms, f"seed-{user_id}"), time_ms, last_activity_at
            )
            store.set_fc_user(contact.id, fc_user, last_activity_at)
            conversation = store.add_conversation(contact.id, conversation_id, last_activity_at)
            store.record_conversation_read(
                conversation.id, contact.id, [], None, last_activity_at + 600, None, None, last_activity_at
            )
    return ids
