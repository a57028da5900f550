"""Zalo's error codes: one registry says what each becomes, what it means, and what the agent is told."""

from __future__ import annotations

import pytest

from zfsync.domain.errors import AuthError, PermanentError, RateLimited, TransientError
from zfsync.sides.zalo.codes import CODES, TokenRejected, error_for
from zfsync.sync.decide import notes


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-32, RateLimited),
        (-200, TransientError),
        (-216, TokenRejected),
        (401, TokenRejected),
        (-204, AuthError),
        (-213, PermanentError),
        (-999, PermanentError),  # unknown: this request is refused, the side is not
    ],
)
def test_each_code_becomes_its_class(code, cls):
    assert type(error_for(code, "", endpoint="/v3.0/oa/message/cs")) is cls


def test_the_meaning_stands_in_for_a_missing_message_and_the_advice_reaches_the_agent():
    error = error_for(-213, "", endpoint="/v3.0/oa/message/cs")
    assert error.reason == "the user has not followed the OA"
    note = notes.failure_note(str(error.code), error.reason, "chào bạn", error.advice)
    assert "scan the OA's QR code" in note and "chào bạn" in note
    unknown = error_for(-999, "Lỗi lạ", endpoint="/v3.0/oa/message/cs")
    assert unknown.advice == ""
    assert "Zalo refused the message: Lỗi lạ (code -999)" in notes.failure_note("-999", unknown.reason, "x")


def test_every_code_has_a_meaning_and_advice_only_where_a_reply_can_fail_for_good():
    assert all(c.meaning for c in CODES.values())
    assert all(c.cls is PermanentError for c in CODES.values() if c.advice)
