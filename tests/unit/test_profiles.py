"""The FreshChat user that stands for a Zalo customer, decided with no I/O: what is written of what they
shared, the OA's tags and notes, and Zalo's clocks; and what is never blanked."""

from __future__ import annotations

from dataclasses import replace

import pytest

from zfsync.domain import Contact, ZaloProfile
from zfsync.sync.desk.profiles import PROPERTY_LIMIT, freshchat_user, shown

NOW = 1_800_000_000.0
NOW_MS = int(NOW * 1000)
LAN = Contact(1, "u1", "Lan", "https://a/l.jpg", "fc-1", NOW_MS - 86_400_000, NOW_MS - 3_600_000, 0, "", 0.0)
SHARED = (("phone", "84901234567"), ("city", "Hồ Chí Minh"), ("dob", "21/04/1990"), ("name", "Lan"))


def props(user) -> dict[str, str]:
    return dict(user.properties)


@pytest.mark.parametrize(
    ("profile", "share", "before", "phone", "written", "absent"),
    [
        # Not read yet (a user made from a listing): the identity and the clocks only.
        (None, True, {}, "", {"external_user_provider": "zalo", "zalo_user_id": "u1"}, {"zalo_city", "zalo_tags"}),
        (
            ZaloProfile("u1", "Lan", shared=SHARED, tags=("VIP", "Quận 1"), notes=("Khách quen",)),
            True,
            {},
            "84901234567",
            {
                "zalo_city": "Hồ Chí Minh",
                "zalo_dob": "21/04/1990",
                "zalo_shared_name": "Lan",
                "zalo_tags": "VIP, Quận 1",
            },
            {"zalo_address"},  # not shared: not written, so an agent's value stays
        ),
        # Sharing off: no detail leaves Zalo; the OA's own tags still show.
        (ZaloProfile("u1", "Lan", shared=SHARED, tags=("VIP",)), False, {}, "", {"zalo_tags": "VIP"}, {"zalo_city"}),
        # The last tag removed on Zalo: emptied on FreshChat too, as zfsync alone writes it.
        (ZaloProfile("u1", "Lan"), True, {"zalo_tags": "VIP"}, "", {"zalo_tags": ""}, {"zalo_notes"}),
    ],
)
def test_what_the_freshchat_user_shows(profile, share, before, phone, written, absent):
    user = freshchat_user(LAN, "{name} Zalo", NOW, profile, share, before)
    assert user.first_name == "Lan Zalo" and user.phone == phone
    assert written.items() <= props(user).items()
    assert not absent & set(props(user))


def test_the_clocks_shown_in_vietnamese_time_and_the_free_replies_where_zalo_counts_them():
    user = freshchat_user(replace(LAN, free_replies_left=3), "{name}", NOW)
    shown_props = props(user)
    assert shown_props["zalo_window_closes_at"] == "2027-01-22T14:00:00+07:00"  # 7 days after 14:00
    assert shown_props["zalo_free_replies_until"] == "2027-01-17T14:00:00+07:00"
    assert shown_props["zalo_free_replies_left"] == "3"
    assert "zalo_free_replies_left" not in props(freshchat_user(LAN, "{name}", NOW))  # 2026: uncounted


def test_a_user_is_written_again_only_when_what_it_shows_changed():
    profile = ZaloProfile("u1", "Lan", shared=SHARED)
    first = shown(freshchat_user(LAN, "{name}", NOW, profile))
    assert shown(freshchat_user(LAN, "{name}", NOW + 60, profile)) == first
    moved = ZaloProfile("u1", "Lan", shared=(("city", "Hà Nội"),))
    assert shown(freshchat_user(LAN, "{name}", NOW, moved)) != first


def test_a_long_value_is_cut_on_a_word_within_the_property_limit():
    tags = tuple(f"Nhãn {n}" for n in range(100))  # 100 tags: about 800 characters joined
    notes = ("Khách quen, hay mua sỉ; " * 30,)
    user = freshchat_user(LAN, "{name} Zalo", NOW, ZaloProfile("u1", "Lan", tags=tags, notes=notes))
    shown_tags, shown_notes = props(user)["zalo_tags"], props(user)["zalo_notes"]
    assert len(shown_tags) <= PROPERTY_LIMIT and len(shown_notes) <= PROPERTY_LIMIT
    assert shown_tags.endswith("…") and shown_tags[:-1].split(", ")[-1] in ("Nhãn", *tags)
    assert shown_tags.startswith("Nhãn 0, Nhãn 1, ") and shown_notes.startswith("Khách quen, hay mua sỉ")
    short = freshchat_user(LAN, "{name} Zalo", NOW, ZaloProfile("u1", "Lan", tags=("VIP",)))
    assert props(short)["zalo_tags"] == "VIP"


def test_what_a_customer_typed_on_zalo_is_one_plain_line_on_freshchat():
    shared = (("name", "\u202eLan\nGọi lại"), ("address", "182 Lê Đại Hành\r\n\tQuận 10\x00"))
    tags = ("VIP\nKhách", "\x07", "Quận 1")
    user = freshchat_user(LAN, "{name} Zalo", NOW, ZaloProfile("u1", "Lan", shared=shared, tags=tags))
    shown = props(user)
    assert shown["zalo_shared_name"] == "Lan Gọi lại" and shown["zalo_address"] == "182 Lê Đại Hành Quận 10"
    assert shown["zalo_tags"] == "VIP Khách, Quận 1"  # a tag of control characters alone is no tag
    odd = freshchat_user(replace(LAN, display_name="Lan\u202e\n" + "x" * 500), "{name} Zalo", NOW)
    assert "\n" not in odd.first_name and "\u202e" not in odd.first_name and len(odd.first_name) <= 206
