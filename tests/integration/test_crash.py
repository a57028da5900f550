"""A small seeded run of scripts/crashtest: the real daemon, SIGKILLed ten times mid-traffic."""

from __future__ import annotations

from zfsync.crashtest import CrashTest


def test_ten_sigkills_lose_and_double_nothing(tmp_path):
    test = CrashTest(tmp_path, seed=7, users=10, messages=100)
    try:
        report = test.run(kills=10)
    finally:
        test.close()
    assert report.kills == 10
    assert report.zalo_to_freshchat == 100 and report.freshchat_to_zalo == 100
    assert report.ok, report.render() + f"\n{report.lost} {report.duplicated} {report.out_of_order}"
