"""Every decoded answer is free of invalid code points, whether or not `safe_text` had to walk it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zfsync.domain import REPLACEMENT, json_may_hold_invalid
from zfsync.sides import http


class _Answer:
    """What `http.json_body` reads of a response."""

    status_code = 200
    headers = {"Content-Type": "application/json"}  # noqa: RUF012

    def __init__(self, text: str):
        self.text = text


def decode(text: str):
    return http.json_body(_Answer(text), side="zalo", endpoint="test")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "may_hold", "decoded"),
    [
        ('{"a": "xin chào"}', False, {"a": "xin chào"}),
        ('{"a": "\\u00e0 \\u1ea1"}', False, {"a": "à ạ"}),  # escapes, none of a surrogate
        ('{"a": "\\ud83d\\ude00"}', True, {"a": "😀"}),  # a pair: one valid character
        ('{"a": "\\ud83d x"}', True, {"a": REPLACEMENT + " x"}),
        ('{"a": "\\uDC00"}', True, {"a": REPLACEMENT}),
        ('{"\\udfff": ["\\ud800", 1]}', True, {REPLACEMENT: [REPLACEMENT, 1]}),
        ('{"a": "\ud800"}', True, {"a": REPLACEMENT}),  # the raw code point, not an escape
        ('{"a": "\\\\ud800"}', True, {"a": "\\ud800"}),  # an escaped backslash: a false yes, decoded right
        ('{"a": "\\ue000 \\uD7FF"}', False, {"a": "\ue000 \ud7ff"}),  # either side of the surrogates
    ],
)
def test_an_answer_is_walked_only_when_it_can_hold_an_invalid_code_point(text, may_hold, decoded):
    assert json_may_hold_invalid(text) is may_hold
    assert decode(text) == decoded


# Surrogates are rare in hypothesis' own characters: half and whole pairs, and what an escape is made of, are mixed in.
TEXTS = st.text(
    st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff", "\ud83d", "\ude00", "\\", "u"])
)


@given(
    value=st.recursive(TEXTS | st.integers(), lambda inner: st.lists(inner) | st.dictionaries(TEXTS, inner)),
    ascii_only=st.booleans(),
)
def test_no_decoded_answer_holds_an_invalid_code_point(value, ascii_only):
    decoded = json.dumps(decode(json.dumps(value, ensure_ascii=ascii_only)), ensure_ascii=False)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in decoded)
