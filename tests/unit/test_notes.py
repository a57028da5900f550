"""The notes agents read, decided with no I/O: what `/zalo status` tells, and which notes `sync.agent_notes` posts."""

from __future__ import annotations

from dataclasses import replace

from zfsync.sync.decide.notes import CustomerStatus, status_note

NOW_MS = 1_800_000_000_000
HOUR_MS = 3_600_000
SEEN = CustomerStatus(
    now_ms=NOW_MS,
    window_closes_ms=NOW_MS + 100 * HOUR_MS,
    free_until_ms=NOW_MS + 20 * HOUR_MS,
    free_left=None,
    tags=(),
    shared=(),
    failed_replies=2,
)


def test_each_fact_a_line():
    lines = status_note(SEEN).splitlines()
    assert lines[1].startswith("- reply window: open until ")
    assert lines[2].startswith("- free replies: until ") and lines[2].endswith("(not counted)")
    assert lines[3:] == ["- tags: none", "- shared details: none", "- failed replies to this customer: 2"]


def test_what_is_not_known_or_over_is_said_so():
    assert "(3 left)" in status_note(replace(SEEN, free_left=3))
    assert "spent or over" in status_note(replace(SEEN, free_left=0))
    assert "spent or over" in status_note(replace(SEEN, free_until_ms=NOW_MS - 1))
    unknown = status_note(replace(SEEN, window_closes_ms=0, free_until_ms=0, tags=None, unreadable="timed out"))
    assert "not known yet" in unknown and "not readable now (timed out)" in unknown and "free replies" not in unknown
    assert "closed since" in status_note(replace(SEEN, window_closes_ms=NOW_MS - HOUR_MS))


def test_which_notes_each_setting_posts():
    from zfsync.sync.decide.notes import ANSWER, FAILURE, INFO, shown

    table = {setting: {level for level in (FAILURE, ANSWER, INFO, "") if shown(level, setting)} for setting in
             ("all", "failures", "off")}  # fmt: skip
    assert table == {
        "all": {FAILURE, ANSWER, INFO, ""},
        "failures": {FAILURE, ANSWER, ""},  # a note an older zfsync queued (no level) counts as a failure's
        "off": {ANSWER},
    }


def test_which_failed_replies_go_again():
    from zfsync.domain import FailedReply
    from zfsync.sync.decide import retries

    failed = [
        FailedReply(1, "window", "c1", False),
        FailedReply(2, "-213", "c1", True),  # sent again once already, on an earlier return
        FailedReply(3, "503", "c1", False),  # given up after transient errors: it may have landed
        FailedReply(4, "-230", "c2", False),
        FailedReply(5, "-201", "c1", False),  # a bad parameter: coming back mends nothing
    ]
    assert retries.on_return(failed) == [1, 4]
    assert retries.on_command(failed, "c1", latest_only=False) == ([1, 2, 5], 1)
    assert retries.on_command(failed, "c1", latest_only=True) == ([5], 1)
    assert retries.on_command(failed, "c9", latest_only=False) == ([], 0)
