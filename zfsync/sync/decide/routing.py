"""Which FreshChat channel (and group) a customer's new conversation opens in, decided with no I/O.

``[[route]]`` tables in the config are tried in order; the first that matches wins, and the default
``freshchat.channel_id`` takes the rest. A route matches a Zalo tag the OA set on the customer, a
keyword in the message that opens the conversation (whole words; letter case and accents as typed are both
ignored: "bảo hành" matches "BAO HANH", "kw4" does not match "kw499"), the OA the daemon serves, or a Zalo
group chat (by its id, or "*" for every group). A route
whose channel or group FreshChat does not have is skipped, and a conversation FreshChat refuses to open
where a route says opens in the default channel instead: a wrong route never hides a customer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

from zfsync.domain import Route


@dataclass(frozen=True)
class Destination:
    channel_id: str
    group_id: str = ""
    route: int = 0  # 1-based: which [[route]] matched; 0: the default channel
    skipped: int = 0  # a route found wrong that matched first (its customer is told to the desk)


WORD = re.compile(r"\w+")


def folded(text: str) -> str:
    """Text as a keyword is compared: lower case, without accents (đ as d), spaces collapsed."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def destination(
    routes: tuple[Route, ...],
    default_channel: str,
    tags: tuple[str, ...],
    first_text: str,
    oa_id: str,
    skip: Collection[int] = (),
    group: str = "",
) -> Destination:
    """The first route that matches, else the default channel; a route in ``skip`` (found wrong) is passed
    over, and the first such that matched is named in ``skipped``. ``group``: the Zalo group chat's id, when
    the conversation is one (a route's ``zalo_group`` names it, or "*" every group)."""
    tag_set = {folded(t) for t in tags}
    words = f" {' '.join(WORD.findall(folded(first_text)))} "
    skipped = 0
    for number, route in enumerate(routes, start=1):
        if (
            (route.tag and folded(route.tag) in tag_set)
            or (route.keyword and has_words(words, route.keyword))
            or (route.oa and route.oa == oa_id)
            or (route.zalo_group and group and route.zalo_group in ("*", group))
        ):
            if number not in skip:
                return Destination(route.channel_id, route.group_id, number, skipped)
            skipped = skipped or number
    return Destination(default_channel, skipped=skipped)


def has_words(words: str, keyword: str) -> bool:
    """Whether the keyword's words stand in the text as whole words, in order ("kw4" is not in "kw499",
    "bảo hành" is in "Bảo hành máy giặt?")."""
    wanted = " ".join(WORD.findall(folded(keyword)))
    return bool(wanted) and f" {wanted} " in words


def problems(routes: tuple[Route, ...], channel_ids: set[str], group_ids: set[str] | None) -> dict[int, list[str]]:
    """The routes whose channel or group the FreshChat account does not have: route number -> what is wrong
    (the daemon skips them, `zfsync check` names them). ``group_ids`` None: the groups could not be listed, so
    they are not judged."""
    found: dict[int, list[str]] = {}
    for number, route in enumerate(routes, start=1):
        wrong = []
        if route.channel_id not in channel_ids:
            wrong.append(f"channel_id {route.channel_id} is not among the channels")
        if route.group_id and group_ids is not None and route.group_id not in group_ids:
            wrong.append(f"group_id {route.group_id} is not among the account's groups")
        if wrong:
            found[number] = wrong
    return found
