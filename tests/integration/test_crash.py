"""A small seeded run of scripts/crashtest: the real daemon, SIGKILLed ten times mid-traffic, with the
simulators plain and with same-millisecond Zalo rows, send ids unlike listing ids and a conversation listing
that shows each message under another id than the feed."""

from __future__ import annotations

import pytest

from devtools.crashtest import CrashTest


@pytest.mark.parametrize("realistic", [False, True], ids=["plain", "ties-id-mismatch-two-ids"])
def test_ten_sigkills_lose_and_double_nothing(tmp_path, realistic):
    test = CrashTest(tmp_path, seed=7, users=10, messages=100, ties=realistic, id_mismatch=realistic, two_ids=realistic)
    try:
        report = test.run(kills=10)
    finally:
        test.close()
    assert report.kills == 10
    assert report.zalo_to_freshchat == 100 and report.freshchat_to_zalo == 100
    assert report.ok, report.render() + f"\n{report.lost} {report.duplicated} {report.out_of_order}"
