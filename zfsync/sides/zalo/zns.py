"""Zalo Notification Service: the OA's approved templates and its day's ZNS quota.

ZNS lives on its own host (``business.openapi.zalo.me``, `zalo.zns_url`) and takes the OA's access token
as the OA API does, with the same ``{"error", "message", "data"}`` envelope but codes of its own
(recorded/zns/errors_composed.json, from "Bảng mã lỗi"). Its sources disagree on names and types (the
list's example writes ``templateId`` as a number where its field table says ``template_id``, a string;
the quota's numbers are strings in the field table): each form is read. A ZNS failure is never the Zalo
side's: it is raised to the caller and never marks the OA API unhealthy.
"""

from __future__ import annotations

from typing import Any

import requests

from zfsync.domain import Json, ZnsParam, ZnsQuota, ZnsRating, ZnsSent, ZnsTemplate
from zfsync.domain.errors import InvalidResponse, ParameterRefused, PermanentError, RemoteError, TransientError
from zfsync.sides import http
from zfsync.sides.quota import Quota
from zfsync.sides.zalo.codes import RATE_LIMIT_WAIT, TokenRejected
from zfsync.sides.zalo.oauth import TokenKeeper

SIDE = "zns"
ZALO_API = "https://openapi.zalo.me"
ZALO_ZNS = "https://business.openapi.zalo.me"
PAGE = 100  # templates a page: the documented maximum of template/all
MAX_PAGES = 50  # 5,000 templates: far past any OA's; a listing that never ends stops here
# Zalo documents no request limit for the ZNS host; this keeps a runaway caller polite.
REQUESTS_PER_MINUTE = 300

# Each ZNS code the docs list that a caller can act on, and what it means in one line.
CODES: dict[int, tuple[type[RemoteError], str]] = {
    -100: (TransientError, "Zalo had an unknown error; try again later"),
    -106: (PermanentError, "the method is not supported"),
    -108: (PermanentError, "the phone number is invalid"),
    -109: (PermanentError, "the template id is invalid"),
    -111: (ParameterRefused, "the template data is empty"),
    -112: (ParameterRefused, "a template parameter has an undefined type"),
    -1121: (ParameterRefused, "a template parameter is longer than its limit"),
    -1122: (ParameterRefused, "a template parameter is missing"),
    -1124: (ParameterRefused, "a template parameter has an invalid format"),
    -114: (PermanentError, "the customer cannot receive ZNS now (inactive, refused, or an old Zalo app)"),
    -115: (PermanentError, "the ZNS account's balance is too low"),
    -116: (ParameterRefused, "a parameter's text is invalid"),
    -117: (PermanentError, "this OA or app may not use the template"),
    -118: (PermanentError, "the Zalo account does not exist or is disabled"),
    -119: (PermanentError, "the account cannot receive ZNS"),
    -120: (PermanentError, "the OA may not use this feature"),
    -124: (TokenRejected, "the access token is invalid"),
    -131: (PermanentError, "the template is not approved"),
    -132: (ParameterRefused, "a parameter is invalid"),
    -133: (PermanentError, "this template may not be sent at night (22:00 to 06:00)"),
    -135: (PermanentError, "the OA may not send ZNS (not verified, or on the free plan)"),
    -1351: (PermanentError, "the OA may not send ZNS (blocked for a violation)"),
    -137: (PermanentError, "the Zalo Cloud Account payment failed"),
    -138: (PermanentError, "the app may not use ZNS"),
    -139: (PermanentError, "the customer refused this type of ZNS"),
    -140: (PermanentError, "the customer may not receive this type of ZNS under Zalo's policy"),
    -141: (PermanentError, "the customer refused ZNS from the OA"),
    -144: (PermanentError, "the OA's daily ZNS quota is spent"),
    -1441: (PermanentError, "the OA's monthly promotion quota is spent"),
    -145: (PermanentError, "the OA may not send this type of ZNS"),
    -146: (PermanentError, "the template was disabled for low quality"),
    -147: (PermanentError, "the template's daily quota is spent"),
}


def host_for(api_url: str, zns_url: str = "") -> str:
    """Where ZNS answers: ``zns_url`` when set, else Zalo's own ZNS host beside Zalo's own API host, else
    the API host itself (the simulators serve both)."""
    if zns_url:
        return zns_url
    return ZALO_ZNS if api_url.rstrip("/") == ZALO_API else api_url


def error_for(code: int, message: str, *, endpoint: str, status: int | None = None) -> RemoteError:
    known = CODES.get(code)
    cls, meaning = known if known is not None else (PermanentError, "unknown ZNS error")
    return cls(message or meaning, side=SIDE, endpoint=endpoint, status=status, code=code)


class ZnsClient:
    def __init__(
        self, api_url: str, tokens: TokenKeeper, session: requests.Session | None = None, quota: Quota | None = None
    ):
        self.api_url = api_url.rstrip("/")
        self._tokens = tokens
        self._session = session or http.new_session()
        self.quota = quota or Quota(SIDE, REQUESTS_PER_MINUTE, minute_windows=True)
        self._rating_by_post = False

    def templates(self) -> list[ZnsTemplate]:
        """Every template of the OA, newest first, without their parameters (`template` has those)."""
        found: list[ZnsTemplate] = []
        for page in range(MAX_PAGES):
            body = self._get("/template/all", {"offset": page * PAGE, "limit": PAGE}, whole=True)
            rows = body.get("data")
            if rows is None:
                break
            if not isinstance(rows, list):
                raise InvalidResponse("expected a list of templates in data", side=SIDE, endpoint="/template/all")
            found += [template_of(row, "/template/all") for row in rows]
            metadata = body.get("metadata")
            total = _whole(metadata.get("total")) if isinstance(metadata, dict) else None
            if len(rows) < PAGE or (total is not None and len(found) >= total):
                break
        return found

    def template(self, template_id: str) -> ZnsTemplate:
        """One template with its parameters, tag, price and preview."""
        data = self._get("/template/info/v2", {"template_id": template_id})
        return template_of(data, "/template/info/v2", detailed=True)

    def daily_quota(self) -> ZnsQuota:
        """The OA's ZNS sends allowed today and those left."""
        data = self._get("/message/quota", None)
        if not isinstance(data, dict):
            raise InvalidResponse("expected the quota in data", side=SIDE, endpoint="/message/quota")
        return quota_of(data)

    def send_template(self, phone: str, template_id: str, data: dict[str, str], tracking_id: str) -> ZnsSent:
        """Send an approved template to the Zalo account of ``phone`` (84 form). ZNS messages cost money:
        a caller whose send timed out must not send again blindly (ZNS has no lookup by ``tracking_id``)."""
        body = {"phone": phone, "template_id": template_id, "template_data": data, "tracking_id": tracking_id}
        return sent_of(self._call("POST", "/message/template", None, body, whole=False))

    def ratings(self, template_id: str, from_ms: int, to_ms: int) -> list[ZnsRating]:
        """The answers to a rating template submitted between two times, oldest first. The docs' header
        says POST where their example calls GET with a query: GET is asked, and POST once GET is refused."""
        found: list[ZnsRating] = []
        for page in range(MAX_PAGES):
            query = {"template_id": template_id, "from_time": from_ms, "to_time": to_ms}
            query.update(offset=page * PAGE, limit=PAGE)
            data = self._rating_page(query)
            if not isinstance(data, dict) or not isinstance(data.get("data", []), list):
                raise InvalidResponse("expected a list of ratings in data.data", side=SIDE, endpoint="/rating/get")
            rows = data.get("data") or []
            found += [r for r in (rating_of(row) for row in rows) if r is not None]
            total = _whole(data.get("total"))
            if len(rows) < PAGE or (total is not None and (page + 1) * PAGE >= total):
                break
        return sorted(found, key=lambda r: (r.submitted_ms, r.message_id))

    def _rating_page(self, query: Json) -> Any:
        if not self._rating_by_post:
            try:
                return self._call("GET", "/rating/get", query, None, whole=False)
            except PermanentError as exc:
                if exc.code != -106:
                    raise
                self._rating_by_post = True  # "Method unsupported": as the docs' header says, then
        return self._call("POST", "/rating/get", None, query, whole=False)

    # --- plumbing ------------------------------------------------------------------------------------

    def _get(self, endpoint: str, params: Json | None, whole: bool = False) -> Any:
        return self._call("GET", endpoint, params, None, whole)

    def _call(self, method: str, endpoint: str, params: Json | None, body: Json | None, whole: bool) -> Any:
        token = self._tokens.access_token()
        try:
            return self._once(method, endpoint, params, body, token, whole)
        except TokenRejected:
            token = self._tokens.refresh(stale=token)
            return self._once(method, endpoint, params, body, token, whole)

    def _once(self, method: str, endpoint: str, params: Json | None, body: Json | None, token: str, whole: bool) -> Any:
        with self.quota.request():
            response = http.call(
                self._session,
                method,
                self.api_url + endpoint,
                side=SIDE,
                endpoint=endpoint,
                params=params,
                json=body,
                headers={"access_token": token},
            )
        http.raise_for_server_trouble(response, side=SIDE, endpoint=endpoint, wait=RATE_LIMIT_WAIT)
        answer = http.json_body(response, side=SIDE, endpoint=endpoint)
        data = data_of(answer, endpoint, response.status_code)
        return answer if whole else data


class ZnsSending:
    """The ZNS part of the Zalo side (`zfsync.sync.ports.ZaloSide`): its own host and request count, the
    OA's tokens and session. ``zns_url``: as `host_for` takes it (the config's ``zalo.zns_url``)."""

    api_url: str
    zns_url: str = ""
    _tokens: TokenKeeper
    _session: requests.Session
    _zns: ZnsClient | None = None

    @property
    def zns(self) -> ZnsClient:
        if self._zns is None:
            self._zns = ZnsClient(host_for(self.api_url, self.zns_url), self._tokens, self._session)
        return self._zns

    def zns_template(self, template_id: str) -> ZnsTemplate:
        return self.zns.template(template_id)

    def send_template(self, phone: str, template_id: str, data: dict[str, str], tracking_id: str) -> ZnsSent:
        return self.zns.send_template(phone, template_id, data, tracking_id)

    def zns_ratings(self, template_id: str, from_ms: int, to_ms: int) -> list[ZnsRating]:
        return self.zns.ratings(template_id, from_ms, to_ms)


# --- wire: what ZNS answers, read in each form its sources give -----------------------------------------


def data_of(answer: Any, endpoint: str, status: int) -> Any:
    """The ``data`` of a ZNS answer, or the error its code stands for."""
    _succeeded(answer, endpoint, status)
    return answer.get("data")


def _succeeded(answer: Any, endpoint: str, status: int) -> bool:
    if not isinstance(answer, dict):
        raise InvalidResponse("answer is not a JSON object", side=SIDE, endpoint=endpoint)
    code = _whole(answer.get("error", 0))
    if code is None:
        raise InvalidResponse(f"error field is not a number: {answer.get('error')!r}", side=SIDE, endpoint=endpoint)
    if code != 0:
        raise error_for(code, str(answer.get("message") or ""), endpoint=endpoint, status=status)
    if status >= 400:
        raise error_for(-1, f"HTTP {status}", endpoint=endpoint, status=status)
    return True


def sent_of(data: Any) -> ZnsSent:
    if not isinstance(data, dict) or not _text(data.get("msg_id")):
        raise InvalidResponse("the send's answer has no msg_id", side=SIDE, endpoint="/message/template")
    quota = data.get("quota")
    return ZnsSent(
        message_id=_text(data["msg_id"]),
        sent_ms=_whole(data.get("sent_time")),
        quota=quota_of(quota) if isinstance(quota, dict) else None,
    )


def rating_of(raw: Any) -> ZnsRating | None:
    """One answer to a rating template; None for a row that is not one (no id, no stars)."""
    if not isinstance(raw, dict):
        return None
    stars, message_id = _whole(raw.get("rate")), _text(raw.get("msgId"))
    if stars is None or not 1 <= stars <= 5 or not message_id:
        return None
    ticked = _either(raw, "feedbacks", "feedback")
    return ZnsRating(
        message_id=message_id,
        tracking_id=_text(raw.get("trackingId")),
        stars=stars,
        feedbacks=tuple(_text(f) for f in ticked if _text(f))[:20] if isinstance(ticked, list) else (),
        note=_text(raw.get("note")),
        submitted_ms=_whole(raw.get("submitDate")) or 0,
    )


def template_of(raw: Any, endpoint: str, detailed: bool = False) -> ZnsTemplate:
    if not isinstance(raw, dict):
        raise InvalidResponse("a template is not an object", side=SIDE, endpoint=endpoint)
    template_id = _either(raw, "templateId", "template_id")
    if template_id is None or isinstance(template_id, bool) or str(template_id).strip() == "":
        raise InvalidResponse("a template has no id", side=SIDE, endpoint=endpoint)
    params = raw.get("listParams") if detailed else None
    return ZnsTemplate(
        template_id=str(template_id).strip(),
        name=_text(_either(raw, "templateName", "template_name")),
        status=_text(raw.get("status")).upper(),
        quality=_text(_either(raw, "templateQuality", "template_quality")).upper(),
        tag=_text(_either(raw, "templateTag", "template_tag")).upper(),
        price=_text(raw.get("price")),
        preview_url=_text(_either(raw, "previewUrl", "preview_url")),
        params=tuple(_param_of(p) for p in params if isinstance(p, dict) and _text(p.get("name")))
        if isinstance(params, list)
        else (),
        detailed=detailed,
    )


def _param_of(raw: Json) -> ZnsParam:
    return ZnsParam(
        name=_text(raw.get("name")),
        required=_flag(raw.get("require", raw.get("required"))),
        kind=_text(raw.get("type")).upper() or "STRING",
        max_length=_whole(raw.get("maxLength")),
        min_length=_whole(raw.get("minLength")) or 0,
        accept_null=_flag(raw.get("acceptNull")),
    )


def quota_of(raw: Json) -> ZnsQuota:
    return ZnsQuota(daily=_whole(raw.get("dailyQuota")), remaining=_whole(raw.get("remainingQuota")))


def _either(raw: Json, *keys: str) -> Any:
    return next((raw[k] for k in keys if raw.get(k) is not None), None)


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    # One printable line, bounded: it is shown to a person, in a terminal and in a FreshChat note.
    printable = "".join(c if c.isprintable() else " " for c in str(value))
    return " ".join(printable.split())[:500]


def _whole(value: Any) -> int | None:
    """A count Zalo writes as a number or as a string of one; None when it is neither."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")
