"""Who interacted in a period, through user/getlist, which lets 10,000 of a period's users be read
(offset ≤ 9951): a longer period is read day by day, a day past it in part, and said so."""

from __future__ import annotations

from datetime import UTC, datetime

from zfsync.store import Store
from zfsync.sync.read.interacted import interacted_since

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp()
THREE_DAYS_AGO_MS = int((NOW - 2 * 86_400) * 1000)


class Listing:
    """user/getlist over days (Vietnamese dates) with this many users each."""

    def __init__(self, per_day: dict[str, int]):
        self.per_day = per_day
        self.asked: list[tuple[str, int]] = []

    def interacted_users(self, period: str, offset: int, count: int = 50) -> tuple[list[str], int]:
        self.asked.append((period, offset))
        first, last = period.split(":")
        days = [d for d in sorted(self.per_day) if first <= d <= last]
        users = [f"{d}-{n}" for d in days for n in range(self.per_day[d])]
        return users[offset : offset + min(count, 50)], len(users)


def test_a_period_within_the_limit_is_read_in_one_listing():
    zalo = Listing({"2026_12_05": 30, "2026_12_06": 40, "2026_12_07": 10})
    found = interacted_since(zalo, THREE_DAYS_AGO_MS, NOW)
    assert found is not None and len(found.users) == 80 and found.cut == ()
    assert {p for p, _ in zalo.asked} == {"2026_12_05:2026_12_07"} and len(zalo.asked) == 2


def test_a_period_past_the_limit_is_read_day_by_day_and_a_day_past_it_is_said():
    zalo = Listing({"2026_12_05": 4_000, "2026_12_06": 10_250, "2026_12_07": 100})
    found = interacted_since(zalo, THREE_DAYS_AGO_MS, NOW)
    assert found is not None
    assert len(found.users) == 4_000 + 10_000 + 100  # everyone but the 250 Zalo lets nobody read
    assert found.cut == (("2026_12_06:2026_12_06", 10_250),)
    assert max(offset for _, offset in zalo.asked) == 9_950  # never past the documented offset


def test_the_cut_is_kept_for_status(tmp_path):
    store = Store.open(str(tmp_path / "s.db"))
    assert store.user_list_cut() is None
    store.note_user_list_cut(NOW, [("2026_12_06:2026_12_06", 10_250)])
    assert store.user_list_cut() == (NOW, [("2026_12_06:2026_12_06", 10_250)])
    store.set_state("zalo.user_list_cut", "garbage")
    assert store.user_list_cut() is None
    store.close()
