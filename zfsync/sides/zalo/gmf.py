"""Zalo's group chats (GMF, official docs ``official-account/nhom-chat-gmf/``): the OA's groups, their
messages and the assets they run on, read into domain values; sends reuse the 1:1 message shapes with
``recipient.group_id`` (tests/contract/recorded/gmf/). The GMF pages pass their query as plain
parameters, not the ``data`` JSON of the 1:1 listings."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog

from zfsync.domain import Json, ZaloContent, ZaloGroup, ZaloGroupAsset, ZaloMessage, ZaloSent, group_key
from zfsync.domain.errors import InvalidResponse
from zfsync.log import Throttle
from zfsync.sides.zalo import wire

log = structlog.get_logger("zfsync.zalo")
_malformed = Throttle()

GROUPS = "/v3.0/oa/group/getgroupsofoa"
RECENT = "/v3.0/oa/group/listrecentchat"
CONVERSATION = "/v3.0/oa/group/conversation"
SEND = "/v3.0/oa/group/message"
ASSETS = "/v3.0/oa/quota/group"
MEMBERS = "/v3.0/oa/group/listmember"
GROUP_FEED = "group_feed"  # a row's listing: the OA-wide recent group messages
GROUP_CONVERSATION = "group_conversation"  # one group's own listing


def groups_of(data: Any) -> tuple[list[ZaloGroup], int]:
    """One page of ``getgroupsofoa``: the groups with an id, and the total Zalo counts."""
    if not isinstance(data, dict):
        raise InvalidResponse("getgroupsofoa has no data object", side="zalo", endpoint=GROUPS)
    raw = data.get("groups")
    found = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or item.get("group_id") in (None, ""):
            continue
        status = wire.text_of(item.get("status")).strip().lower()
        found.append(
            ZaloGroup(
                group_id=str(item["group_id"]),
                name=wire.text_of(item.get("name")),
                avatar=wire.text_of(item.get("avatar")),
                # Only "disabled" says the OA cannot send; a status zfsync does not know is served.
                enabled=status != "disabled",
                link=wire.text_of(item.get("group_link")),
                members=wire.count(item.get("total_member")),
            )
        )
    return found, wire.int_or(data.get("total"), len(found))


def group_rows_of(data: Any, endpoint: str, listing: str) -> list[ZaloMessage]:
    """A group listing's rows, each under its group's contact id, with the member who wrote it; a row
    without its group, id or side is left out (said once an hour)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidResponse("expected a list of group messages in data", side="zalo", endpoint=endpoint)
    rows = []
    for raw in data:
        row = group_row_of(raw, listing) if isinstance(raw, dict) else None
        if row is None:
            keys = sorted(raw) if isinstance(raw, dict) else None
            if _malformed.first((endpoint, str(keys))):
                log.warning("zalo_group_row_malformed", endpoint=endpoint, keys=keys)
            continue
        rows.append(row)
    wire.fill_missing_times(rows)
    return rows


def group_row_of(raw: Json, listing: str) -> ZaloMessage | None:
    from_oa = wire.side_of(raw)
    if from_oa is None or raw.get("group_id") in (None, "") or not raw.get("message_id"):
        return None
    content = wire.content_of(raw)
    if not from_oa:
        author = wire.text_of(raw.get("from_id"))
        content = _authored(content, author, wire.text_of(raw.get("from_display_name")))
    return ZaloMessage(
        message_id=str(raw["message_id"]),
        user_id=group_key(str(raw["group_id"])),
        from_oa=from_oa,
        time_ms=wire.int_or(raw.get("time"), -1),
        content=content,
        listing=listing,
    )


def _authored(content: ZaloContent, author_id: str, name: str) -> ZaloContent:
    return replace(content, author_id=author_id, author_name=name.strip() or author_id)


def members_of(data: Any) -> tuple[list[tuple[str, str]], int]:
    """One page of ``listmember``: the people in the group (user id, name; the OA itself left out), and
    how many Zalo counts in all."""
    if not isinstance(data, dict):
        raise InvalidResponse("listmember has no data object", side="zalo", endpoint=MEMBERS)
    raw = data.get("members")
    items = [m for m in raw if isinstance(m, dict)] if isinstance(raw, list) else []
    people = [(str(m["user_id"]), wire.text_of(m.get("name"))) for m in items if m.get("user_id") not in (None, "")]
    return people, wire.int_or(data.get("total"), len(items))


def assets_of(data: Any) -> list[ZaloGroupAsset]:
    """``quota/group``: the OA's GMF assets, each with the group it serves."""
    items = data if isinstance(data, list) else []
    return [
        ZaloGroupAsset(
            product=wire.text_of(a.get("product_type")),
            valid_through=wire.day(a.get("valid_through")),
            group_id=wire.text_of(a.get("used_id")),
            status=wire.text_of(a.get("status")),
        )
        for a in items
        if isinstance(a, dict)
    ]


def sent_of(data: Any) -> str:
    """A group send's answer: the message's id (no quota: a group runs on its own asset)."""
    if not isinstance(data, dict) or not data.get("message_id"):
        raise InvalidResponse("group send answer has no message_id", side="zalo", endpoint=SEND)
    return str(data["message_id"])


PAGE = 10  # rows a listing call: the docs' own example asks 10 (their default is 5)
GROUP_PAGE_CAP = 100  # pages of getgroupsofoa: 1,000 groups, far beyond any OA's


class GroupChats:
    """The group part of the Zalo side (`zfsync.sync.ports.ZaloSide`): the client's own requests, with
    the GMF endpoints' plain query parameters."""

    def _request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        raise NotImplementedError  # the client's

    def groups(self) -> list[ZaloGroup]:
        """Every group the OA manages, enabled or not."""
        found: list[ZaloGroup] = []
        for number in range(GROUP_PAGE_CAP):
            data = self._request("GET", GROUPS, params={"offset": number * PAGE, "count": PAGE})
            page, total = groups_of(data)
            found.extend(page)
            if not page or len(found) >= total:
                break
        unique = {g.group_id: g for g in found}  # offsets may shift while a group is created
        return list(unique.values())

    def group_feed(self, offset: int, count: int = PAGE) -> list[ZaloMessage]:
        """One page of the recent messages of every group, newest first."""
        data = self._request("GET", RECENT, params={"offset": offset, "count": min(count, PAGE)})
        return group_rows_of(data, RECENT, GROUP_FEED)

    def group_conversation(self, group_id: str, offset: int, count: int = PAGE) -> list[ZaloMessage]:
        params = {"group_id": group_id, "offset": offset, "count": min(count, PAGE)}
        return group_rows_of(self._request("GET", CONVERSATION, params=params), CONVERSATION, GROUP_CONVERSATION)

    def group_members(self, group_id: str) -> list[tuple[str, str]]:
        """The group's members (user id, name), every page."""
        found: list[tuple[str, str]] = []
        for number in range(GROUP_PAGE_CAP):
            params = {"group_id": group_id, "offset": number * PAGE, "count": PAGE}
            page, total = members_of(self._request("GET", MEMBERS, params=params))
            found.extend(page)
            if not page or number * PAGE + PAGE >= total:
                break
        return list(dict(found).items())

    def group_assets(self) -> list[ZaloGroupAsset]:
        """The OA's GMF assets, with the group each serves and until when."""
        return assets_of(self._request("POST", ASSETS, json_body={"quota_owner": "OA"}))

    def send_to_group(self, group_id: str, message: Json) -> ZaloSent:
        data = self._request("POST", SEND, json_body={"recipient": {"group_id": group_id}, "message": message})
        return ZaloSent(sent_of(data), None)
