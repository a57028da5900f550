"""The Zalo feeds of a fleet's tenants sharing one app's budget (`shared_feed_intervals`)."""

from __future__ import annotations

import pytest

from zfsync.sync.decide.schedule import shared_feed_intervals


@pytest.mark.parametrize(
    ("limit", "active", "quiet", "expected"),
    [
        (4000, 1, 0, (2.0, 15.0)),  # one OA: as configured
        (4000, 20, 180, (2.0, 15.0)),  # 200 OAs, 20 busy: quiet ones at 15 s take 720 of 2000; busy at 2 s
        (4000, 200, 0, (6.0, 15.0)),  # 200 busy OAs: 2000 feed polls a minute shared
        (4000, 0, 200, (2.0, 15.0)),  # all quiet: 800 a minute, 20 % of the app's limit
        (4000, 10, 1000, (2.0, 60.0)),  # 1000 quiet OAs would take 4000 at 15 s: stretched to their 1000
        (100, 2, 20, (4.8, 48.0)),  # a 2026 package of 100 a minute: everyone slower, within it
    ],
)
def test_feeds_sharing_a_zalo_app_stay_within_half_of_its_budget(limit, active, quiet, expected):
    intervals = shared_feed_intervals(limit, 2.0, active, quiet, 15.0)
    assert intervals == expected
    polls = active * 60 / intervals[0] + quiet * 60 / intervals[1]
    assert polls <= limit * 0.5 + 1e-6
