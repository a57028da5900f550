"""A store an earlier zfsync left behind: what it queued still goes, exactly as it would have."""

from __future__ import annotations

import json

from zfsync.domain import Z2F, Kind, ZaloContent
from zfsync.runtime import app
from zfsync.store import Store

KHANH = "2512007384617209999"


def listed(message_id: str, **fields: object) -> dict:
    """A customer's row as Zalo's listing gives it, which is what earlier releases stored."""
    return {
        "message_id": message_id,
        "src": 1,
        "time": 1_767_000_000_000,
        "from_id": KHANH,
        "from_display_name": "Khánh",
        "to_id": "oa",
        **fields,
    }


def queued_by_an_earlier_release(
    store: Store, contact_id: int, source_id: str, kind: str, payload: dict, at: float, status: str = "pending"
) -> None:
    """A row as an earlier release wrote it: its payload as it stood, which today's typed rows cannot hold."""
    store.tables.Message.insert(
        direction=Z2F,
        source_id=source_id,
        part=0,
        contact=contact_id,
        kind=kind,
        payload=json.dumps(payload),
        source_time=at,
        status=status,
        created_at=at,
        done_at=None if status == "pending" else at,
    ).execute()


def test_rows_queued_as_zalo_listed_them_are_upgraded_at_start_and_go_out_unchanged(bridge):
    b = bridge
    b.zalo.add_customer_message(KHANH, "Khánh", text="chào shop")
    b.settle(rounds=2)
    contact = b.store.contact(KHANH)
    assert contact is not None
    copied = [{"image": {"url": "https://fc.example/copied.png"}}, {"text": {"content": "hoá đơn"}}]
    legacy = [
        (
            "m-loc",
            "location",
            listed("m-loc", type="location", message="đây", location='{"latitude": 10.7, "longitude": 106.6}'),
        ),
        (
            "m-link",
            "link",
            listed("m-link", type="link", message="xem", links=[{"title": "Shop", "url": "https://shop.vn"}]),
        ),
        ("m-card", "business card", listed("m-card", type="business card", message="", phone="0901234567")),
        # A photo whose media an earlier attempt copied already: the copy is kept, not made again.
        ("m-photo", "photo", listed("m-photo", type="photo", url="https://z/p.jpg", _freshchat_parts=copied)),
    ]
    now = b.clock()
    for n, (source, kind, payload) in enumerate(legacy):
        queued_by_an_earlier_release(b.store, contact.id, source, kind, payload, now + n)
    # An earlier release's failure note is zfsync's own payload: left as it is.
    note = {"text": "x", "conversation_id": "c"}
    queued_by_an_earlier_release(b.store, contact.id, "note:x", Kind.FAILURE_NOTE, note, now, status="failed")

    assert app.upgrade_payloads(b.store) == 4
    assert app.upgrade_payloads(b.store) == 0  # once is enough
    stored = dict(b.store.unsent_payloads(Z2F))
    assert sorted(ZaloContent.stored(p) for p in stored.values()) == [False, True, True, True, True]  # not the note
    card = next(p for p in stored.values() if p.get("type") == "business card")
    assert card["extra"] == {"phone": "0901234567"} and "from_id" not in card["extra"]

    b.settle(rounds=3)
    got = [m["message_parts"] for m in b.customer_messages(KHANH)][1:]
    texts = [" ".join(p["text"]["content"] for p in parts if "text" in p) for parts in got]
    assert texts[0].startswith("đây\n📍 Location: latitude 10.7, longitude 106.6")
    assert texts[1] == "xem\nShop https://shop.vn"
    assert "business card" in texts[2] and "0901234567" in texts[2]
    assert got[3] == copied
