"""In-memory fakes of the two ports (`zfsync.sync.ports`): each side's behaviour as the sync core sees it,
with no HTTP and no simulator, for tests of the core that need neither. `tests/contract/test_ports.py`
holds them, the simulators and the real clients to one contract.

They keep only what the ports promise: listings newest first, ids that are never reused, a user found by
its reference id, "not the latest conversation" for a post into an older one. Tests steer them with the
simulators' own words (`add_customer_message`, `add_agent_message`, `set_resolved`, `add_media`, the
``sent`` record, ``state()``), so one scenario runs on either; what a test writes in those words is read
with the real wire readers (`sides.zalo.wire.row_of`, `sides.freshchat.wire.read_message`), so a fake
holds only what a client could have handed the core.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from zfsync.domain import (
    CONVERSATION,
    FEED,
    FcAgent,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    FcUser,
    FilePart,
    Json,
    Media,
    ZaloContent,
    ZaloGroup,
    ZaloGroupAsset,
    ZaloMessage,
    ZaloPackage,
    ZaloProfile,
    ZaloQuota,
    ZaloSent,
    ZnsRating,
    ZnsSent,
    ZnsTemplate,
    group_id_of,
    is_group,
)
from zfsync.domain import reference_id as reference_of
from zfsync.domain.errors import ConversationNotLatest, InvalidResponse, PermanentError, RateLimited, TransientError
from zfsync.sides.freshchat import wire as freshchat_wire
from zfsync.sides.http import too_large
from zfsync.sides.quota import Quota
from zfsync.sides.zalo import gmf as gmf_wire
from zfsync.sides.zalo import wire as zalo_wire
from zfsync.sides.zalo import zns as zns_wire
from zfsync.sides.zalo.codes import error_for
from zfsync.sim.base import Fault, Request, Response, fault_body
from zfsync.sim.freshchat import AGENT_ID, CHANNEL_ID, GROUP_ID, agent_message_fields, system_marker_fields
from zfsync.sim.gmf import GmfState
from zfsync.sim.zalo import OA_SENDER, PERIODS
from zfsync.sim.zns import ZnsState, shared_phones
from zfsync.sync.ports import FreshChatSide, ZaloSide

PAGE = 50  # FreshChat messages a page
SEND = "/v3.0/oa/message/cs"
WINDOW_MS = 7 * 86_400_000
VIETNAM = timezone(timedelta(hours=7))
OA_ID = "oa-fake"


@dataclass
class FakeZalo:
    """Zalo's OA API: one feed of every user's messages, one conversation per user, sends and uploads."""

    clock: Callable[[], float] = time.time
    quota: Quota = field(default_factory=lambda: Quota("zalo", 4000, minute_windows=True))
    base_url: str = "http://zalo.fake"  # where its files are
    messages: list[ZaloMessage] = field(default_factory=list)  # oldest first
    # Users in the simulator's words: display_name, avatar, shared_info, tags, notes, follower, last_interaction
    # (ms); read back as `user/detail` answers them.
    users: dict[str, Json] = field(default_factory=dict)
    uploads: dict[str, Media] = field(default_factory=dict)
    packages: list[ZaloPackage] = field(  # the OA's quota assets
        default_factory=lambda: [ZaloPackage("cs", "sub_quota", 2000, 2000, "31/12/2099")]
    )
    sent: list[Json] = field(default_factory=list)  # what the OA sent through the API, as the simulator keeps it
    arrivals_during_listing: list[tuple[str, Json]] = field(default_factory=list)  # (user, fields): one a listing
    faults: list[Fault] = field(default_factory=list)  # by endpoint, as the client would have raised them
    lock: threading.RLock = field(default_factory=threading.RLock)  # held by tests written for the simulator
    requests: Counter[str] = field(default_factory=Counter)  # calls by endpoint, as the simulator counts them
    zns: ZnsState = field(default_factory=ZnsState)  # the OA's ZNS templates and sends, as the simulator's
    gmf: GmfState = field(default_factory=GmfState)  # the OA's group chats, as the simulator's
    gmf_modes: tuple[str, str] = ("on", "ids")  # the simulator's Modes.gmf and Modes.group_mentions
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # --- what a test does, in the simulator's words ---------------------------------------------------

    def add_customer_message(self, user_id: str, display_name: str = "", avatar: str = "", **fields: Any) -> Json:
        """A customer writing to the OA; ``fields``: the listing row's other keys (``text`` is its
        ``message``), read as a client reads a row."""
        user = self.users.setdefault(
            user_id,
            {"display_name": f"User {user_id[-4:]}", "avatar": f"https://s120.avatar.talk.zdn.vn/{user_id}.jpg"},
        )
        user["display_name"] = display_name or user["display_name"]
        user["avatar"] = avatar or user["avatar"]
        name, avatar = user["display_name"], user["avatar"]
        row: Json = {
            "src": 1,
            "time": self._stamp(),
            "from_id": user_id,
            "from_display_name": name,
            "from_avatar": avatar,
            "to_id": OA_ID,
            "message_id": f"zm{next(self._ids)}",
            "type": fields.pop("type", "text"),
            "message": fields.pop("text", ""),
            **fields,
        }
        message = zalo_wire.row_of(row, False, "")  # tagged with its listing when listed
        assert message is not None
        self.messages.append(message)
        user["last_interaction"] = message.time_ms
        return row

    def add_oa_message(self, user_id: str, text: str, kind: str = "text", time_ms: int | None = None) -> ZaloMessage:
        """Someone at the OA writing from the Zalo app (not through the API); ``time_ms``: when, if not now."""
        return self._add(user_id, from_oa=True, kind=kind, text=text, time_ms=time_ms)

    def add_media(self, data: bytes, content_type: str, name: str) -> str:
        """A file on Zalo's CDN; returns its URL."""
        return self._uploaded(self._upload(Media(data, content_type, name)))

    def _stamp(self) -> int:
        group_times = [int(r["time"]) + 1 for r in self.gmf.rows[-1:]]
        return max([int(self.clock() * 1000)] + [m.time_ms + 1 for m in self.messages[-1:]] + group_times)

    # --- group chats, in the simulator's words and answered by its state -----------------------------

    def add_group(self, group_id: str, name: str, members: dict[str, str], **fields: Any) -> Json:
        listed = [{"user_id": uid, "name": member} for uid, member in members.items()]
        return self.gmf.add_group({"group_id": group_id, "name": name, "members": listed, **fields})

    def add_group_message(self, group_id: str, user_id: str, text: str = "", **fields: Any) -> Json:
        body = {"group_id": group_id, "user_id": user_id, "text": text, **fields}
        return self.gmf.member_message(body, f"zm{next(self._ids)}", self._stamp())

    def add_group_oa_message(self, group_id: str, text: str) -> Json:
        return self.gmf.oa_message(group_id, text, {"id": OA_ID, **OA_SENDER}, f"zm{next(self._ids)}", self._stamp())

    def groups(self) -> list[ZaloGroup]:
        found: list[ZaloGroup] = []
        while True:
            page, total = gmf_wire.groups_of(self._gmf("GET", gmf_wire.GROUPS, {"offset": len(found), "count": 10}))
            found.extend(page)
            if not page or len(found) >= total:
                return found

    def group_feed(self, offset: int, count: int = 10) -> list[ZaloMessage]:
        data = self._gmf("GET", gmf_wire.RECENT, {"offset": offset, "count": count})
        return gmf_wire.group_rows_of(data, gmf_wire.RECENT, gmf_wire.GROUP_FEED)

    def group_members(self, group_id: str) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for number in itertools.count():
            query = {"group_id": group_id, "offset": number * 10, "count": 10}
            page, total = gmf_wire.members_of(self._gmf("GET", gmf_wire.MEMBERS, query))
            found.extend(page)
            if not page or number * 10 + 10 >= total:
                return list(dict(found).items())
        return found

    def group_assets(self) -> list[ZaloGroupAsset]:
        return gmf_wire.assets_of(self._gmf("POST", gmf_wire.ASSETS, body={"quota_owner": "OA"}))

    def _group_listing(self, user_id: str, offset: int, count: int) -> list[ZaloMessage]:
        query = {"group_id": group_id_of(user_id), "offset": offset, "count": count}
        data = self._gmf("GET", gmf_wire.CONVERSATION, query)
        return gmf_wire.group_rows_of(data, gmf_wire.CONVERSATION, gmf_wire.GROUP_CONVERSATION)

    def _group_send(self, user_id: str, message: Json) -> ZaloSent:
        body = {"recipient": {"group_id": group_id_of(user_id)}, "message": message}
        return ZaloSent(gmf_wire.sent_of(self._gmf("POST", gmf_wire.SEND, body=body)), None)

    def _gmf(self, method: str, path: str, query: Json | None = None, body: Json | None = None) -> Any:
        self._call(path)
        request = Request(
            method, path, {k: str(v) for k, v in (query or {}).items()}, {}, json.dumps(body or {}).encode()
        )

        def resolve(message: Any) -> tuple[tuple[str, str] | None, Any]:
            attachment = message.get("attachment") if isinstance(message, dict) else None
            if not isinstance(attachment, dict):
                return None, None
            payload = attachment.get("payload") or {}
            key = str(payload.get("token") or (payload.get("elements") or [{}])[0].get("attachment_id") or "")
            media = self.uploads.get(key)
            if media is None:
                return None, Response(200, {"error": -100, "message": "attachment_id was expired"})
            kind = "GIF" if media.content_type == "image/gif" else "photo"
            return (kind if media.content_type.startswith("image/") else "file", self._uploaded(key)), None

        with self.lock:
            ids = lambda: (f"zm{next(self._ids)}", self._stamp())  # noqa: E731
            oa = {"id": OA_ID, **OA_SENDER}
            answer = self.gmf.handle(request, int(self.clock() * 1000), self.gmf_modes, oa, ids, resolve)
        return zalo_wire.data_of(answer.body, path, answer.status)

    def _add(
        self, user_id: str, from_oa: bool, kind: str, text: str = "", url: str = "", time_ms: int | None = None
    ) -> ZaloMessage:
        name = self.users[user_id]["display_name"] if user_id in self.users else ""
        content = ZaloContent(kind, text, url=url)
        at = self._stamp() if time_ms is None else time_ms
        message = ZaloMessage(f"zm{next(self._ids)}", user_id, from_oa, at, content, user_name=name)
        self.messages.append(message)
        return message

    # --- the port ------------------------------------------------------------------------------------

    def recent_messages(self, offset: int, count: int = 10) -> list[ZaloMessage]:
        self._call("/v2.0/oa/listrecentchat")
        if self.arrivals_during_listing:
            # A customer writes while zfsync pages: offsets shift and the next page repeats a row.
            user_id, fields = self.arrivals_during_listing.pop(0)
            self.add_customer_message(user_id, **fields)
        return [replace(m, listing=FEED) for m in self.messages[::-1][offset : offset + count]]

    def conversation(self, user_id: str, offset: int, count: int = 10) -> list[ZaloMessage]:
        if is_group(user_id):
            return self._group_listing(user_id, offset, count)
        self._call("/v2.0/oa/conversation")
        listed = [m for m in self.messages[::-1] if m.user_id == user_id][offset : offset + count]
        return [replace(m, listing=CONVERSATION) for m in listed]

    def send_text(self, user_id: str, text: str, quote: str = "") -> ZaloSent:
        if is_group(user_id):
            return self._group_send(user_id, {"text": text})
        self._call(SEND)
        self._may_reply(user_id)
        if quote and not any(m.message_id == quote and not m.from_oa for m in self.messages):
            raise error_for(-201, "quote_message_id is invalid!", endpoint=SEND, status=200)
        if len(text) > 2000:
            raise error_for(-201, "text is invalid! (over 2000 characters)", endpoint=SEND, status=200)
        return self._sent(self._add(user_id, from_oa=True, kind="text", text=text), quote=quote)

    def send_image(self, user_id: str, attachment_id: str, caption: str = "") -> ZaloSent:
        if is_group(user_id):
            element = {"media_type": "image", "attachment_id": attachment_id}
            return self._group_send(user_id, zalo_wire.media_template(element, caption))
        self._call(SEND)
        self._may_reply(user_id)
        sent = self._add(user_id, from_oa=True, kind="photo", text=caption, url=self._uploaded(attachment_id))
        return self._sent(sent, self.uploads[attachment_id])

    def send_gif(self, user_id: str, attachment_id: str, width: int, height: int) -> ZaloSent:
        if is_group(user_id):
            element = {"media_type": "gif", "attachment_id": attachment_id, "width": width, "height": height}
            return self._group_send(user_id, zalo_wire.media_template(element, ""))
        self._call(SEND)
        self._may_reply(user_id)
        return self._sent(
            self._add(user_id, True, "GIF", url=self._uploaded(attachment_id)), self.uploads[attachment_id]
        )

    def send_file(self, user_id: str, token: str) -> ZaloSent:
        if is_group(user_id):
            return self._group_send(user_id, {"attachment": {"type": "file", "payload": {"token": token}}})
        self._call(SEND)
        self._may_reply(user_id)
        return self._sent(self._add(user_id, from_oa=True, kind="file", url=self._uploaded(token)), self.uploads[token])

    def send_info_request(self, user_id: str, title: str, subtitle: str, image_url: str) -> ZaloSent:
        if is_group(user_id):
            return self._group_send(user_id, zalo_wire.info_request(title, subtitle, image_url))
        self._call(SEND)
        self._may_reply(user_id)
        sent = self._add(user_id, from_oa=True, kind="request_user_info", text=title)
        return self._sent(sent, card={"title": title, "subtitle": subtitle, "image_url": image_url})

    def zns_template(self, template_id: str) -> ZnsTemplate:
        self._call("/template/info/v2")
        data = self._zns(Request("GET", "/template/info/v2", {"template_id": template_id}, {}, b""))
        return zns_wire.template_of(data, "/template/info/v2", detailed=True)

    def send_template(self, phone: str, template_id: str, data: dict[str, str], tracking_id: str) -> ZnsSent:
        self._call("/message/template")
        body = {"phone": phone, "template_id": template_id, "template_data": data, "tracking_id": tracking_id}
        return zns_wire.sent_of(self._zns(Request("POST", "/message/template", {}, {}, json.dumps(body).encode())))

    def zns_ratings(self, template_id: str, from_ms: int, to_ms: int) -> list[ZnsRating]:
        self._call("/rating/get")
        query = {"template_id": template_id, "from_time": str(from_ms), "to_time": str(to_ms)}
        data = self._zns(Request("GET", "/rating/get", {**query, "offset": "0", "limit": "100"}, {}, b""))
        found = [r for r in (zns_wire.rating_of(row) for row in data.get("data", [])) if r is not None]
        return sorted(found, key=lambda r: (r.submitted_ms, r.message_id))

    def _zns(self, request: Request) -> Any:
        """The simulator's own ZNS answers, read as the client reads them."""
        with self.lock:
            phones = shared_phones(self.users)
            answer = self.zns.handle(request, "doc", True, phones, int(self.clock() * 1000))
        return zns_wire.data_of(answer.body, request.path, answer.status)

    def oa_id(self) -> str:
        self._call("/v2.0/oa/getoa")
        return OA_ID

    def oa_avatar(self) -> str:
        self._call("/v2.0/oa/getoa")
        return "https://fake.zalo/oa.jpg"

    def tag_follower(self, user_id: str, tag: str) -> None:
        self._call("/v2.0/oa/tag/tagfollower")
        tags = self.users.setdefault(user_id, {}).setdefault("tags", [])
        tags.extend([tag] if tag not in tags else [])

    def untag_follower(self, user_id: str, tag: str) -> None:
        self._call("/v2.0/oa/tag/rmfollowerfromtag")
        tags = self.users.setdefault(user_id, {}).setdefault("tags", [])
        tags[:] = [t for t in tags if t != tag]

    def message_quota(self, user_id: str) -> tuple[int, ZaloQuota | None]:
        self._call("/v3.0/oa/quota/message")
        return int(self.users.get(user_id, {}).get("last_interaction", 0)), ZaloQuota("reply", 8, 8)

    def package_quota(self) -> list[ZaloPackage]:
        self._call("/v3.0/oa/quota/message")
        return list(self.packages)

    def _sent(
        self, message: ZaloMessage, media: Media | None = None, card: Json | None = None, quote: str = ""
    ) -> ZaloSent:
        record: Json = {
            "message_id": message.message_id,
            "user_id": message.user_id,
            "text": message.content.text,
            "time": message.time_ms,
        }
        if media is not None:
            record.update(kind=message.content.type, name=media.name, size=media.size)
        if card is not None:
            record["card"] = card
        if quote:
            record["quote"] = quote
        self.sent.append(record)
        return ZaloSent(message.message_id, ZaloQuota("reply"))

    def upload_image(self, media: Media) -> str:
        self._call("/v2.0/oa/upload/image")
        return self._upload(media)

    def upload_gif(self, media: Media) -> str:
        self._call("/v2.0/oa/upload/gif")
        return self._upload(media)

    def upload_file(self, media: Media) -> str:
        self._call("/v2.0/oa/upload/file")
        return self._upload(media)

    def download(self, url: str, max_bytes: int) -> Media:
        self._call("/media/")
        return _stored(self.uploads, url, max_bytes, "zalo")

    def user_profile(self, user_id: str) -> ZaloProfile:
        self._call("/v3.0/oa/user/detail")
        user = self.users.get(user_id)
        if user is None:
            raise error_for(-201, "user_id is invalid!", endpoint="/v3.0/oa/user/detail", status=200)
        last = user.get("last_interaction")
        detail = {
            "user_id": user_id,
            "display_name": user.get("display_name", ""),
            "avatar": user.get("avatar", ""),
            "user_is_follower": bool(user.get("follower", True)),
            "user_last_interaction_date": _vietnam_day(last) if last else "",
            "tags_and_notes_info": {"notes": list(user.get("notes", [])), "tag_names": list(user.get("tags", []))},
            "shared_info": user.get("shared_info", {}),
        }
        return zalo_wire.profile_of(detail, user_id)

    def interacted_users(self, period: str, offset: int, count: int = 50) -> tuple[list[str], int]:
        """Users whose last interaction falls in ``period`` (Vietnam days, as `user/getlist` reads it), most
        recent first."""
        self._call("/v3.0/oa/user/getlist")
        today = datetime.fromtimestamp(self.clock(), VIETNAM).date()
        first, last = date(1970, 1, 1), today
        if ":" in period:
            first, last = (datetime.strptime(p, "%Y_%m_%d").date() for p in period.split(":", 1))
        elif period in PERIODS:
            first = today - timedelta(days=PERIODS[period])
            last = today - timedelta(days=1) if period == "YESTERDAY" else today
        found = sorted(
            ((user["last_interaction"], user_id) for user_id, user in self.users.items() if "last_interaction" in user),
            reverse=True,
        )
        users = [u for at, u in found if first <= datetime.fromtimestamp(at / 1000, VIETNAM).date() <= last]
        return users[offset : offset + min(count, 50)], len(users)

    def _call(self, endpoint: str) -> None:
        self.requests[endpoint] += 1
        _raise_fault(self.faults, "zalo", endpoint)

    def _may_reply(self, user_id: str) -> None:
        """Zalo's own refusals of a consultation message: a user who never wrote, or wrote over 7 days ago."""
        last = self.users.get(user_id, {}).get("last_interaction")
        if last is None:
            raise error_for(-232, "User has not interacted with the OA", endpoint=SEND, status=200)
        if self.clock() * 1000 - last > WINDOW_MS:
            raise error_for(-230, "User has not interacted with the OA in the past 7 days", endpoint=SEND, status=200)

    def _upload(self, media: Media) -> str:
        token = f"m{next(self._ids)}"
        self.uploads[token] = media
        return token

    def _uploaded(self, token: str) -> str:
        if token not in self.uploads:
            raise PermanentError("unknown attachment", side="zalo", endpoint="/v3.0/oa/message/cs")
        return f"{self.base_url}/media/{token}/{self.uploads[token].name}"


@dataclass
class FakeFreshChat:
    """FreshChat's API: users by reference id, conversations per user (the newest is the latest), messages."""

    clock: Callable[[], float] = time.time
    quota: Quota = field(default_factory=lambda: Quota("freshchat", 400))
    base_url: str = "http://freshchat.fake"  # where its files are
    users: dict[str, FcUser] = field(default_factory=dict)  # by id
    conversations: dict[str, list[FcMessage]] = field(default_factory=dict)  # id -> messages, oldest first
    owner: dict[str, str] = field(default_factory=dict)  # conversation -> user
    media: dict[str, Media] = field(default_factory=dict)  # attachments on its host, by key
    agents: dict[str, FcAgent] = field(default_factory=lambda: {AGENT_ID: FcAgent(AGENT_ID, "Lan", "Nguyễn")})
    assignees: dict[str, str] = field(default_factory=dict)  # conversation -> agent
    channel_names: dict[str, str] = field(default_factory=lambda: {CHANNEL_ID: "Zalo"})  # id -> name
    group_names: dict[str, str] = field(default_factory=lambda: {GROUP_ID: "Hỗ trợ"})
    records: dict[str, Json] = field(default_factory=dict)  # user id -> the user as FreshChat shows it
    details: dict[str, Json] = field(default_factory=dict)  # conversation -> channel, group, status
    faults: list[Fault] = field(default_factory=list)  # by endpoint, as the client would have raised them
    lock: threading.RLock = field(default_factory=threading.RLock)  # held by tests written for the simulator
    requests: Counter[str] = field(default_factory=Counter)  # calls by endpoint, as the simulator counts them
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # --- what a test does, in the simulator's words ---------------------------------------------------

    def add_agent_message(
        self,
        conversation_id: str,
        text: str = "",
        parts: list[Json] | None = None,
        actor_type: str = "agent",
        actor_id: str = AGENT_ID,
        message_type: str = "normal",
        **extra: Any,
    ) -> Json:
        """What an agent typing in the inbox produces (or a bot, or a private note), as the simulator
        takes it, read as the client reads a listed message."""
        fields = agent_message_fields(text, parts, actor_type, actor_id, message_type, extra)
        return self._add_raw(conversation_id, fields)

    def set_resolved(self, conversation_id: str, resolved: bool) -> Json:
        """An agent resolving (or reopening) a conversation: a status and a marker message."""
        self._known(conversation_id)
        self.details[conversation_id]["status"] = "resolved" if resolved else "reopened"
        return self._add_raw(conversation_id, system_marker_fields("isResolved" if resolved else "isReopen"))

    def edit_user(self, zalo_user_id: str, **fields: Any) -> None:
        """An agent typing into the record of the user standing for a Zalo user (a phone, an email)."""
        self.records[self._known_user(zalo_user_id).id].update(fields)

    def set_agent(self, agent_id: str, first_name: str, last_name: str) -> None:
        """An agent's name as FreshChat's agent record gives it."""
        self.agents[agent_id] = FcAgent(agent_id, first_name, last_name)

    def add_channel(self, channel_id: str, name: str) -> None:
        self.channel_names[channel_id] = name

    def remove_channel(self, channel_id: str) -> None:
        """A channel deleted in FreshChat: conversations can no longer open in it."""
        self.channel_names.pop(channel_id, None)

    def assign(self, conversation_id: str, agent_id: str = AGENT_ID) -> None:
        self._known(conversation_id)
        self.assignees[conversation_id] = agent_id
        self.details[conversation_id]["status"] = "assigned"

    def start_conversation(self, zalo_user_id: str) -> str:
        """A newer conversation for the user standing for a Zalo user, opened in FreshChat (by an agent or
        a bot), in the default channel; returns its id."""
        owner = self._known_user(zalo_user_id).id
        conversation_id = f"fc{next(self._ids)}"
        self.conversations[conversation_id], self.owner[conversation_id] = [], owner
        self.details[conversation_id] = {"channel_id": CHANNEL_ID, "assigned_group_id": "", "status": "new"}
        return conversation_id

    def add_media(self, data: bytes, content_type: str, name: str) -> str:
        """A file an agent attached; returns its URL."""
        return self._url(Media(data, content_type, name))

    def conversation_of(self, zalo_user_id: str) -> str | None:
        """The latest conversation of the user standing for a Zalo user, if there is one yet."""
        user = self._standing_for(zalo_user_id)
        return self._latest(user.id) if user else None

    def _standing_for(self, zalo_user_id: str) -> FcUser | None:
        """The user standing for a Zalo user, looked up here: a test's look is no request to fail or count."""
        return next((u for u in self.users.values() if u.reference_id == reference_of(zalo_user_id)), None)

    def _known_user(self, zalo_user_id: str) -> FcUser:
        user = self._standing_for(zalo_user_id)
        assert user is not None, f"no FreshChat user for Zalo user {zalo_user_id}"
        return user

    def state(self) -> Json:
        """Users and conversations with their messages, in FreshChat's JSON (the simulator's view)."""
        users = [{"id": u.id, **self.records[u.id]} for u in self.users.values()]
        conversations = [
            {
                "conversation_id": c,
                "user_id": self.owner[c],
                "assigned_agent_id": self.assignees.get(c, ""),
                **self.details[c],
                "messages": [_listed(m) for m in messages],
            }
            for c, messages in self.conversations.items()
        ]
        return {"users": users, "conversations": conversations}

    def _add_raw(self, conversation_id: str, raw: Json) -> Json:
        self._known(conversation_id)
        raw = {"id": f"fm{next(self._ids)}", "created_time": _iso(self.clock()), **raw}
        self.conversations[conversation_id].append(freshchat_wire.read_message(raw, conversation_id))
        return raw

    def _add(self, conversation_id: str, actor_type: str, actor_id: str, message: FcOutgoing) -> FcMessage:
        at = datetime.fromtimestamp(self.clock(), UTC)
        posted = FcMessage(
            f"fm{next(self._ids)}", conversation_id, actor_type, actor_id, message.message_type, at, message.parts
        )
        self.conversations[conversation_id].append(posted)
        return posted

    def _latest(self, user_id: str) -> str | None:
        return next((c for c in reversed(self.conversations) if self.owner[c] == user_id), None)

    # --- the port ------------------------------------------------------------------------------------

    def find_user(self, reference_id: str) -> FcUser | None:
        self._call("/v2/users")
        return next((u for u in self.users.values() if u.reference_id == reference_id), None)

    def create_user(self, user: FcNewUser) -> FcUser:
        self._call("/v2/users")
        created = FcUser(f"fu{next(self._ids)}", user.reference_id)
        self.users[created.id], self.records[created.id] = created, freshchat_wire.user_body(user)
        return created

    def update_user(self, user_id: str, user: FcNewUser) -> None:
        self._call(f"/v2/users/{user_id}")
        if user_id not in self.users:
            raise PermanentError("user not found", side="freshchat", endpoint=f"/v2/users/{user_id}", status=404)
        # As FreshChat's PUT: the fields sent replace theirs; properties merge by name, so one an agent
        # set (or a phone an agent typed) stays when zfsync does not send it.
        record, body = self.records[user_id], freshchat_wire.user_body(user)
        given = {p["name"]: p for p in body.pop("properties", [])}
        kept = [p for p in record.get("properties", []) if p["name"] not in given]
        record.update(body, properties=kept + list(given.values()))

    def user_conversations(self, user_id: str) -> list[str]:
        self._call(f"/v2/users/{user_id}/conversations")
        return [c for c in self.conversations if self.owner[c] == user_id]

    def conversation_assignee(self, conversation_id: str) -> str:
        self._call(f"/v2/conversations/{conversation_id}")
        return self.assignees.get(conversation_id, "")

    def agent(self, agent_id: str) -> FcAgent:
        self._call(f"/v2/agents/{agent_id}")
        if agent_id not in self.agents:
            raise PermanentError("agent not found", side="freshchat", endpoint="/v2/agents/{id}", status=404)
        return self.agents[agent_id]

    def conversation_started(self, conversation_id: str) -> str:
        self._call(f"/v2/conversations/{conversation_id}")
        self._known(conversation_id)
        return f"{list(self.conversations).index(conversation_id):012d}"  # created in this order

    def create_conversation(
        self, channel_id: str, user_id: str, first: FcOutgoing, group_id: str = ""
    ) -> tuple[str, str | None]:
        self._call("/v2/conversations")
        if channel_id not in self.channel_names or (group_id and group_id not in self.group_names):
            what = "channel_id" if channel_id not in self.channel_names else "assigned_group_id"
            raise freshchat_wire.error_of(400, {"message": f"{what} is not valid"}, "/v2/conversations")
        conversation_id = f"fc{next(self._ids)}"
        self.conversations[conversation_id], self.owner[conversation_id] = [], user_id
        self.details[conversation_id] = {"channel_id": channel_id, "assigned_group_id": group_id, "status": "new"}
        posted = self._add(conversation_id, first.actor_type, user_id, first) if first.parts else None
        return conversation_id, posted.id if posted else None

    def conversation_properties(self, conversation_id: str) -> dict[str, str]:
        self._call(f"/v2/conversations/{conversation_id}")
        self._known(conversation_id)
        return dict(self.details[conversation_id].get("properties") or {})

    def set_conversation_properties(self, conversation_id: str, properties: dict[str, str]) -> None:
        self._call(f"/v2/conversations/{conversation_id}")
        self._known(conversation_id)
        self.details[conversation_id].setdefault("properties", {}).update(properties)

    def reopen(self, conversation_id: str) -> None:
        self._call(f"/v2/conversations/{conversation_id}")
        self._known(conversation_id)
        self.details[conversation_id]["status"] = "reopened"

    def post_message(self, conversation_id: str, user_id: str, message: FcOutgoing) -> str:
        self._call(f"/v2/conversations/{conversation_id}/messages")
        self._known(conversation_id)
        if message.actor_type == "user" and self._latest(user_id) != conversation_id:
            raise ConversationNotLatest(
                "User message not allowed in not the latest conversation",
                side="freshchat",
                endpoint="/v2/conversations/{id}/messages",
                status=400,
            )
        return self._add(conversation_id, message.actor_type, message.actor_id or user_id, message).id

    def message_pages(self, conversation_id: str) -> Iterator[list[FcMessage]]:
        self._call(f"/v2/conversations/{conversation_id}/messages")
        newest_first = self._known(conversation_id)[::-1]
        for start in range(0, len(newest_first), PAGE):
            yield newest_first[start : start + PAGE]

    def upload_image(self, media: Media) -> str:
        self._call("/v2/images/upload")
        return self._url(media)

    def upload_file(self, media: Media) -> FilePart:
        self._call("/v2/files/upload")
        url = self._url(media)
        return FilePart(media.name, url, media.content_type, media.size)

    def download(self, url: str, max_bytes: int) -> Media:
        self._call("/media/")
        return _stored(self.media, url, max_bytes, "freshchat")

    def account_configuration(self) -> Json:
        self._call("/v2/accounts/configuration")
        return {"app_id": "fake", "widget_version": "fake"}

    def channels(self) -> list[Json]:
        self._call("/v2/channels")
        return [{"id": channel, "name": name} for channel, name in self.channel_names.items()]

    def groups(self) -> list[Json]:
        self._call("/v2/groups")
        return [{"id": group, "name": name} for group, name in self.group_names.items()]

    def _call(self, endpoint: str) -> None:
        self.requests[endpoint] += 1
        _raise_fault(self.faults, "freshchat", endpoint)

    def _url(self, media: Media) -> str:
        key = f"m{next(self._ids)}"
        self.media[key] = media
        return f"{self.base_url}/media/{key}/{media.name}"

    def _known(self, conversation_id: str) -> list[FcMessage]:
        if conversation_id not in self.conversations:
            raise PermanentError(
                "conversation not found", side="freshchat", endpoint=f"/v2/conversations/{conversation_id}", status=404
            )
        return self.conversations[conversation_id]


class FakeClock:
    """Starts at the real time (the simulators stamp messages with it) and moves only when told, or when
    a request budget that must wait sleeps on it (``advance``)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _raise_fault(faults: list[Fault], side: str, endpoint: str) -> None:
    """Raise what the real client raises when the next fault for ``endpoint`` comes as its answer."""
    fault = next((f for f in faults if endpoint.startswith(f.path) and f.count > 0), None)
    if fault is None:
        return
    fault.count -= 1
    kind, code = fault.kind, fault.code
    if kind == "timeout":
        raise TransientError("timed out", side=side, endpoint=endpoint)
    if kind == "reset":
        raise TransientError("connection failed (ConnectionError)", side=side, endpoint=endpoint)
    if kind in ("html", "malformed"):
        raise InvalidResponse("answer is not JSON", side=side, endpoint=endpoint, status=200)
    if kind == "zalo_error":
        raise error_for(code, fault.message or "Simulated error", endpoint=endpoint, status=200)
    if kind == "status" and code == 429:
        raise RateLimited("rate limited", retry_after=fault.seconds or 1.0, side=side, endpoint=endpoint, status=code)
    if kind == "status" and code >= 500:
        raise TransientError("server error", side=side, endpoint=endpoint, status=code)
    if kind == "status" and side == "zalo":
        raise error_for(-1, f"HTTP {code}", endpoint=endpoint, status=code)
    if kind == "status":
        raise freshchat_wire.error_of(code, fault_body(fault), endpoint)
    raise ValueError(f"a {kind!r} fault is about the wire: run this test on the simulators")


def _vietnam_day(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, VIETNAM).strftime("%d/%m/%Y")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _listed(message: FcMessage) -> Json:
    """A held message as FreshChat lists it."""
    listed: Json = {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "actor_type": message.actor_type,
        "actor_id": message.actor_id,
        "message_type": message.message_type,
        "created_time": _iso(message.created_time.timestamp()),
        "message_parts": [freshchat_wire.part_body(p) for p in message.parts],
    }
    if message.reply_parts:
        listed["reply_parts"] = [freshchat_wire.part_body(p) for p in message.reply_parts]
    if message.meta:
        listed["meta_data"] = dict(message.meta)
    return listed


def _stored(files: dict[str, Media], url: str, max_bytes: int, side: str) -> Media:
    """An attachment a fake holds, by its key in the URL, refused as `sides.http.download` refuses it."""
    key = re.search(r"/media/([^/]+)/", url)
    media = files.get(key.group(1)) if key else None
    if media is None:
        raise PermanentError("download answered HTTP 404", side=side, endpoint=url)
    if media.size > max_bytes:
        raise PermanentError(too_large(media.size, max_bytes), side=side, endpoint=url, code="too_large")
    return media


def _held_to_the_ports(zalo: FakeZalo, freshchat: FakeFreshChat) -> tuple[ZaloSide, FreshChatSide]:
    return zalo, freshchat  # mypy checks here that each fake fits its port
