"""In-memory fakes of the two ports (`zfsync.sync.ports`): each side's behaviour as the sync core sees it,
with no HTTP and no simulator, for tests of the core that need neither. `tests/contract/test_ports.py`
holds them, the simulators and the real clients to one contract.

They keep only what the ports promise: listings newest first, ids that are never reused, a user found by
its reference id, "not the latest conversation" for a post into an older one.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from zfsync.domain import (
    FcAgent,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    FcUser,
    FilePart,
    Json,
    Media,
    TextPart,
    ZaloContent,
    ZaloMessage,
    ZaloPackage,
    ZaloProfile,
    ZaloQuota,
    ZaloSent,
)
from zfsync.domain.errors import ConversationNotLatest, PermanentError
from zfsync.sides.quota import Quota
from zfsync.sync.ports import FreshChatSide, ZaloSide

PAGE = 50  # FreshChat messages a page


@dataclass
class FakeZalo:
    """Zalo's OA API: one feed of every user's messages, one conversation per user, sends and uploads."""

    clock: Callable[[], float] = time.time
    quota: Quota = field(default_factory=lambda: Quota("zalo", 4000, minute_windows=True))
    messages: list[ZaloMessage] = field(default_factory=list)  # oldest first
    profiles: dict[str, ZaloProfile] = field(default_factory=dict)
    uploads: dict[str, Media] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)  # user -> the OA's tags on them
    packages: list[ZaloPackage] = field(  # the OA's quota assets
        default_factory=lambda: [ZaloPackage("cs", "sub_quota", 2000, 2000, "31/12/2099")]
    )
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def customer_writes(self, user_id: str, text: str, name: str = "Khách") -> ZaloMessage:
        self.profiles.setdefault(user_id, ZaloProfile(user_id, name))
        return self._add(user_id, from_oa=False, kind="text", text=text)

    def _add(self, user_id: str, from_oa: bool, kind: str, text: str = "", url: str = "") -> ZaloMessage:
        time_ms = max([int(self.clock() * 1000)] + [m.time_ms for m in self.messages[-1:]])
        name = self.profiles[user_id].display_name if user_id in self.profiles else ""
        content = ZaloContent(kind, text, url=url)
        message = ZaloMessage(f"zm{next(self._ids)}", user_id, from_oa, time_ms, content, user_name=name)
        self.messages.append(message)
        return message

    # --- the port ------------------------------------------------------------------------------------

    def recent_messages(self, offset: int, count: int = 10) -> list[ZaloMessage]:
        return self.messages[::-1][offset : offset + count]

    def conversation(self, user_id: str, offset: int, count: int = 10) -> list[ZaloMessage]:
        return [m for m in self.messages[::-1] if m.user_id == user_id][offset : offset + count]

    def send_text(self, user_id: str, text: str, quote: str = "") -> ZaloSent:
        if len(text) > 2000:
            raise PermanentError("text longer than 2,000 characters", side="zalo", endpoint="/v3.0/oa/message/cs")
        return self._sent(self._add(user_id, from_oa=True, kind="text", text=text))

    def send_image(self, user_id: str, attachment_id: str, caption: str = "") -> ZaloSent:
        return self._sent(
            self._add(user_id, from_oa=True, kind="photo", text=caption, url=self._uploaded(attachment_id))
        )

    def send_gif(self, user_id: str, attachment_id: str, width: int, height: int) -> ZaloSent:
        return self._sent(self._add(user_id, from_oa=True, kind="gif", url=self._uploaded(attachment_id)))

    def send_file(self, user_id: str, token: str) -> ZaloSent:
        return self._sent(self._add(user_id, from_oa=True, kind="file", url=self._uploaded(token)))

    def send_info_request(self, user_id: str, title: str, subtitle: str, image_url: str) -> ZaloSent:
        return self._sent(self._add(user_id, from_oa=True, kind="request_user_info", text=title))

    def oa_id(self) -> str:
        return "oa-fake"

    def oa_avatar(self) -> str:
        return "https://fake.zalo/oa.jpg"

    def tag_follower(self, user_id: str, tag: str) -> None:
        self.tags.setdefault(user_id, set()).add(tag)

    def untag_follower(self, user_id: str, tag: str) -> None:
        self.tags.setdefault(user_id, set()).discard(tag)

    def message_quota(self, user_id: str) -> tuple[int, ZaloQuota | None]:
        times = [m.time_ms for m in self.messages if m.user_id == user_id and not m.from_oa]
        profile = self.profiles.get(user_id)
        last = max([*times, profile.last_interaction_day_ms if profile else 0])
        return last, ZaloQuota("reply", 8, 8)

    def package_quota(self) -> list[ZaloPackage]:
        return list(self.packages)

    def _sent(self, message: ZaloMessage) -> ZaloSent:
        return ZaloSent(message.message_id, ZaloQuota("reply"))

    def upload_image(self, media: Media) -> str:
        return self._upload(media)

    def upload_gif(self, media: Media) -> str:
        return self._upload(media)

    def upload_file(self, media: Media) -> str:
        return self._upload(media)

    def download(self, url: str, max_bytes: int) -> Media:
        return _stored(self.uploads, url, max_bytes, "zalo")

    def user_profile(self, user_id: str) -> ZaloProfile:
        if user_id not in self.profiles:
            raise PermanentError("user not found", side="zalo", endpoint="/v3.0/oa/user/detail", code=-213)
        profile = self.profiles[user_id]
        return replace(profile, tags=tuple(sorted(self.tags[user_id]))) if user_id in self.tags else profile

    def interacted_users(self, period: str, offset: int, count: int = 50) -> tuple[list[str], int]:
        users = list(dict.fromkeys(m.user_id for m in self.messages[::-1] if not m.from_oa))
        return users[offset : offset + min(count, 50)], len(users)

    def _upload(self, media: Media) -> str:
        token = f"att{next(self._ids)}"
        self.uploads[token] = media
        return token

    def _uploaded(self, token: str) -> str:
        if token not in self.uploads:
            raise PermanentError("unknown attachment", side="zalo", endpoint="/v3.0/oa/message/cs")
        return f"https://fake.zalo/{token}"


@dataclass
class FakeFreshChat:
    """FreshChat's API: users by reference id, conversations per user (the newest is the latest), messages."""

    clock: Callable[[], float] = time.time
    quota: Quota = field(default_factory=lambda: Quota("freshchat", 400))
    users: dict[str, FcUser] = field(default_factory=dict)  # by id
    conversations: dict[str, list[FcMessage]] = field(default_factory=dict)  # id -> messages, oldest first
    owner: dict[str, str] = field(default_factory=dict)  # conversation -> user
    files: dict[str, Media] = field(default_factory=dict)
    agents: dict[str, FcAgent] = field(default_factory=lambda: {"agent-1": FcAgent("agent-1", "Lan", "Nguyễn")})
    assignees: dict[str, str] = field(default_factory=dict)  # conversation -> agent
    channel_ids: list[str] = field(default_factory=lambda: ["fake-channel"])
    group_ids: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def agent_writes(self, conversation_id: str, text: str, agent_id: str = "agent-1") -> FcMessage:
        return self._add(conversation_id, "agent", agent_id, FcOutgoing((TextPart(text),), "agent"))

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
        return next((u for u in self.users.values() if u.reference_id == reference_id), None)

    def create_user(self, user: FcNewUser) -> FcUser:
        created = FcUser(f"fu{next(self._ids)}", user.reference_id)
        self.users[created.id] = created
        return created

    def update_user(self, user_id: str, user: FcNewUser) -> None:
        if user_id not in self.users:
            raise PermanentError("user not found", side="freshchat", endpoint=f"/v2/users/{user_id}", status=404)

    def user_conversations(self, user_id: str) -> list[str]:
        return [c for c in self.conversations if self.owner[c] == user_id]

    def conversation_assignee(self, conversation_id: str) -> str:
        return self.assignees.get(conversation_id, "")

    def agent(self, agent_id: str) -> FcAgent:
        if agent_id not in self.agents:
            raise PermanentError("agent not found", side="freshchat", endpoint="/v2/agents/{id}", status=404)
        return self.agents[agent_id]

    def conversation_started(self, conversation_id: str) -> str:
        self._known(conversation_id)
        return f"{list(self.conversations).index(conversation_id):012d}"  # created in this order

    def create_conversation(
        self, channel_id: str, user_id: str, first: FcOutgoing, group_id: str = ""
    ) -> tuple[str, str | None]:
        conversation_id = f"fc{next(self._ids)}"
        self.conversations[conversation_id], self.owner[conversation_id] = [], user_id
        posted = self._add(conversation_id, first.actor_type, user_id, first) if first.parts else None
        return conversation_id, posted.id if posted else None

    def reopen(self, conversation_id: str) -> None:
        self._known(conversation_id)

    def post_message(self, conversation_id: str, user_id: str, message: FcOutgoing) -> str:
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
        newest_first = self._known(conversation_id)[::-1]
        for start in range(0, len(newest_first), PAGE):
            yield newest_first[start : start + PAGE]

    def upload_image(self, media: Media) -> str:
        return f"https://fake.freshchat/{self._file(media)}"

    def upload_file(self, media: Media) -> FilePart:
        url = f"https://fake.freshchat/{self._file(media)}"
        return FilePart(media.name, url, media.content_type, media.size)

    def download(self, url: str, max_bytes: int) -> Media:
        return _stored(self.files, url, max_bytes, "freshchat")

    def account_configuration(self) -> Json:
        return {"app_id": "fake", "widget_version": "fake"}

    def channels(self) -> list[Json]:
        return [{"id": channel, "name": channel} for channel in self.channel_ids]

    def groups(self) -> list[Json]:
        return [{"id": group, "name": group} for group in self.group_ids]

    def _file(self, media: Media) -> str:
        key = f"f{next(self._ids)}"
        self.files[key] = media
        return key

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


def _stored(files: dict[str, Media], url: str, max_bytes: int, side: str) -> Media:
    """An attachment a fake holds, by the last part of its URL, refused past ``max_bytes``."""
    media = files.get(url.rsplit("/", 1)[-1])
    if media is None:
        raise PermanentError(f"no such attachment {url}", side=side, endpoint=url, status=404)
    if media.size > max_bytes:
        raise PermanentError(f"attachment over {max_bytes} bytes", side=side, endpoint=url)
    return media


def _held_to_the_ports(zalo: FakeZalo, freshchat: FakeFreshChat) -> tuple[ZaloSide, FreshChatSide]:
    return zalo, freshchat  # mypy checks here that each fake fits its port
