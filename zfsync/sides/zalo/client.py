"""Zalo OA Open API: HTTP in, `ZaloMessage` and friends out (research/zalo_api.md).

Reads are documented at v2.0, sends and user APIs at v3.0. Every call carries the bare ``access_token``
header. Errors arrive as ``{"error": <negative>, "message": ...}`` usually with HTTP 200; `codes.error_for`
classifies them. A rejected token is refreshed once and the call retried once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
import structlog

from zfsync.domain import (
    CONVERSATION,
    FEED,
    Json,
    Media,
    ZaloContent,
    ZaloMessage,
    ZaloPackage,
    ZaloProfile,
    ZaloQuota,
    ZaloSent,
)
from zfsync.errors import InvalidResponse, PermanentError, PermissionMissing
from zfsync.log import Throttle
from zfsync.sides import http
from zfsync.sides.quota import Quota
from zfsync.sides.zalo.codes import DOCUMENTED_LIMIT, RATE_LIMIT_WAIT, TokenRejected, error_for
from zfsync.sides.zalo.oauth import TokenKeeper
from zfsync.sides.zalo.permissions import Ledger

log = structlog.get_logger("zfsync.zalo")

PAGE_SIZE = 10  # Zalo's documented maximum for listrecentchat and conversation
VIETNAM = timezone(timedelta(hours=7))
_malformed = Throttle()  # rows that cannot be identified, each said once an hour
TEXT_LIMIT = 2000


class ZaloClient:
    def __init__(
        self,
        api_url: str,
        tokens: TokenKeeper,
        session: requests.Session | None = None,
        on_request: Callable[[str], None] | None = None,
        quota: Quota | None = None,
        permissions: Ledger | None = None,
    ):
        self.api_url = api_url
        # The permission groups Zalo refused: their calls fail at once, and are asked again hourly.
        self.permissions = permissions or Ledger(lambda: 0.0)
        self._tokens = tokens
        # Every call to the OA API spends from the one Zalo budget; the window resets each minute.
        self.quota = quota or Quota("zalo", DOCUMENTED_LIMIT, minute_windows=True)
        self._session = session or http.new_session()
        self._oa_id: str | None = None
        self._oa_avatar: str | None = None
        self._on_request = on_request or (lambda endpoint: None)

    # --- reading -------------------------------------------------------------------------------------

    def recent_messages(self, offset: int, count: int = PAGE_SIZE) -> list[ZaloMessage]:
        """One page of the OA-wide feed, newest first (offset 0 = newest)."""
        data = self._get("/v2.0/oa/listrecentchat", {"offset": offset, "count": min(count, PAGE_SIZE)})
        return self._rows(data, "/v2.0/oa/listrecentchat", FEED)

    def conversation(self, user_id: str, offset: int, count: int = PAGE_SIZE) -> list[ZaloMessage]:
        """One page of one user's conversation with the OA, newest first."""
        query = {"user_id": _user_id_param(user_id), "offset": offset, "count": min(count, PAGE_SIZE)}
        return self._rows(self._get("/v2.0/oa/conversation", query), "/v2.0/oa/conversation", CONVERSATION)

    def user_profile(self, user_id: str) -> ZaloProfile:
        data = self._get("/v3.0/oa/user/detail", {"user_id": user_id})
        if not isinstance(data, dict):
            raise InvalidResponse("user/detail has no data object", side="zalo", endpoint="/v3.0/oa/user/detail")
        avatars = _dict(data.get("avatars"))
        tagged = _dict(data.get("tags_and_notes_info"))
        follower = data.get("user_is_follower")
        return ZaloProfile(
            user_id=str(data.get("user_id") or user_id),
            display_name=str(data.get("display_name") or ""),
            avatar=str(data.get("avatar") or avatars.get("240") or avatars.get("120") or ""),
            shared=_shared(_dict(data.get("shared_info"))),
            tags=_texts(tagged.get("tag_names")),
            notes=_texts(tagged.get("notes")),
            follower=follower if isinstance(follower, bool) else None,
            last_interaction_day_ms=_day_start_ms(data.get("user_last_interaction_date")),
        )

    def message_quota(self, user_id: str) -> tuple[int, ZaloQuota | None]:
        """Zalo's view of a user: their last interaction (epoch ms, 0 if unknown) and the free replies left."""
        ep = "/v3.0/oa/quota/message"
        data = self._request("POST", ep, json_body={"user_id": user_id})
        if not isinstance(data, dict):
            raise InvalidResponse("quota/message has no data object", side="zalo", endpoint=ep)
        reply = _dict(data.get("cs_reply"))
        quota = ZaloQuota("reply", _count(reply.get("remain")), _count(reply.get("total"))) if reply else None
        return _int_or(data.get("last_interaction"), 0), quota

    def package_quota(self) -> list[ZaloPackage]:
        """The OA's quota assets (its package's, bought, rewarded), as ``quota/message`` lists them."""
        ep = "/v3.0/oa/quota/message"
        data = self._request("POST", ep, json_body={"quota_owner": "OA"})
        assets = data if isinstance(data, list) else []
        return [
            ZaloPackage(
                _str(a.get("product_type")),
                _str(a.get("quota_type")),
                _count(a.get("remain")) or 0,
                _count(a.get("total")) or 0,
                _day(a.get("valid_through")),
            )
            for a in assets
            if isinstance(a, dict)
        ]

    def oa_id(self) -> str:
        if self._oa_id is None:
            self.oa_profile()
        return self._oa_id or ""

    def oa_avatar(self) -> str:
        if self._oa_avatar is None:
            self._oa_avatar = str(self.oa_profile().get("avatar") or "")
        return self._oa_avatar

    def tag_follower(self, user_id: str, tag: str) -> None:
        """Tag the user on Zalo (a tag that does not exist yet is created)."""
        body = {"user_id": _user_id_param(user_id), "tag_name": tag}
        self._request("POST", "/v2.0/oa/tag/tagfollower", json_body=body)

    def untag_follower(self, user_id: str, tag: str) -> None:
        body = {"user_id": _user_id_param(user_id), "tag_name": tag}
        self._request("POST", "/v2.0/oa/tag/rmfollowerfromtag", json_body=body)

    def send_info_request(self, user_id: str, title: str, subtitle: str, image_url: str) -> ZaloSent:
        """The card that asks the customer to share their details with the OA (``request_user_info``)."""
        element = {"title": title[:100], "subtitle": subtitle[:500], "image_url": image_url}
        payload = {"template_type": "request_user_info", "elements": [element]}
        return self._send(user_id, {"attachment": {"type": "template", "payload": payload}})

    def interacted_users(self, period: str, offset: int, count: int = 50) -> tuple[list[str], int]:
        """One page of the users who interacted with the OA in ``period`` (``TODAY``, ``L7D``,
        ``YYYY_MM_DD:YYYY_MM_DD`` ...); returns their ids and the total."""
        ep = "/v3.0/oa/user/getlist"
        query = {"offset": offset, "count": min(count, 50), "last_interaction_period": period}
        data = self._get(ep, query)
        if not isinstance(data, dict):
            raise InvalidResponse("user/getlist has no data object", side="zalo", endpoint=ep)
        users = data.get("users")
        users = users if isinstance(users, list) else []
        ids = [str(u["user_id"]) for u in users if isinstance(u, dict) and u.get("user_id") not in (None, "")]
        return ids, _int_or(data.get("total"), len(ids))

    def oa_profile(self) -> Json:
        data = self._get("/v2.0/oa/getoa", None)
        if not isinstance(data, dict):
            raise InvalidResponse("getoa has no data object", side="zalo", endpoint="/v2.0/oa/getoa")
        # The docs' field table says oa_id; their own example answers oaid. Either will do.
        oa_id = data.get("oa_id") if data.get("oa_id") is not None else data.get("oaid")
        if oa_id is not None and str(oa_id):
            self._oa_id = str(oa_id)
        return data

    # --- sending -------------------------------------------------------------------------------------

    def send_text(self, user_id: str, text: str, quote: str = "") -> ZaloSent:
        """Send a customer-service text (at most 2,000 characters), quoting the message ``quote`` if given."""
        message: Json = {"text": text}
        if quote:
            message["quote_message_id"] = quote
        return self._send(user_id, message)

    def send_image(self, user_id: str, attachment_id: str, caption: str = "") -> ZaloSent:
        element = {"media_type": "image", "attachment_id": attachment_id}
        return self._send(user_id, _media_template(element, caption))

    def send_gif(self, user_id: str, attachment_id: str, width: int, height: int) -> ZaloSent:
        # Zalo requires the size of a GIF, and only of a GIF.
        element = {"media_type": "gif", "attachment_id": attachment_id, "width": width, "height": height}
        return self._send(user_id, _media_template(element, ""))

    def send_file(self, user_id: str, token: str) -> ZaloSent:
        # The official docs and SDKs put the upload's token under payload.token (research §2.1).
        return self._send(user_id, {"attachment": {"type": "file", "payload": {"token": token}}})

    # --- media ---------------------------------------------------------------------------------------

    def upload_image(self, media: Media) -> str:
        """jpg/png up to 1 MB; returns the attachment id (kept by Zalo for 7 days, so never cached)."""
        return self._upload("/v2.0/oa/upload/image", media, ("attachment_id",))

    def upload_gif(self, media: Media) -> str:
        # The docs' example answers attachment_id while their table says token: accept either.
        return self._upload("/v2.0/oa/upload/gif", media, ("attachment_id", "token"))

    def upload_file(self, media: Media) -> str:
        """PDF/DOC/DOCX up to 5 MB; returns the token a file message carries."""
        return self._upload("/v2.0/oa/upload/file", media, ("token", "attachment_id"))

    def download(self, url: str, max_bytes: int) -> Media:
        """A customer's attachment from Zalo's CDN (public links that expire, so copy them while we can)."""
        return http.download(self._session, url, side="zalo", max_bytes=max_bytes)

    def _upload(self, endpoint: str, media: Media, keys: tuple[str, ...]) -> str:
        files = {"file": (media.name, media.data, media.content_type)}
        data = self._request("POST", endpoint, files=files)
        for key in keys:
            if isinstance(data, dict) and data.get(key):
                return str(data[key])
        # GOCLAW saw Zalo answer success with empty data when the file name's extension was not accepted.
        raise PermanentError(
            f"upload answered without {keys[0]}: Zalo did not accept {media.name!r}", side="zalo", endpoint=endpoint
        )

    def _send(self, user_id: str, message: Json) -> ZaloSent:
        ep = "/v3.0/oa/message/cs"
        data = self._request("POST", ep, json_body={"recipient": {"user_id": user_id}, "message": message})
        if not isinstance(data, dict) or not data.get("message_id"):
            raise InvalidResponse("send answer has no message_id", side="zalo", endpoint=ep)
        quota = _dict(data.get("quota"))
        paid_from = (
            ZaloQuota(
                _str(quota.get("quota_type")),
                _count(quota.get("remain")),
                _count(quota.get("total")),
                _day(quota.get("expired_date")),
            )
            if quota
            else ZaloQuota("")  # no quota object: a paid message
        )
        return ZaloSent(str(data["message_id"]), paid_from)

    # --- plumbing ------------------------------------------------------------------------------------

    def _get(self, endpoint: str, query: Json | None) -> Any:
        params = {"data": json.dumps(query, separators=(",", ":"))} if query is not None else None
        return self._request("GET", endpoint, params=params)

    def _request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        refused = self.permissions.blocked(endpoint)
        if refused is not None:
            raise refused
        try:
            answer = self._authorised(method, endpoint, kwargs)
        except PermissionMissing as exc:
            self.permissions.refused(exc)
            raise
        self.permissions.worked(endpoint)
        return answer

    def _authorised(self, method: str, endpoint: str, kwargs: dict[str, Any]) -> Any:
        token = self._tokens.access_token()
        try:
            return self._once(method, endpoint, token, kwargs)
        except TokenRejected:
            # Another process or the console may have rotated the token: refresh once, then retry once.
            token = self._tokens.refresh(stale=token)
            return self._once(method, endpoint, token, kwargs)

    def _once(self, method: str, endpoint: str, token: str, kwargs: dict[str, Any]) -> Any:
        with self.quota.request():  # a refusal waits for the minute's end, not a blanket pause
            self._on_request(endpoint)
            return self._answer(method, endpoint, token, kwargs)

    def _answer(self, method: str, endpoint: str, token: str, kwargs: dict[str, Any]) -> Any:
        response = http.call(
            self._session,
            method,
            self.api_url + endpoint,
            side="zalo",
            endpoint=endpoint,
            params=kwargs.get("params"),
            json=kwargs.get("json_body"),
            files=kwargs.get("files"),
            headers={"access_token": token},
        )
        rate = http.rate_headers(response)
        self.quota.observe(rate.limit, rate.remaining, rate.reset_in)
        http.raise_for_server_trouble(response, side="zalo", endpoint=endpoint, wait=RATE_LIMIT_WAIT)
        envelope = http.json_body(response, side="zalo", endpoint=endpoint)
        if not isinstance(envelope, dict):
            raise InvalidResponse("answer is not a JSON object", side="zalo", endpoint=endpoint)
        code = envelope.get("error", 0)
        try:
            code = int(code)
        except (TypeError, ValueError):
            raise InvalidResponse(f"error field is not a number: {code!r}", side="zalo", endpoint=endpoint) from None
        if code != 0:
            raise error_for(code, str(envelope.get("message") or ""), endpoint=endpoint, status=response.status_code)
        if response.status_code >= 400:
            raise error_for(-1, f"HTTP {response.status_code}", endpoint=endpoint, status=response.status_code)
        return envelope.get("data")

    def _rows(self, data: Any, endpoint: str, listing: str) -> list[ZaloMessage]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise InvalidResponse("expected a list of messages in data", side="zalo", endpoint=endpoint)
        rows: list[ZaloMessage] = []
        for raw in data:
            message = self._parse_row(raw, listing)
            if message is None:
                # The row stays in the feed, read at every poll: said once an hour, with how often it came.
                key = json.dumps(raw, sort_keys=True, default=str)[:2000]
                repeats = _malformed.repeats(key)
                if _malformed.first(key):
                    keys = sorted(raw) if isinstance(raw, dict) else None
                    log.warning("zalo_row_malformed", endpoint=endpoint, keys=keys, seen_since=repeats)
            else:
                rows.append(message)
        _fill_missing_times(rows)
        return rows

    def _parse_row(self, raw: Any, listing: str) -> ZaloMessage | None:
        if not isinstance(raw, dict) or not raw.get("message_id"):
            return None
        from_oa = self._is_from_oa(raw)
        if from_oa is None:
            return None
        user_side = "to" if from_oa else "from"
        user_id = raw.get(f"{user_side}_id")
        if user_id is None or user_id == "":
            return None
        return ZaloMessage(
            message_id=str(raw["message_id"]),
            user_id=str(user_id),
            from_oa=from_oa,
            time_ms=_int_or(raw.get("time"), -1),
            content=content_of(raw),
            user_name=_str(raw.get(f"{user_side}_display_name")),
            user_avatar=_str(raw.get(f"{user_side}_avatar")),
            listing=listing,
        )

    def _is_from_oa(self, raw: Json) -> bool | None:
        src = raw.get("src")
        if src in (0, 1, "0", "1"):
            return int(src) == 0
        # One live report lists no `src`: fall back to comparing the sender with the OA's own id.
        if self._oa_id is None:
            try:
                self.oa_profile()
            except PermissionMissing:
                return None  # the OA's id is not ours to read: the row cannot be placed
        if self._oa_id is None:
            return None
        return str(raw.get("from_id")) == self._oa_id


def _media_template(element: Json, caption: str) -> Json:
    message: Json = {"attachment": {"type": "template", "payload": {"template_type": "media", "elements": [element]}}}
    if caption:
        message["text"] = caption
    return message


def _user_id_param(user_id: str) -> int | str:
    # The docs type user_id as a long and send it unquoted; Python ints keep all digits.
    return int(user_id) if user_id.isdigit() else user_id


def _int_or(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _dict(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


MAX_COUNT = 100_000_000  # more messages than any OA package holds: a count past it is not believed


def _count(value: Any) -> int | None:
    """A count Zalo may send as a number or a string ("7"); None when it sent none, or one no count can be
    (negative, a fraction, past `MAX_COUNT`): status shows only what can be true."""
    if isinstance(value, bool):
        return None
    try:
        count = int(str(value).strip())
    except ValueError:
        return None
    return count if 0 <= count <= MAX_COUNT else None


def _day(value: Any) -> str:
    """A "dd/MM/yyyy" day as Zalo wrote it, if it is a day of the calendar ("" otherwise: "32/13/2026")."""
    text = _str(value).strip()
    try:
        datetime.strptime(text, "%d/%m/%Y")
    except ValueError:
        return ""
    return text


def _texts(value: Any) -> tuple[str, ...]:
    return (
        tuple(str(v).strip() for v in value if isinstance(v, str | int) and str(v).strip())
        if isinstance(value, list)
        else ()
    )


SHARED_KEYS = ("name", "phone", "address", "city", "district", "user_dob")
PHONE = re.compile(r"\+?[0-9]{8,15}")
PHONE_SEPARATORS = re.compile(r"[\s.()-]")


def _shared(info: Json) -> tuple[tuple[str, str], ...]:
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


def _day_start_ms(value: Any) -> int:
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
        type=_str(raw.get("type")) or "unknown",
        text=_str(raw.get("message")),
        url=_str(raw.get("url")),
        thumb=_str(raw.get("thumb")),
        description=_str(raw.get("description")),
        links=tuple(_link(x) for x in links) if isinstance(links, list) else (),
        location=json.dumps(location, ensure_ascii=False) if isinstance(location, dict) else _str(location),
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
        return " ".join(_str(x) for x in (item.get("title"), target) if x)
    return _str(item)


def _fill_missing_times(rows: list[ZaloMessage]) -> None:
    """A row without a usable time borrows its newer neighbour's, so it sorts where the page put it;
    with no neighbour it keeps -1, which the sync core reads as "time unknown"."""
    for i, row in enumerate(rows):
        if row.time_ms < 0:
            neighbours = [r.time_ms for r in rows[:i][::-1] + rows[i + 1 :] if r.time_ms >= 0]
            rows[i] = replace(row, time_ms=neighbours[0] if neighbours else -1)
