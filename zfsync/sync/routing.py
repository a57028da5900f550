"""Which FreshChat channel (and group) a customer's new conversation opens in, decided with no I/O.

``[[route]]`` tables in the config are tried in order; the first that matches wins, and the default
``freshchat.channel_id`` takes the rest. A route matches a Zalo tag the OA set on the customer, a
keyword in the message that opens the conversation (letter case and accents as typed are both
ignored: "bảo hành" matches "BAO HANH"), or the OA the daemon serves.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from zfsync.domain import Route


@dataclass(frozen=True)
class Destination:
    channel_id: str
    group_id: str = ""
    route: int = 0  # 1-based: which [[route]] matched; 0: the default channel


def folded(text: str) -> str:
    """Text as a keyword is compared: lower case, without accents (đ as d), spaces collapsed."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def destination(
    routes: tuple[Route, ...], default_channel: str, tags: tuple[str, ...], first_text: str, oa_id: str
) -> Destination:
    tag_set = {folded(t) for t in tags}
    text = folded(first_text)
    for number, route in enumerate(routes, start=1):
        if (
            (route.tag and folded(route.tag) in tag_set)
            or (route.keyword and folded(route.keyword) in text)
            or (route.oa and route.oa == oa_id)
        ):
            return Destination(route.channel_id, route.group_id, number)
    return Destination(default_channel)
