"""What every part of the domain shares: JSON objects, text made safe to store, a downloaded attachment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

REPLACEMENT = "\ufffd"
_INVALID_CODE_POINTS = re.compile("[\ud800-\udfff]")  # lone surrogates: JSON allows them, UTF-8 cannot hold them
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape of a surrogate, \ud800 to \udfff


def json_may_hold_invalid(text: str) -> bool:
    """Whether decoding the JSON ``text`` can give a string an invalid code point: only when the text holds
    one, or a ``\\u`` escape of a surrogate. (A false yes, such as an escaped backslash before "ud800",
    costs only the walk of `safe_text`.)"""
    return bool(_SURROGATE_ESCAPE.search(text) or _INVALID_CODE_POINTS.search(text))


def safe_text(value: Any) -> Any:
    """``value`` with every invalid code point in its strings replaced by U+FFFD, recursively."""
    if isinstance(value, str):
        return _INVALID_CODE_POINTS.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {safe_text(k): safe_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe_text(v) for v in value]
    return value


@dataclass(frozen=True)
class Media:
    """A downloaded attachment, held in memory: every size is capped before it gets here."""

    data: bytes = field(repr=False)
    content_type: str
    name: str

    @property
    def size(self) -> int:
        return len(self.data)
