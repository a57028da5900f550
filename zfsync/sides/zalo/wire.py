"""Every JSON shape of Zalo's OA API, both ways: the request bodies zfsync writes and the answers it reads,
as domain values (research/zalo_api.md; each shape traces to tests/contract/recorded/zalo/). No HTTP here:
the client (`client.py`) makes the requests, classifies the errors and hands the answers' ``data`` over."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from zfsync.domain import Json, ZaloContent, ZaloMessage, ZaloPackage, ZaloProfile, ZaloQuota, ZaloSent

log = structlog.get_logger("zfsync.zalo")

VIETNAM = timezone(timedelta(hours=7))


# --- what zfsync writes --------------------------------------------------------------------------------


def media_template(element: Json, caption: str) -> Json:
    message: Json = {"attachment": {"type": "template", "payload": {"template_type": "media", "elements": [element]}}}
    if caption:
        message["text"] = caption
    return message


def user_id_param(user_id: str) -> int | str:
    # The docs type user_id as a long and send it unquoted; Python ints keep all digits.
    return int(user_id) if user_id.isdigit() else user_id


# --- what zfsync reads ---------------------------------------------------------------------------------


def profile_of(data: Json, user_id: str) -> ZaloProfile:
    """``user/detail``'s answer."""
    avatars = object_of(data.get("avatars"))
    tagged = object_of(data.get("tags_and_notes_info"))
    follower = data.get("user_is_follower")
    return ZaloProfile(
        user_id=str(data.get("user_id") or user_id),
        display_name=str(data.get("display_name") or ""),
        avatar=str(data.get("avatar") or avatars.get("240") or avatars.get("120") or ""),
        shared=shared(object_of(data.get("shared_info"))),
        tags=texts(tagged.get("tag_names")),
        notes=texts(tagged.get("notes")),
        follower=follower if isinstance(follower, bool) else None,
        last_interaction_day_ms=day_start_ms(data.get("user_last_interaction_date")),
    )


def user_quota_of(data: Json) -> tuple[int, ZaloQuota | None]:
    """``quota/message`` for a user: their last interaction (epoch ms, 0 if unknown) and ``cs_reply``."""
    reply = object_of(data.get("cs_reply"))
    quota = ZaloQuota("reply", count(reply.get("remain")), count(reply.get("total"))) if reply else None
    return int_or(data.get("last_interaction"), 0), quota


def packages_of(data: Any) -> list[ZaloPackage]:
    """``quota/message`` for the OA: its assets (its package's, bought, rewarded)."""
    assets = data if isinstance(data, list) else []
    return [
        ZaloPackage(
            text_of(a.get("product_type")),
            text_of(a.get("quota_type")),
            count(a.get("remain")) or 0,
            count(a.get("total")) or 0,
            day(a.get("valid_through")),
        )
        for a in assets
        if isinstance(a, dict)
    ]


def interacted_of(data: Json) -> tuple[list[str], int]:
    """``user/getlist``: one page of user ids, and the total."""
    users = data.get("users")
    users = users if isinstance(users, list) else []
    ids = [str(u["user_id"]) for u in users if isinstance(u, dict) and u.get("user_id") not in (None, "")]
    return ids, int_or(data.get("total"), len(ids))


def oa_id_of(data: Json) -> str:
    """``getoa``: the OA's id. The docs' field table says oa_id; their own example answers oaid."""
    oa_id = data.get("oa_id") if data.get("oa_id") is not None else data.get("oaid")
    return str(oa_id) if oa_id is not None else ""


def sent_of(data: Json) -> ZaloSent:
    """A send's answer (it has a ``message_id``): the id, and what the send was paid from."""
    quota = object_of(data.get("quota"))
    paid_from = (
        ZaloQuota(
            text_of(quota.get("quota_type")),
            count(quota.get("remain")),
            count(quota.get("total")),
            day(quota.get("expired_date")),
        )
        if quota
        else ZaloQuota("")  # no quota object: a paid message (or, from 2026, maybe a free one: the writer asks)
    )
    return ZaloSent(str(data["message_id"]), paid_from)


def row_of(raw: Json, from_oa: bool, listing: str) -> ZaloMessage | None:
    """A listing row (with a ``message_id``) whose side is known; None without the user's id."""
    user_side = "to" if from_oa else "from"
    user_id = raw.get(f"{user_side}_id")
    if user_id is None or user_id == "":
        return None
    return ZaloMessage(
        message_id=str(raw["message_id"]),
        user_id=str(user_id),
        from_oa=from_oa,
        time_ms=int_or(raw.get("time"), -1),
        content=content_of(raw),
        user_name=text_of(raw.get(f"{user_side}_display_name")),
        user_avatar=text_of(raw.get(f"{user_side}_avatar")),
        listing=listing,
    )


def side_of(raw: Json) -> bool | None:
    """Whether a row is the OA's (``src`` 0) or the user's (1); None when the row does not say."""
    src = raw.get("src")
    return int(src) == 0 if src in (0, 1, "0", "1") else None


# --- the fields ----------------------------------------------------------------------------------------


def int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def text_of(value: Any) -> str:
    return "" if value is None else str(value)


def object_of(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


MAX_COUNT = 100_000_000  # more messages than any OA package holds: a count past it is not believed


def count(value: Any) -> int | None:
    """A count Zalo may send as a number or a string ("7"); None when it sent none, or one no count can be
    (negative, a fraction, past `MAX_COUNT`): status shows only what can be true."""
    if isinstance(value, bool):
        return None
    try:
        count = int(str(value).strip())
    except ValueError:
        return None
    return count if 0 <= count <= MAX_COUNT else None


def day(value: Any) -> str:
    """A "dd/MM/yyyy" day as Zalo wrote it, if it is a day of the calendar ("" otherwise: "32/13/2026")."""
    text = text_of(value).strip()
    try:
        datetime.strptime(text, "%d/%m/%Y")
    except ValueError:
        return ""
    return text


def texts(value: Any) -> tuple[str, ...]:
    return (
        tuple(str(v).strip() for v in value if isinstance(v, str | int) and str(v).strip())
        if isinstance(value, list)
        else ()
    )


SHARED_KEYS = ("name", "phone", "address", "city", "district", "user_dob")
PHONE = re.compile(r"\+?[0-9]{8,15}")
PHONE_SEPARATORS = re.compile(r"[\s.()-]")


def shared(info: Json) -> tuple[tuple[str, str], ...]:
    """What the user chose to share, without the blanks Zalo fills the rest with (a phone of 0 is none).
    Only text and numbers are taken, and a phone only as digits with an optional leading plus (8 to 15 of
    them, as E.164 allows): anything else is left out, said in the log by key (never by value)."""
    found = []
    for key in SHARED_KEYS:
        value = info.get(key)
        if value is None or value == 0 or isinstance(value, bool):
            continue
        if not isinstance(value, str | int):
            log.info("zalo_shared_value_dropped", key=key, reason=f"a {type(value).__name__}, not text")
            continue
        text = str(value).strip()
        if key == "phone" and text and text != "0":
            text = PHONE_SEPARATORS.sub("", text)
            if not PHONE.fullmatch(text):
                log.info("zalo_shared_value_dropped", key=key, reason=f"not a phone number ({len(text)} characters)")
                continue
        if text and text != "0":
            found.append(("dob" if key == "user_dob" else key, text))
    return tuple(found)


def day_start_ms(value: Any) -> int:
    """Zalo's "dd/MM/yyyy" of a last interaction, as the first millisecond of that Vietnamese day (0 if odd)."""
    try:
        day = datetime.strptime(str(value), "%d/%m/%Y").replace(tzinfo=VIETNAM)
    except ValueError:
        return 0
    return int(day.timestamp() * 1000)


# A row's fields that say who and when, not what (they never reach the content), and those it has names for.
_ENVELOPE = {
    "message_id",
    "src",
    "time",
    "sent_time",
    "from_id",
    "to_id",
    "from_display_name",
    "to_display_name",
    "from_avatar",
    "to_avatar",
}
_CONTENT = {"type", "message", "url", "thumb", "description", "links", "location", "name", "file_name", "title"}
_NAMED = frozenset(_ENVELOPE | _CONTENT)


def content_of(raw: Json) -> ZaloContent:
    """What a listing row says, in zfsync's words (also used to upgrade rows an earlier zfsync stored as listed)."""
    links = raw.get("links")
    location = raw.get("location")
    names = (raw.get(key) for key in ("name", "file_name", "title"))
    return ZaloContent(
        type=text_of(raw.get("type")) or "unknown",
        text=text_of(raw.get("message")),
        url=text_of(raw.get("url")),
        thumb=text_of(raw.get("thumb")),
        description=text_of(raw.get("description")),
        links=tuple(_link(x) for x in links) if isinstance(links, list) else (),
        location=json.dumps(location, ensure_ascii=False) if isinstance(location, dict) else text_of(location),
        file_name=next((n.strip()[:200] for n in names if isinstance(n, str) and n.strip()), ""),
        extra={k: v for k, v in raw.items() if k not in _NAMED},
    )


def _link(item: Any) -> str:
    # The docs say a string array; a third-party fixture uses {url, name} objects. Accept both, and keep
    # a title where there is one.
    if isinstance(item, dict):
        target = item.get("url") or item.get("link")
        if not target:
            return json.dumps(item, ensure_ascii=False)
        return " ".join(text_of(x) for x in (item.get("title"), target) if x)
    return text_of(item)


def fill_missing_times(rows: list[ZaloMessage]) -> None:
    """A row without a usable time borrows its newer neighbour's, so it sorts where the page put it;
    with no neighbour it keeps -1, which the sync core reads as "time unknown"."""
    for i, row in enumerate(rows):
        if row.time_ms < 0:
            neighbours = [r.time_ms for r in rows[:i][::-1] + rows[i + 1 :] if r.time_ms >= 0]
            rows[i] = replace(row, time_ms=neighbours[0] if neighbours else -1)
