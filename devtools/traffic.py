"""Traffic for the crash test: customers and agents writing at random, each message carrying a unique
marker (``z17``, ``f42``) so that what arrived can be matched to what was written whatever its type."""

from __future__ import annotations

import json
import random
import re

from zfsync.cli.demo import Demo
from zfsync.domain import group_id_of, group_key, is_group
from zfsync.sim.freshchat import AGENT_ID

MARKER = re.compile(r"\b([zf]\d+)\b")
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5f0000000049454e44ae426082"
)


class Traffic:
    def __init__(self, demo: Demo, rng: random.Random, users: int, messages: int, groups: int = 0):
        """``groups``: Zalo group chats of three members each, written to and answered like customers (the
        daemon's config must have ``sync.groups = true``)."""
        self.demo = demo
        self.rng = rng
        self.users = [f"84{9_000_000_000_000_000 + n:017d}" for n in range(users)]
        self.members: dict[str, list[str]] = {}  # a group's contact id -> its members
        for n in range(groups):
            group_id = f"{0xF414C8F76FA586FB0000 + n:020x}"
            members = {f"85{9_000_000_000_000_000 + 3 * n + m:017d}": f"Thành viên {n}.{m}" for m in range(3)}
            demo.zalo.add_group(group_id, f"Nhóm khách sỉ {n}", members)
            self.members[group_key(group_id)] = list(members)
        self.users += list(self.members)
        self.messages = messages
        self.written: dict[str, list[str]] = {u: [] for u in self.users}  # user -> z markers in order
        self.replied: dict[str, list[str]] = {u: [] for u in self.users}  # user -> f markers in order
        self.z_count = 0
        self.f_count = 0
        self.image_replies = 0
        self.image_url = self.demo.zalo.add_media(PNG, "image/png", "photo.png")
        self.agent_image = self.demo.fc.add_media(PNG, "image/png", "reply.png")

    def customer_writes(self) -> None:
        user = self.rng.choice(self.users)
        self.z_count += 1
        marker = f"z{self.z_count}"
        kind = self.rng.choice(["text", "text", "emoji", "photo", "location", "link"])
        name = f"Khách {user[-3:]}"
        zalo = self.demo.zalo
        if is_group(user):
            self._member_writes(user, kind, marker)
        elif kind == "photo":
            zalo.add_customer_message(user, name, type="photo", url=self.image_url, description=f"ảnh {marker}")
        elif kind == "location":
            location = json.dumps({"latitude": 10.7 + self.rng.random(), "longitude": 106.6})
            zalo.add_customer_message(user, name, type="location", text=f"đây {marker}", location=location)
        elif kind == "link":
            zalo.add_customer_message(user, name, type="link", text=f"xem {marker}", links=["https://shop.vn/x"])
        elif kind == "emoji":
            zalo.add_customer_message(user, name, text=f"👍🏽 {marker} 🇻🇳")
        else:
            zalo.add_customer_message(user, name, text=f"Xin chào, tôi cần hỏi {marker}")
        self.written[user].append(marker)

    def _member_writes(self, group: str, kind: str, marker: str) -> None:
        """A member of the group writes, as a customer would."""
        member, zalo, group_id = self.rng.choice(self.members[group]), self.demo.zalo, group_id_of(group)
        if kind == "photo":
            zalo.add_group_message(group_id, member, type="photo", url=self.image_url, description=f"ảnh {marker}")
        elif kind == "location":
            location = json.dumps({"latitude": 21.0 + self.rng.random(), "longitude": 105.8})
            zalo.add_group_message(group_id, member, f"đây {marker}", type="location", location=location)
        elif kind == "link":
            zalo.add_group_message(group_id, member, f"xem {marker}", type="link", links=["https://shop.vn/x"])
        else:
            zalo.add_group_message(group_id, member, f"Cả nhóm hỏi {marker} 👍🏽")

    def agent_replies(self) -> bool:
        fc = self.demo.fc
        with fc.lock:
            # A user whose conversation is not open yet (the daemon died in between) cannot get a reply.
            conversations = {u["reference_id"][len("zalo-") :]: fc.latest_of(u["id"]) for u in fc.users.values()}
        candidates = [u for u in self.users if conversations.get(u) and self.written[u]]
        if not candidates:
            return False
        user = self.rng.choice(candidates)
        conversation = conversations[user] or ""  # a candidate has one
        self.f_count += 1
        marker = f"f{self.f_count}"
        kind = self.rng.choice(["text", "text", "text", "long", "image"])
        if kind == "long":
            text = f"{marker} " + "Chính sách đổi trả trong ba mươi ngày. " * 70  # ~2,700 characters: two sends
            fc.add_agent_message(conversation, text, actor_id=AGENT_ID)
        elif kind == "image":
            self.image_replies += 1
            parts = [{"image": {"url": self.agent_image}}, {"text": {"content": f"ảnh {marker}"}}]
            fc.add_agent_message(conversation, parts=parts, actor_id=AGENT_ID)
        else:
            fc.add_agent_message(conversation, f"Dạ, {marker} ạ", actor_id=AGENT_ID)
        self.replied[user].append(marker)
        return True

    def traffic(self, budget: int) -> None:
        """Write up to ``budget`` messages, each way, in a random interleaving."""
        for _ in range(budget):
            if self.z_count < self.messages:
                self.customer_writes()
            if self.f_count < self.messages and self.rng.random() < 0.95:
                self.agent_replies()

    def arrived(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Markers as they arrived: in FreshChat per user, and on Zalo per user, in arrival order."""
        z: dict[str, list[str]] = {u: [] for u in self.users}
        f: dict[str, list[str]] = {u: [] for u in self.users}
        for user in self.users:
            for message in self.demo.fc_messages(user):
                for part in message["message_parts"]:
                    if "text" in part:
                        z[user] += MARKER.findall(part["text"]["content"])
        with self.demo.zalo.lock:
            for sent in self.demo.zalo.sent:
                if sent["user_id"] in f:
                    f[sent["user_id"]] += [m for m in MARKER.findall(sent["text"]) if m.startswith("f")]
            for sent in self.demo.zalo.gmf.sent:  # the replies to group chats
                key = group_key(sent["group_id"])
                if key in f:
                    f[key] += [m for m in MARKER.findall(sent["text"]) if m.startswith("f")]
        return z, f
