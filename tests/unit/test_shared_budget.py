"""The Zalo feeds of a fleet's tenants sharing one app's budget (`shared_feed_intervals`)."""

from __future__ import annotations

import pytest

from zfsync.sync.decide.schedule import daemon_ceiling, shared_feed_intervals


@pytest.mark.parametrize(
    ("limit", "active", "quiet", "expected"),
    [
        (4000, 1, 0, (2.0, 15.0)),  # one OA: as configured
        (4000, 20, 180, (2.0, 18.0)),  # 200 OAs, 20 busy: quiet ones take 1,200 requests of 2,400, busy ones the rest
        (4000, 200, 0, (10.0, 15.0)),  # 200 busy OAs share 1,200 polls a minute
        (4000, 0, 200, (2.0, 20.0)),  # all quiet: 1,200 requests a minute, 30 % of the app's limit
        (4000, 10, 1000, (2.0, 100.0)),  # 1,000 quiet OAs would take 8,000 at 15 s: stretched to their 1,200
        (100, 2, 20, (8.0, 80.0)),  # a 2026 package of 100 a minute: everyone slower, within it
    ],
)
def test_feeds_sharing_a_zalo_app_leave_forty_percent_of_its_budget_to_sends(limit, active, quiet, expected):
    intervals = shared_feed_intervals(limit, 2.0, active, quiet, 15.0)
    assert intervals == expected
    requests = 2 * (active * 60 / intervals[0] + quiet * 60 / intervals[1])
    assert requests <= limit * 0.6 + 1e-6


@pytest.mark.parametrize(
    ("members", "fleet", "mine", "expected"),
    [
        # two daemons, the 20 busy feeds all on the first: it gets what they need, the other what its quiet take
        (2, (20, 180), (20, 80), 1200 + 533 + 800),
        (2, (20, 180), (0, 100), 666 + 800),
        (1, (20, 180), (20, 180), 2400 + 1600),  # one daemon: the whole limit
        (2, (0, 0), (0, 0), 800),  # nothing noted yet: the sends' part
    ],
)
def test_daemons_share_an_apps_budget_by_the_feeds_each_holds(members, fleet, mine, expected):
    ceiling = daemon_ceiling(4000, members, fleet, mine, 2.0, 15.0)
    assert abs(ceiling - expected) <= 1, ceiling
