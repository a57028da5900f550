"""The simulated group chats (GMF) of one OA: its groups, their members' messages, the OA's sends to them
and the assets they run on.

Shapes from tests/contract/recorded/gmf/ (README there names each source). Where the sources are silent,
the `Modes` of `zfsync.sim.zalo` pick the answer: ``group_mentions`` "ids" (a listing gives a mention back
as the ``[@user_id]`` it was sent as) or "names" (as ``@Name``, the member's name); ``gmf`` "on", or the
OA's refusal of every GMF call: "unverified" (-221, the OA is not verified) or "no_package" (-224).

What it checks: a group the OA does not have answers -403; a disabled group, or one whose asset's
``valid_through`` day has passed (Vietnam's days), answers -237 to a send and to a read of its messages;
a text over 2,000 characters -201; an attachment that was never uploaded -100. ``Modes.id_mismatch`` makes a
send answer an id its listings never show, as for the 1:1 sends.

Control (through `ZaloSim.control`): ``group`` (POST a group: ``group_id``, ``name``, ``status``,
``valid_through``, ``members`` as ``[{"user_id", "name"}]``), ``group_message`` (POST a member's message:
``group_id``, ``user_id``, ``name``, ``text``, ``type`` and the row's other fields), ``group_oa_message`` (OA
staff writing in the group from the Zalo app: ``group_id``, ``text``), ``group_sent`` (GET the sends).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from zfsync.sim.base import Json, Request, Response

VIETNAM = timezone(timedelta(hours=7))
GROUPS = "/v3.0/oa/group/getgroupsofoa"
RECENT = "/v3.0/oa/group/listrecentchat"
CONVERSATION = "/v3.0/oa/group/conversation"
SEND = "/v3.0/oa/group/message"
ASSETS = "/v3.0/oa/quota/group"
MEMBERS = "/v3.0/oa/group/listmember"
PATHS = frozenset({GROUPS, RECENT, CONVERSATION, SEND, ASSETS, MEMBERS})
TEXT_LIMIT = 2000
MENTION = re.compile(r"\[@(\d{1,30})\]")
# A send's attachment, as the simulator holding the uploads resolves it: (row type, url), or the refusal
Resolve = Callable[[Any], tuple[tuple[str, str] | None, Response | None]]


def gmf_error(code: int, message: str) -> Response:
    return Response(200, {"error": code, "message": message})


def _ok(data: Any) -> Response:
    return Response(200, {"data": data, "error": 0, "message": "Success"})


@dataclass
class GmfState:
    groups: dict[str, Json] = field(default_factory=dict)  # group id -> the group, its asset and members
    rows: list[Json] = field(default_factory=list)  # every group's messages, oldest first
    sent: list[Json] = field(default_factory=list)  # the OA's sends through the API, in order

    def add_group(self, body: Json) -> Json:
        group_id = str(body.get("group_id") or f"{len(self.groups) + 1:020x}")
        group = self.groups.setdefault(group_id, {"group_id": group_id, "members": {}})
        group["name"] = str(body.get("name", group.get("name", f"Nhóm {len(self.groups)}")))
        group["status"] = str(body.get("status", group.get("status", "enabled")))
        group["valid_through"] = str(body.get("valid_through", group.get("valid_through", "31/12/2099")))
        for member in body.get("members", []):
            group["members"][str(member["user_id"])] = str(member.get("name", ""))
        return {k: v for k, v in group.items() if k != "members"} | {"members": dict(group["members"])}

    def member_message(self, body: Json, message_id: str, time_ms: int) -> Json:
        """A member writes in the group (a new member joins by writing)."""
        group = self.groups[str(body["group_id"])]
        user_id = str(body["user_id"])
        name = str(body.get("name") or group["members"].get(user_id) or f"Thành viên {user_id[-4:]}")
        group["members"][user_id] = name
        extra = {k: v for k, v in body.items() if k not in ("group_id", "user_id", "name", "text", "type")}
        row = self._row(1, group, message_id, time_ms, user_id, name)
        row.update(type=str(body.get("type", "text")), message=str(body.get("text", "")), **extra)
        self.rows.append(row)
        return row

    def oa_message(self, group_id: str, text: str, oa: Json, message_id: str, time_ms: int) -> Json:
        """Someone at the OA writing in the group from the Zalo app (not through the API)."""
        row = self._row(0, self.groups[group_id], message_id, time_ms, oa["id"], oa["name"], oa.get("avatar", ""))
        row.update(type="text", message=text)
        self.rows.append(row)
        return row

    def _row(
        self, src: int, group: Json, message_id: str, time_ms: int, from_id: str, name: str, avatar: str = ""
    ) -> Json:
        avatar = avatar or f"https://s240-ava-talk.zadn.vn/{from_id}.jpg"
        return {
            "src": src,
            "time": time_ms,
            "message_id": message_id,
            "from_id": from_id,
            "from_display_name": name,
            "from_avatar": avatar,
            "group_id": group["group_id"],
        }

    def expired(self, group: Json, now_ms: int) -> bool:
        try:
            last = datetime.strptime(group["valid_through"], "%d/%m/%Y").replace(tzinfo=VIETNAM)
        except ValueError:
            return False
        return now_ms >= (last + timedelta(days=1)).timestamp() * 1000

    def handle(
        self,
        request: Request,
        now_ms: int,
        modes: tuple[str, str],
        oa: Json,
        ids: Callable[[], tuple[str, int]],
        resolve: Resolve,
        id_mismatch: bool = False,
    ) -> Response:
        """One GMF request. ``modes``: (``gmf``, ``group_mentions``); ``oa``: the OA's id, name and avatar
        (the sender of its rows); ``ids()``: a new message id and time; ``resolve``: a send's attachment."""
        feature, mentions = modes
        if feature == "unverified":
            return gmf_error(-221, "The OA needs to be verified to use this feature")
        if feature == "no_package":
            return gmf_error(-224, "The OA needs to upgrade OA Tier Package to use this feature")
        if request.path == GROUPS:
            return self._groups(request.query)
        if request.path == ASSETS:
            return self._assets()
        if request.path == SEND:
            return self._send(request, now_ms, oa, ids, resolve, id_mismatch)
        if request.path == MEMBERS:
            return self._members(request.query, now_ms, oa)
        rows = self.rows
        if request.path == CONVERSATION:
            group = self.groups.get(request.query.get("group_id", ""))
            if group is None:
                return gmf_error(-403, "OA is not in group")
            if group["status"] == "disabled" or self.expired(group, now_ms):
                return gmf_error(-237, "The group is disabled")
            rows = [r for r in rows if r["group_id"] == group["group_id"]]
        page = self._page(rows, request.query)
        if page is None:
            return gmf_error(-201, "offset or count is invalid!")
        return _ok([self._listed(row, mentions) for row in page])

    def _page(self, rows: list[Json], query: dict[str, str]) -> list[Json] | None:
        try:
            offset, count = int(query.get("offset", 0)), int(query.get("count", 5))
        except ValueError:
            return None
        if offset < 0 or count < 0:
            return None
        return rows[::-1][offset : offset + min(count, 10)]

    def _listed(self, row: Json, mentions: str) -> Json:
        if mentions != "names" or "[@" not in str(row.get("message", "")):
            return dict(row)
        members = self.groups[row["group_id"]]["members"]
        text = MENTION.sub(lambda m: f"@{members.get(m.group(1), m.group(1))}", str(row["message"]))
        return {**row, "message": text}

    def _groups(self, query: dict[str, str]) -> Response:
        listed = [
            {
                "name": g["name"],
                "avatar": "http://s120.ava.grp.talk.zdn.vn/default",
                "group_id": g["group_id"],
                "group_link": f"https://zalo.me/g/{g['group_id'][:9]}",
                "group_description": "",
                "total_member": len(g["members"]),
                "status": g["status"],
            }
            for g in self.groups.values()
        ]
        try:
            offset, count = int(query.get("offset", 0)), min(int(query.get("count", 5)), 10)
        except ValueError:
            return gmf_error(-201, "offset or count is invalid!")
        page = listed[offset : offset + count]
        return _ok({"offset": offset, "count": count, "total": len(listed), "group_count": len(listed), "groups": page})

    def _members(self, query: dict[str, str], now_ms: int, oa: Json) -> Response:
        group = self.groups.get(query.get("group_id", ""))
        if group is None:
            return gmf_error(-403, "OA is not in group")
        if group["status"] == "disabled" or self.expired(group, now_ms):
            return gmf_error(-237, "The group is disabled")
        avatar = "https://s120-ava-talk.zadn.vn/{}.jpg"
        people = [
            {"user_id": uid, "name": name, "avatar": avatar.format(uid)} for uid, name in group["members"].items()
        ]
        listed = [{"oa_id": oa["id"], "name": oa["name"], "avatar": oa.get("avatar", "")}, *people]
        page = self._page(listed[::-1], query)  # _page lists newest first: the OA stays first
        if page is None:
            return gmf_error(-201, "offset or count is invalid!")
        offset, count = int(query.get("offset", 0)), int(query.get("count", 5))
        return _ok({"offset": offset, "count": count, "total": len(listed), "member_count": len(page), "members": page})

    def _assets(self) -> Response:
        return _ok(
            [
                {
                    "product_type": "gmf10",
                    "quota_type": "sub_quota",
                    "asset_id": f"asset-{g['group_id']}",
                    "valid_through": g["valid_through"],
                    "auto_renew": False,
                    "status": "used",
                    "used_id": g["group_id"],
                }
                for g in self.groups.values()
            ]
        )

    def _send(
        self,
        request: Request,
        now_ms: int,
        oa: Json,
        ids: Callable[[], tuple[str, int]],
        resolve: Resolve,
        id_mismatch: bool = False,
    ) -> Response:
        try:
            body = request.json()
            group_id = str(body["recipient"]["group_id"])
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            return gmf_error(-201, "recipient or message is invalid!")
        group = self.groups.get(group_id)
        if group is None:
            return gmf_error(-403, "OA is not in group")
        if group["status"] == "disabled" or self.expired(group, now_ms):
            return gmf_error(-237, "The group is disabled")
        text = message.get("text", "") if isinstance(message, dict) else None
        media, problem = resolve(message)
        if problem is not None:
            return problem
        if not isinstance(text, str) or (not text and media is None):
            return gmf_error(-201, "text is invalid!")
        if len(text) > TEXT_LIMIT:
            return gmf_error(-201, "text is invalid! (over 2000 characters)")
        message_id, time_ms = ids()
        row = self._row(0, group, message_id, time_ms, oa["id"], oa["name"], oa.get("avatar", ""))
        row.update(type=media[0] if media else "text", message=text)
        if media:
            row["url"] = media[1]
        self.rows.append(row)
        self.sent.append(
            {
                "message_id": message_id,
                "group_id": group_id,
                "text": text,
                "time": time_ms,
                **({"kind": media[0], "url": media[1]} if media else {}),
            }
        )
        # With id_mismatch on, the answer names an id the listings never show (as the 1:1 sends may).
        answered = ids()[0] if id_mismatch else message_id
        self.sent[-1]["send_id"] = answered
        return _ok({"message_id": answered, "group_id": group_id})
