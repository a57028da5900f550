"""A simulated Zalo OA Open API and OAuth v4 host, following research/zalo_api.md.

What it reproduces: the ``{"error","message","data"}`` envelope with errors at HTTP 200; at most 10 rows a
request, newest first, the OA's own sends listed with ``src=0``; ids as strings above 2^53; access tokens
that expire (-220) or are unknown (-216); single-use refresh tokens; the 7-day window (-230); the per-minute
rate limit (-32); text over 2,000 characters refused.

Every shape traces to a recorded payload in ``tests/contract/recorded/zalo/``. Where the sources are silent,
a mode plays each plausible answer (`Modes`):
- ``ties``: rows of one millisecond share their ``time`` (nothing promises they differ); the feed's order is
  then the only order there is;
- ``id_mismatch``: ``message/cs`` answers an id that is not the id the listings show for that message;
- ``getoa_key``: ``oa_id`` (the docs' field table) or ``oaid`` (the docs' example);
- ``feed_depth``: ``listrecentchat`` serves only its newest N rows; deeper offsets answer an empty page
  (``feed_depth_mode="empty"``) or are refused with -201 (``"refuse"``);
- ``sent_time``: rows carry the ``sent_time`` text a recorded live answer shows.

Control API (``/_sim/...``): ``customer_message``, ``oa_message`` (staff typing in OA Manager),
``refresh_token`` (mint a pair, as the API Explorer does), ``sent`` (what the OA sent through the API),
``users/<id>`` (profile changes), ``modes``, plus the shared ``faults``, ``stats``, ``rtt`` and ``clock``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from zfsync.sim import gmf, zns
from zfsync.sim.base import Json, MinuteQuota, Request, Response, SimApp, Upload

OA_ID = "1873920563920114532"
ACCESS_TTL = 90_000.0  # 25 h
TEXT_LIMIT = 2000
WINDOW_MS = 7 * 86_400_000
FREE_MS = 48 * 3_600_000
FREE_REPLIES = 8
UPLOAD_RULES = {  # kind -> (extensions Zalo accepts, byte limit), research §3
    "image": (("jpg", "jpeg", "png"), 1_000_000),
    "file": (("pdf", "doc", "docx"), 5_000_000),
    "gif": (("gif",), 5_000_000),
}


VIETNAM = timezone(timedelta(hours=7))
PERIODS = {"TODAY": 0, "YESTERDAY": 1, "L7D": 7, "L30D": 30}
# What a test may set of a user: what they shared with the OA, the OA's tags and notes on them, and
# their last interaction (a follow or a call counts as much as a message)
USER_FIELDS = ("display_name", "avatar", "last_interaction", "shared_info", "tags", "notes", "follower")
CARD_LIMITS = {"title": 100, "subtitle": 500}
OA_SENDER = {"name": "zfsync demo OA", "avatar": "https://s240-ava-talk.zadn.vn/oa.jpg"}  # its rows in groups


@dataclass
class Modes:
    """Which plausible answer the simulator plays where the sources are silent."""

    ties: bool = False
    id_mismatch: bool = False
    getoa_key: str = "oaid"
    feed_depth: int = 0  # 0: unlimited
    feed_depth_mode: str = "empty"  # "empty" or "refuse"
    sent_time: bool = True
    # The app's requests a minute (0: no limit); beyond it, error -32 until the minute ends. With headers,
    # every answer carries X-RateLimit-Limit and X-RateLimit-Remain, as Zalo documents.
    quota_per_minute: int = 0
    quota_headers: bool = True
    # How the token endpoint refuses a dead refresh token: "code" (-14014, as goclaw saw it), or with words
    # alone: "error_name" (HTTP 200), "error_description" (HTTP 400, RFC 6749 style) or "error_reason"
    # (HTTP 200): recorded/zalo/oauth_refused_without_code_composed.json.
    oauth_refusal: str = "code"
    # The live pair of recordings shows one message under one id in listrecentchat and another (192 ms
    # earlier) in conversation: with two_ids on, every conversation row is listed so.
    two_ids: bool = False
    # Which of a message's two ids `quote_message_id` takes (unknown: research/fidelity-audit.md):
    # "feed" (listrecentchat's), "conversation" (the conversation listing's), or "either".
    quote_ids: str = "either"
    # What a reply within 48 h of the customer's last interaction is paid from, under whichever policy is
    # in force (recorded/zalo/message_cs_quota_*.json): "fixed" answers remain "8" every time (2026
    # reports), "counted" counts the 8 free ones down (the docs), "uncounted" says "reply" with no count,
    # "absent" answers a free reply with no `quota` at all (if 2026 drops the whole object). Past them,
    # sends draw on the OA package's `package_messages` (sub_quota), then are paid (no quota).
    # quota/message's `cs_reply` follows the same policy (recorded/zalo/quota_message_user_*.json):
    # counted down, fixed at 8, without `remain` ("uncounted"), or not there at all ("absent").
    reply_quota: str = "fixed"
    package_messages: int = 2000
    # API paths (comma-separated) whose permission group the OA has not granted the app: they answer -223
    # as the docs' code table words it (recorded/zalo/error_permission_doc.json).
    denied: str = ""
    # The ZNS host's answers where its docs disagree (`zfsync.sim.zns`): the template list's keys, "doc"
    # (templateId, a number) or "field_table" (template_id, a string); the quota as numbers or strings.
    zns_keys: str = "doc"
    zns_numbers: bool = True
    # rating/get: the method it takes ("GET", the docs' example; "POST", their header) and the name of
    # the ticked feedback list ("feedbacks", the example; "feedback", the field table).
    rating_method: str = "GET"
    rating_feedback_key: str = "feedbacks"
    # GMF (`zfsync.sim.gmf`): how a listing gives a mention back ("ids": [@user_id], "names": @Name), and
    # whether the OA may use group chats ("on", "unverified": -221, "no_package": -224)
    group_mentions: str = "ids"
    gmf: str = "on"

    def update(self, values: Json) -> None:
        for f in fields(self):
            if f.name in values:
                setattr(self, f.name, type(getattr(self, f.name))(values[f.name]))


NOTHING_SHARED = {"address": "", "city": "", "district": "", "phone": 0, "name": "", "user_dob": ""}


def _card_of(message: Any) -> tuple[Json | None, Response | None]:
    """The ``request_user_info`` card a message carries (one element: title, subtitle, image_url)."""
    attachment = message.get("attachment") if isinstance(message, dict) else None
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    if not isinstance(payload, dict) or payload.get("template_type") != "request_user_info":
        return None, None
    elements = payload.get("elements")
    if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
        return None, zalo_error(-201, "elements is invalid! (one element)")
    element = elements[0]
    for key in ("title", "subtitle", "image_url"):
        if not isinstance(element.get(key), str) or not element[key]:
            return None, zalo_error(-201, f"{key} is invalid!")
    for key, limit in CARD_LIMITS.items():
        if len(element[key]) > limit:
            return None, zalo_error(-201, f"{key} is invalid! (over {limit} characters)")
    return dict(element), None


def zalo_error(code: int, message: str) -> Response:
    return Response(200, {"error": code, "message": message})


def conversation_id_of(message_id: str) -> str:
    """The id a message has in ``conversation`` when the simulator lists it under two ids."""
    return hashlib.sha1(f"conversation-{message_id}".encode()).hexdigest()[:20]


def _as_listed_in_conversation(row: Json) -> Json:
    if not isinstance(row.get("message_id"), str):
        return row
    moved = {**row, "message_id": conversation_id_of(row["message_id"])}
    if isinstance(row.get("time"), int):
        moved["time"] = row["time"] - 192  # as the recordings differ
    return moved


def ok(data: Any) -> Response:
    return Response(200, {"data": data, "error": 0, "message": "Success"})


class ZaloSim(SimApp):
    name = "zalo"

    def __init__(
        self,
        app_id: str = "sim-app",
        app_secret: str = "sim-secret",
        rate_limit_per_minute: int = 0,
        modes: Modes | None = None,
        oa_id: str = OA_ID,
    ):
        super().__init__()
        self.modes = modes or Modes()
        self.oa_id = oa_id
        self.app_id = app_id
        self.app_secret = app_secret
        self.modes.quota_per_minute = rate_limit_per_minute or self.modes.quota_per_minute
        self.quota = MinuteQuota()
        self.messages: list[Json] = []  # oldest first
        self.users: dict[str, Json] = {}
        self.sent: list[Json] = []  # messages the OA sent through the API, in order
        self.access_tokens: dict[str, float] = {}  # token -> expiry (sim time)
        self.refresh_tokens: set[str] = set()
        self.uploads: dict[str, Upload] = {}
        self.arrivals_during_listing: list[tuple[str, Json]] = []  # (user id, fields), one per listing
        self.codes: dict[str, str] = {}  # authorization code -> PKCE challenge
        self.package_used = 0
        self.zns = zns.ZnsState()
        self.gmf = gmf.GmfState()
        self._counter = 0
        self._last_ms = 0

    # --- helpers used by the control API and tests ---------------------------------------------------

    def _next_id(self) -> str:
        self._counter += 1
        return hashlib.sha1(f"zalo-{self._counter}".encode()).hexdigest()[:20]

    def _stamp(self) -> int:
        now_ms = int(self.now() * 1000)
        # Strictly increasing unless ties are on: then rows of one millisecond share it, as nothing forbids.
        self._last_ms = max(now_ms, self._last_ms + (0 if self.modes.ties else 1))
        return self._last_ms

    def _row(self, src: int, user_id: str, oa_sends: bool, user: Json) -> Json:
        """A listing row with the keys the recorded answers show, in their order."""
        time_ms = self._stamp()
        oa = {"id": self.oa_id, "display_name": "zfsync demo OA", "avatar": "https://s240-ava-talk.zadn.vn/oa.jpg"}
        customer = {"id": user_id, "display_name": user["display_name"], "avatar": user.get("avatar", "")}
        sender, recipient = (oa, customer) if oa_sends else (customer, oa)
        row: Json = {"src": src, "time": time_ms}
        if self.modes.sent_time:
            local = datetime.fromtimestamp(time_ms / 1000, UTC).astimezone(VIETNAM)
            row["sent_time"] = local.strftime("%H:%M:%S %d/%m/%Y")
        row.update(
            {
                "from_id": sender["id"],
                "from_display_name": sender["display_name"],
                "from_avatar": sender["avatar"],
                "to_id": recipient["id"],
                "to_display_name": recipient["display_name"],
                "to_avatar": recipient["avatar"],
                "message_id": self._next_id(),
                "type": "text",
                "message": "",
            }
        )
        return row

    def mint_tokens(self) -> tuple[str, str]:
        with self.lock:
            access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            self.access_tokens[access] = self.now() + ACCESS_TTL
            self.refresh_tokens.add(refresh)
            return access, refresh

    def add_customer_message(self, user_id: str, display_name: str = "", avatar: str = "", **fields: Any) -> Json:
        name = display_name
        with self.lock:
            user = self.users.setdefault(
                user_id,
                {
                    "display_name": name or f"User {user_id[-4:]}",
                    "avatar": avatar or f"https://s120.avatar.talk.zdn.vn/{user_id}.jpg",
                },
            )
            if name:
                user["display_name"] = name
            row = self._row(1, user_id, False, user)
            row["type"] = fields.pop("type", "text")
            row["message"] = fields.pop("text", "")
            row.update(fields)
            user["last_interaction"] = row["time"]
            user["replies"] = 0  # a new 48 h of free replies
            self.messages.append(row)
            return row

    def add_oa_message(
        self,
        user_id: str,
        text: str,
        via_api: bool = False,
        media: Upload | None = None,
        kind: str = "text",
        time_ms: int | None = None,
    ) -> Json:
        """OA staff writing (from the Zalo app, or through the API: ``via_api``); ``time_ms``: when, if
        not now."""
        with self.lock:
            user = self.users.setdefault(user_id, {"display_name": f"User {user_id[-4:]}", "avatar": ""})
            row = self._row(0, user_id, True, user)
            row["message"] = text
            row["type"] = kind
            if time_ms is not None:
                row["time"] = time_ms
            if media is not None:
                kind = "GIF" if media.content_type == "image/gif" else "photo"
                row.update(type=kind if media.content_type.startswith("image/") else "file", message=text)
                row["url"] = self.add_media(media.data, media.content_type, media.name or "file")
            self.messages.append(row)
            if via_api:
                # With id_mismatch on, the send answers an id that the listings never show.
                send_id = self._next_id() if self.modes.id_mismatch else row["message_id"]
                sent = {
                    "message_id": row["message_id"],
                    "send_id": send_id,
                    "user_id": user_id,
                    "text": text,
                    "time": row["time"],
                }
                if media is not None:
                    sent.update(kind=row["type"], name=media.name, size=len(media.data))
                self.sent.append(sent)
            return row

    # --- control API ---------------------------------------------------------------------------------

    def control(self, request: Request, action: str) -> Response:
        body = request.json() if request.method in ("POST", "PUT") else {}
        if action == "customer_message":
            fields = {k: v for k, v in body.items() if k not in ("user_id", "name", "avatar")}
            return Response(
                200,
                self.add_customer_message(str(body["user_id"]), body.get("name", ""), body.get("avatar", ""), **fields),
            )
        if action == "oa_message":
            return Response(200, self.add_oa_message(str(body["user_id"]), body["text"]))
        if action == "refresh_token":
            return Response(200, {"refresh_token": self.mint_tokens()[1]})
        if action == "sent":
            with self.lock:
                return Response(200, {"sent": list(self.sent)})
        if action == "messages":
            with self.lock:
                return Response(200, {"messages": list(self.messages)})
        if action == "modes":
            with self.lock:
                self.modes.update(body)
                return Response(200, {"modes": dict(self.modes.__dict__)})
        if action == "zns_template":
            with self.lock:
                return Response(200, self.zns.add_template(body, int(self.now() * 1000)))
        if action == "zns_rating":
            with self.lock:
                return Response(200, self.zns.rate(body, int(self.now() * 1000)))
        if action == "zns_quota":
            with self.lock:
                self.zns.daily = int(body.get("daily", self.zns.daily))
                self.zns.used = int(body.get("used", self.zns.used))
                return Response(200, {"daily": self.zns.daily, "used": self.zns.used})
        if action.startswith("group"):
            return self._group_control(action, body)
        if action.startswith("users/"):
            with self.lock:
                user = self.users.setdefault(action[len("users/") :], {"display_name": "", "avatar": ""})
                user.update({k: v for k, v in body.items() if k in USER_FIELDS})
                return Response(200, user)
        return Response(404, {"error": f"unknown control action {action}"})

    # --- the API -------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path == "/v4/oa/access_token" and request.method == "POST":
            return self._token(request)
        if request.path == "/v4/oa/permission":
            return self._permission(request)
        if request.path.startswith("/media/"):
            return self.serve_media(request.path)  # Zalo's CDN links need no token
        if request.path in zns.PATHS:  # the ZNS host: its own code for a bad token
            if self._authorise(request) is not None:
                return zns.zns_error(-124, "Access token invalid")
            with self.lock:
                phones = zns.shared_phones(self.users)
                now_ms = int(self.now() * 1000)
                rating = (self.modes.rating_method, self.modes.rating_feedback_key)
                return self.zns.handle(request, self.modes.zns_keys, self.modes.zns_numbers, phones, now_ms, rating)
        failure = self._authorise(request)
        if failure:
            return failure
        return self.answer(request, self.quota, self.modes.quota_per_minute)

    def answer(self, request: Request, quota: MinuteQuota, limit: int) -> Response:
        """An authorised API request, counted against ``quota`` (the app's: `zfsync.sim.zalo_host` shares
        one among the OAs of an app) when ``limit`` is set."""
        if request.path in self.modes.denied.split(","):
            return zalo_error(-223, "Official Account has not authorized this API")
        if not limit:
            return self._route(request)
        with self.lock:
            allowed, remaining, _ = quota.take(self.now(), limit)
        response = (
            self._route(request) if allowed else zalo_error(-32, "The application has reached the API request limit")
        )
        if self.modes.quota_headers:
            response.headers.update({"X-RateLimit-Limit": str(limit), "X-RateLimit-Remain": str(remaining)})
        return response

    def _route(self, request: Request) -> Response:
        if request.path in gmf.PATHS:
            return self._gmf(request)
        routes = {
            ("GET", "/v2.0/oa/listrecentchat"): self.listrecentchat,
            ("GET", "/v2.0/oa/conversation"): self.conversation_listing,
            ("POST", "/v3.0/oa/message/cs"): self._send,
            ("GET", "/v3.0/oa/user/detail"): self._user_detail,
            ("GET", "/v3.0/oa/user/getlist"): self._user_getlist,
            ("GET", "/v2.0/oa/getoa"): self._getoa,
            ("POST", "/v2.0/oa/upload/image"): self._upload,
            ("POST", "/v2.0/oa/upload/file"): self._upload,
            ("POST", "/v2.0/oa/upload/gif"): self._upload,
            ("POST", "/v3.0/oa/quota/message"): self._quota_message,
            ("POST", "/v2.0/oa/tag/tagfollower"): self._tag,
            ("POST", "/v2.0/oa/tag/rmfollowerfromtag"): self._tag,
        }
        route = routes.get((request.method, request.path))
        if route is None:
            return Response(404, {"error": 404, "message": "Not found"})
        return route(request)

    def _authorise(self, request: Request) -> Response | None:
        token = request.headers.get("access_token", "")
        with self.lock:
            expiry = self.access_tokens.get(token)
            if expiry is None:
                return zalo_error(-216, "Access token is invalid")
            if expiry <= self.now():
                return zalo_error(-220, "Access token has expired")
        return None

    def _data(self, request: Request) -> Json:
        try:
            data = json.loads(request.query.get("data", "{}"))
        except ValueError:
            data = None
        return data if isinstance(data, dict) else {}

    def _page(self, rows: list[Json], data: Json) -> Response:
        try:
            offset, count = int(data["offset"]), int(data["count"])
        except (KeyError, TypeError, ValueError):
            return zalo_error(-201, "offset or count is invalid!")
        count = max(0, min(count, 10))  # the documented cap
        newest_first = rows[::-1]
        return ok(newest_first[offset : offset + count])

    def listrecentchat(self, request: Request) -> Response:
        with self.lock:
            if self.arrivals_during_listing:
                # A customer writes while zfsync pages: offsets shift and the next page repeats a row.
                user_id, fields_ = self.arrivals_during_listing.pop(0)
                self.add_customer_message(user_id, **fields_)
            rows = list(self.messages)
            data = self._data(request)
            depth = self.modes.feed_depth
            if depth:
                rows = rows[-depth:]
                offset = data.get("offset")
                if self.modes.feed_depth_mode == "refuse" and isinstance(offset, int) and offset >= depth:
                    return zalo_error(-201, "offset is invalid!")
            return self._page(rows, data)

    def conversation_listing(self, request: Request) -> Response:
        data = self._data(request)
        user_id = str(data.get("user_id", ""))
        with self.lock:
            rows = [
                m
                for m in self.messages
                if isinstance(m, dict) and user_id in (str(m.get("from_id")), str(m.get("to_id")))
            ]
            if self.modes.two_ids:
                rows = [_as_listed_in_conversation(m) for m in rows]
            return self._page(rows, data)

    def _send(self, request: Request) -> Response:
        try:
            body = request.json()
            user_id = str(body["recipient"]["user_id"])
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            return zalo_error(-201, "recipient or message is invalid!")
        text = message.get("text", "") if isinstance(message, dict) else None
        card, problem = _card_of(message)
        if problem:
            return problem
        media, problem = (None, None) if card else self._attachment_of(message)
        if problem:
            return problem
        if card:
            text = card["title"]
        if not isinstance(text, str) or (not text and media is None):
            return zalo_error(-201, "text is invalid!")
        if len(text) > TEXT_LIMIT:
            return zalo_error(-201, "text is invalid! (over 2000 characters)")
        quote = message.get("quote_message_id") if isinstance(message, dict) else None
        with self.lock:
            user = self.users.get(user_id)
            if user is None or "last_interaction" not in user:
                return zalo_error(-232, "User has not interacted with the OA")
            if self.now() * 1000 - user["last_interaction"] > WINDOW_MS:
                return zalo_error(-230, "User has not interacted with the OA in the past 7 days")
            if quote is not None and not self._quotable(quote):
                return zalo_error(-201, "quote_message_id is invalid!")
            quota = self._charge(user)
            self.add_oa_message(user_id, text, via_api=True, media=media, kind="template" if card else "text")
            send_id = self.sent[-1]["send_id"]
            sent_time = str(self.sent[-1]["time"])
            if quote is not None:
                self.sent[-1]["quote"] = quote
            if card:
                self.sent[-1]["card"] = card
        answer: Json = {"quota": quota} if quota else {}
        return ok({**answer, "message_id": send_id, "user_id": user_id, "sent_time": sent_time})

    def _quotable(self, quote: Any) -> bool:
        feed = {m.get("message_id") for m in self.messages}
        conversation = {conversation_id_of(i) for i in feed if isinstance(i, str)} if self.modes.two_ids else feed
        accepted = {"feed": feed, "conversation": conversation}.get(self.modes.quote_ids, feed | conversation)
        return quote in accepted

    def _free_left(self, user: Json) -> int:
        """The free replies left to ``user`` now (0 past 48 h of their last interaction)."""
        if self.now() * 1000 - user["last_interaction"] > FREE_MS:
            return 0
        if self.modes.reply_quota != "counted":
            return FREE_REPLIES
        return max(0, FREE_REPLIES - int(user.get("replies", 0)))

    def _charge(self, user: Json) -> Json | None:
        """What a send to ``user`` is paid from, as the answer's ``quota`` says (None: a paid message)."""
        if self._free_left(user):
            user["replies"] = int(user.get("replies", 0)) + 1
            if self.modes.reply_quota == "absent":
                return None
            if self.modes.reply_quota == "uncounted":
                return {"quota_type": "reply"}
            if self.modes.reply_quota == "fixed":
                return {"quota_type": "reply", "remain": str(FREE_REPLIES), "total": str(FREE_REPLIES)}
            return {"quota_type": "reply", "remain": str(self._free_left(user)), "total": str(FREE_REPLIES)}
        total = self.modes.package_messages
        if self.package_used < total:
            self.package_used += 1
            left = str(total - self.package_used)
            return {"quota_type": "sub_quota", "remain": left, "total": str(total), "expired_date": self._month_end()}
        return None

    def _month_end(self) -> str:
        today = datetime.fromtimestamp(self.now(), VIETNAM).date()
        following = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
        return (following - timedelta(days=1)).strftime("%d/%m/%Y")

    def _quota_message(self, request: Request) -> Response:
        """A user's last interaction and free replies left; or, with quota_owner OA, the OA's assets."""
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return zalo_error(-201, "body is invalid!")
        with self.lock:
            if body.get("quota_owner") == "OA":
                total = self.modes.package_messages
                asset = {
                    "asset_id": hashlib.sha1(b"package").hexdigest()[:20],
                    "product_type": "cs",
                    "quota_type": "sub_quota",
                    "valid_through": self._month_end(),
                    "total": total,
                    "remain": max(0, total - self.package_used),
                }
                return ok([asset])
            user = self.users.get(str(body.get("user_id", "")))
            if user is None or "last_interaction" not in user:
                return zalo_error(-201, "user_id is invalid!")
            policy = self.modes.reply_quota
            answer: Json = {"last_interaction": str(user["last_interaction"])}
            if policy in ("counted", "fixed"):
                answer["cs_reply"] = {"remain": self._free_left(user), "total": FREE_REPLIES}
            elif policy == "uncounted":
                answer["cs_reply"] = {"total": FREE_REPLIES}
            answer["promotion"] = {"daily_remain": 0, "daily_total": 1, "monthly_remain": 4, "monthly_total": 6}
            return ok(answer)

    def _tag(self, request: Request) -> Response:
        """Tag a follower (a tag that does not exist is created), or remove the tag."""
        try:
            body = request.json()
            user_id, tag = str(body["user_id"]), body["tag_name"]
        except (ValueError, KeyError, TypeError):
            return zalo_error(-201, "user_id or tag_name is invalid!")
        if not isinstance(tag, str) or not tag.strip():
            return zalo_error(-201, "tag_name is invalid!")
        with self.lock:
            user = self.users.get(user_id)
            if user is None:
                return zalo_error(-201, "user_id is invalid!")
            tags = [t for t in user.get("tags", []) if t != tag]
            user["tags"] = [*tags, tag] if request.path.endswith("tagfollower") else tags
        return Response(200, {"error": 0, "message": "Success"})

    def _attachment_of(self, message: Any) -> tuple[Upload | None, Response | None]:
        attachment = message.get("attachment") if isinstance(message, dict) else None
        if attachment is None:
            return None, None
        try:
            if attachment["type"] == "file":
                key = attachment["payload"]["token"]
            else:
                element = attachment["payload"]["elements"][0]
                key = element["attachment_id"]
                if element["media_type"] == "gif" and not (
                    isinstance(element.get("width"), int) and isinstance(element.get("height"), int)
                ):
                    return None, zalo_error(-201, "width and height are required for gif")
        except (KeyError, IndexError, TypeError):
            return None, zalo_error(-201, "attachment is invalid!")
        with self.lock:
            found = self.uploads.get(str(key))
        if found is None:
            return None, zalo_error(-100, "attachment_id was expired")
        return found, None

    def _upload(self, request: Request) -> Response:
        kind = request.path.rsplit("/", 1)[1]
        upload = request.files().get("file")
        if upload is None:
            return zalo_error(-201, "file is required")
        extension = upload.name.rsplit(".", 1)[-1].lower() if "." in upload.name else ""
        allowed, limit = UPLOAD_RULES[kind]
        if extension not in allowed:
            return zalo_error(-201, f"file type .{extension} is not supported")
        if len(upload.data) > limit:
            return zalo_error(-210, "file size exceeds the limit")
        with self.lock:
            key = f"{kind}-{self._next_id()}"
            self.uploads[key] = upload
        return ok({"token": key} if kind == "file" else {"attachment_id": key})

    def _user_detail(self, request: Request) -> Response:
        user_id = str(self._data(request).get("user_id", ""))
        with self.lock:
            user = self.users.get(user_id)
            if user is None:
                return zalo_error(-201, "user_id is invalid!")
            last = user.get("last_interaction")
            last_date = datetime.fromtimestamp(last / 1000, VIETNAM).strftime("%d/%m/%Y") if last else ""
            return ok(
                {
                    "user_id": user_id,
                    "user_id_by_app": str(int(hashlib.sha1(user_id.encode()).hexdigest()[:14], 16)),
                    "user_external_id": "",
                    "display_name": user["display_name"],
                    "user_alias": user["display_name"],
                    "is_sensitive": False,
                    "user_last_interaction_date": last_date,
                    "user_is_follower": bool(user.get("follower", True)),
                    "avatar": user.get("avatar", ""),
                    "avatars": {"120": user.get("avatar", ""), "240": user.get("avatar", "")},
                    "dynamic_param": "",
                    "tags_and_notes_info": {
                        "notes": list(user.get("notes", [])),
                        "tag_names": list(user.get("tags", [])),
                    },
                    "shared_info": user.get("shared_info", NOTHING_SHARED),
                }
            )

    def _user_getlist(self, request: Request) -> Response:
        """Users who interacted in ``last_interaction_period`` (TODAY, YESTERDAY, L7D, L30D or
        YYYY_MM_DD:YYYY_MM_DD, Vietnam days), most recent first; count at most 50, offset at most 9951."""
        data = self._data(request)
        try:
            offset, count = int(data.get("offset", 0)), int(data["count"])
        except (KeyError, TypeError, ValueError):
            return zalo_error(-201, "offset or count is invalid!")
        if not 0 <= offset <= 9951 or not 1 <= count <= 50:
            return zalo_error(-201, "offset or count is invalid!")
        period = str(data.get("last_interaction_period", ""))
        today = datetime.fromtimestamp(self.now(), VIETNAM).date()
        if period in PERIODS:
            first = today - timedelta(days=PERIODS[period])
            last = today - timedelta(days=1) if period == "YESTERDAY" else today
        elif ":" in period:
            try:
                first, last = (datetime.strptime(p, "%Y_%m_%d").date() for p in period.split(":", 1))
            except ValueError:
                return zalo_error(-201, "last_interaction_period is invalid!")
        elif period:
            return zalo_error(-201, "last_interaction_period is invalid!")
        else:
            first, last = datetime(1970, 1, 1).date(), today
        with self.lock:
            found = []
            for user_id, user in self.users.items():
                at = user.get("last_interaction")
                if at is not None and first <= datetime.fromtimestamp(at / 1000, VIETNAM).date() <= last:
                    found.append((at, user_id))
        found.sort(reverse=True)
        users = [{"user_id": user_id} for _, user_id in found[offset : offset + count]]
        return ok({"total": len(found), "count": count, "offset": offset, "users": users})

    def _getoa(self, request: Request) -> Response:
        # The docs' example answers `oaid` where their field table says `oa_id`: the mode picks one.
        return ok(
            {
                self.modes.getoa_key: self.oa_id,
                "name": "zfsync demo OA",
                "description": "Simulated Official Account",
                "oa_alias": "zfsyncdemo",
                "is_verified": True,
                "oa_type": 2,
                "cate_name": "Thời trang",
                "num_follower": len(self.users),
                "avatar": "https://s160-ava-talk.zadn.vn/oa.jpg",
                "cover": "https://cover-talk.zadn.vn/oa.jpg",
            }
        )

    # --- group chats (`zfsync.sim.gmf`) ------------------------------------------------------------------

    def add_group(self, group_id: str, name: str, members: dict[str, str], **fields: Any) -> Json:
        """A group of the OA's (``members``: user id -> name); ``fields``: ``status``, ``valid_through``."""
        listed = [{"user_id": uid, "name": member} for uid, member in members.items()]
        with self.lock:
            return self.gmf.add_group({"group_id": group_id, "name": name, "members": listed, **fields})

    def add_group_message(self, group_id: str, user_id: str, text: str = "", **fields: Any) -> Json:
        """A member writing in the group; ``fields``: ``name``, ``type`` and the row's other keys."""
        with self.lock:
            body = {"group_id": group_id, "user_id": user_id, "text": text, **fields}
            return self.gmf.member_message(body, self._next_id(), self._stamp())

    def add_group_oa_message(self, group_id: str, text: str) -> Json:
        with self.lock:
            return self.gmf.oa_message(group_id, text, {"id": self.oa_id, **OA_SENDER}, self._next_id(), self._stamp())

    def _group_control(self, action: str, body: Json) -> Response:
        if action == "group":
            with self.lock:
                return Response(200, self.gmf.add_group(body))
        if action == "group_message":
            fields = {k: v for k, v in body.items() if k not in ("group_id", "user_id", "text")}
            return Response(
                200,
                self.add_group_message(
                    str(body["group_id"]), str(body["user_id"]), str(body.get("text", "")), **fields
                ),
            )
        if action == "group_oa_message":
            return Response(200, self.add_group_oa_message(str(body["group_id"]), str(body.get("text", ""))))
        if action == "group_sent":
            with self.lock:
                return Response(200, {"sent": list(self.gmf.sent)})
        return Response(404, {"error": f"unknown control action {action}"})

    def _gmf(self, request: Request) -> Response:
        def ids() -> tuple[str, int]:
            return self._next_id(), self._stamp()

        def resolve(message: Any) -> tuple[tuple[str, str] | None, Response | None]:
            upload, problem = self._attachment_of(message)
            if upload is None:
                return None, problem
            kind = "GIF" if upload.content_type == "image/gif" else "photo"
            kind = kind if upload.content_type.startswith("image/") else "file"
            return (kind, self.add_media(upload.data, upload.content_type, upload.name or "file")), None

        with self.lock:
            modes = (self.modes.gmf, self.modes.group_mentions)
            oa = {"id": self.oa_id, **OA_SENDER}
            mismatch = self.modes.id_mismatch
            return self.gmf.handle(request, int(self.now() * 1000), modes, oa, ids, resolve, mismatch)

    # --- OAuth ---------------------------------------------------------------------------------------

    def _permission(self, request: Request) -> Response:
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = request.query.get("code_challenge", "")
        target = request.query.get("redirect_uri", "")
        query = urlencode({"code": code, "oa_id": self.oa_id, "state": request.query.get("state", "")})
        return Response(302, {"code": code}, headers={"Location": f"{target}?{query}"})

    def _refresh_refused(self) -> Response:
        form = self.modes.oauth_refusal
        if form == "error_name":
            doc = "https://developers.zalo.me/docs/official-account/bat-dau/xac-thuc-va-uy-quyen-cho-ung-dung-new"
            body = {
                "error_name": "Invalid refresh token",
                "error_reason": "The refresh token is invalid",
                "ref_doc": doc,
            }
            return Response(200, body)
        if form == "error_description":
            return Response(400, {"error": "invalid_grant", "error_description": "Refresh token has expired"})
        if form == "error_reason":
            return Response(200, {"error_reason": "refresh_token has been used"})
        return Response(200, {"error": -14014, "error_name": "invalid_grant", "message": "Invalid refresh token"})

    def _token(self, request: Request) -> Response:
        form = request.form()
        if request.headers.get("secret_key") != self.app_secret or form.get("app_id") != self.app_id:
            return Response(200, {"error": -14002, "error_name": "invalid_app", "message": "Invalid app or secret"})
        grant = form.get("grant_type")
        with self.lock:
            if grant == "refresh_token":
                refresh = form.get("refresh_token", "")
                if refresh not in self.refresh_tokens:
                    return self._refresh_refused()
                self.refresh_tokens.discard(refresh)  # single use
            elif grant == "authorization_code":
                challenge = self.codes.pop(form.get("code", ""), None)
                if challenge is None:
                    return Response(
                        200, {"error": -14019, "error_name": "invalid_grant", "message": "Invalid authorization code"}
                    )
                verifier = form.get("code_verifier", "")
                expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge and expected != challenge:
                    return Response(
                        200,
                        {"error": -14016, "error_name": "invalid_code_verifier", "message": "Invalid code verifier"},
                    )
            else:
                return Response(200, {"error": -14001, "error_name": "invalid_request", "message": "bad grant_type"})
            access, refresh = self.mint_tokens()
        return Response(200, {"access_token": access, "refresh_token": refresh, "expires_in": str(int(ACCESS_TTL))})
