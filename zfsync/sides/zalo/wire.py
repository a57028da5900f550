"""Every JSON shape of Zalo's OA API, both ways: the request bodies zfsync writes and the answers it reads,
as domain values (research/zalo_api.md; each shape traces to tests/contract/recorded/zalo/). No HTTP here:
the client (`client.py`) makes the requests and hands the answers over; `data_of` reads the envelope and
classifies its error code (`codes.error_for`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import structlog

from zfsync.domain import Json, ZaloContent, ZaloMessage, ZaloPackage, ZaloProfile, ZaloQuota, ZaloSent
from zfsync.domain.errors import InvalidResponse, PermanentError
from zfsync.log import Throttle
from zfsync.sides.zalo.codes import error_for

log = structlog.get_logger("zfsync.zalo")
_malformed = Throttle()  # rows that cannot be identified, each said once an hour

VIETNAM = timezone(timedelta(hours=7))


# --- what zfsync writes --------------------------------------------------------------------------------


def media_template(element: Json, caption: str) -> Json:
    message: Json = {"attachment": {"type": "template", "payload": {"template_type": "media", "elements": [element]}}}
    if caption:
        message["text"] = caption
    return message


def tag_body(user_id: str, tag: str) -> Json:  # tag/tagfollower and tag/rmfollowerfromtag
    return {"user_id": user_id_param(user_id), "tag_name": tag}


def info_request(title: str, subtitle: str, image_url: str) -> Json:
    """The card that asks the customer to share their details with the OA (``request_user_info``)."""
    element = {"title": title[:100], "subtitle": subtitle[:500], "image_url": image_url}
    return {
        "attachment": {"type": "template", "payload": {"template_type": "request_user_info", "elements": [element]}}
    }


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


def interacted_of(data: Any, endpoint: str = "/v3.0/oa/user/getlist") -> tuple[list[str], int]:
    """``user/getlist``: one page of user ids, and the total."""
    if not isinstance(data, dict):
        raise InvalidResponse("user/getlist has no data object", side="zalo", endpoint=endpoint)
    users = data.get("users")
    users = users if isinstance(users, list) else []
    ids = [str(u["user_id"]) for u in users if isinstance(u, dict) and u.get("user_id") not in (None, "")]
    return ids, int_or(data.get("total"), len(ids))


def oa_of(data: Any) -> Json:
    if not isinstance(data, dict):  # getoa: the OA's own details
        raise InvalidResponse("getoa has no data object", side="zalo", endpoint="/v2.0/oa/getoa")
    return data


def oa_id_of(data: Json) -> str:
    """``getoa``: the OA's id. The docs' field table says oa_id; their own example answers oaid."""
    oa_id = data.get("oa_id") if data.get("oa_id") is not None else data.get("oaid")
    return str(oa_id) if oa_id is not None else ""


def sent_of(data: Any, endpoint: str = "/v3.0/oa/message/cs") -> ZaloSent:
    """A send's answer: the message's id (an answer without one is no answer), and what it was paid from."""
    if not isinstance(data, dict) or not data.get("message_id"):
        raise InvalidResponse("send answer has no message_id", side="zalo", endpoint=endpoint)
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


def uploaded(data: Any, keys: tuple[str, ...], name: str, endpoint: str) -> str:
    """An upload's answer: the attachment id or file token under the first of ``keys`` it has."""
    for key in keys:
        if isinstance(data, dict) and data.get(key):
            return str(data[key])
    # GOCLAW saw Zalo answer success with empty data when the file name's extension was not accepted.
    raise PermanentError(
        f"upload answered without {keys[0]}: Zalo did not accept {name!r}", side="zalo", endpoint=endpoint
    )


def data_of(envelope: Any, endpoint: str, status: int) -> Any:
    """The ``data`` of an answer's envelope, ``{"error": 0, "message": ..., "data": ...}``; Zalo's error
    code as the error `codes.error_for` classifies (usually with HTTP 200)."""
    if not isinstance(envelope, dict):
        raise InvalidResponse("answer is not a JSON object", side="zalo", endpoint=endpoint)
    code = envelope.get("error", 0)
    try:
        code = int(code)
    except (TypeError, ValueError):
        raise InvalidResponse(f"error field is not a number: {code!r}", side="zalo", endpoint=endpoint) from None
    if code != 0:
        raise error_for(code, str(envelope.get("message") or ""), endpoint=endpoint, status=status)
    if status >= 400:
        raise error_for(-1, f"HTTP {status}", endpoint=endpoint, status=status)
    return envelope.get("data")


def rows_of(data: Any, endpoint: str, listing: str, from_oa: Callable[[Json], bool | None]) -> list[ZaloMessage]:
    """A listing's rows (``listrecentchat`` or ``conversation``); ``from_oa(raw)`` says whether a row is
    the OA's (None: it cannot be placed). A row that cannot be identified is left out, and said once an
    hour with how often it came (it stays in the feed, read at every poll)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidResponse("expected a list of messages in data", side="zalo", endpoint=endpoint)
    rows: list[ZaloMessage] = []
    for raw in data:
        side = from_oa(raw) if isinstance(raw, dict) and raw.get("message_id") else None
        message = row_of(raw, side, listing) if side is not None else None
        if message is None:
            key = json.dumps(raw, sort_keys=True, default=str)[:2000]
            repeats = _malformed.repeats(key)
            if _malformed.first(key):
                keys = sorted(raw) if isinstance(raw, dict) else None
                log.warning("zalo_row_malformed", endpoint=endpoint, keys=keys, seen_since=repeats)
        else:
            rows.append(message)
    fill_missing_times(rows)
    return rows


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
    items = value if isinstance(value, list) else []
    return tuple(str(v).strip() for v in items if isinstance(v, str | int) and str(v).strip())


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
_ENVELOPE = {"message_id", "src", "time", "sent_time", "from_id", "to_id", "group_id"}
_ENVELOPE |= {"from_display_name", "to_display_name", "from_avatar", "to_avatar"}
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
