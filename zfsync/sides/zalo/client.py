"""Zalo OA Open API: HTTP in, `ZaloMessage` and friends out (research/zalo_api.md).

Reads are documented at v2.0, sends and user APIs at v3.0. Every call carries the bare ``access_token``
header. Errors arrive as ``{"error": <negative>, "message": ...}`` usually with HTTP 200; `codes.error_for`
classifies them. A rejected token is refreshed once and the call retried once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
import structlog

from zfsync.domain import (
    CONVERSATION,
    FEED,
    Json,
    Media,
    ZaloMessage,
    ZaloPackage,
    ZaloProfile,
    ZaloQuota,
    ZaloSent,
    group_id_of,
    is_group,
)
from zfsync.domain.errors import InvalidResponse, PermissionMissing
from zfsync.sides import http
from zfsync.sides.quota import Quota
from zfsync.sides.zalo import wire
from zfsync.sides.zalo.codes import DOCUMENTED_LIMIT, RATE_LIMIT_WAIT, TokenRejected
from zfsync.sides.zalo.gmf import GroupChats
from zfsync.sides.zalo.oauth import TokenKeeper
from zfsync.sides.zalo.permissions import Ledger
from zfsync.sides.zalo.zns import ZnsSending

log = structlog.get_logger("zfsync.zalo")

PAGE_SIZE = 10  # Zalo's documented maximum for listrecentchat and conversation
TEXT_LIMIT = 2000


class ZaloClient(ZnsSending, GroupChats):
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
        return wire.rows_of(data, "/v2.0/oa/listrecentchat", FEED, self._is_from_oa)

    def conversation(self, user_id: str, offset: int, count: int = PAGE_SIZE) -> list[ZaloMessage]:
        """One page of one user's (or group's) conversation with the OA, newest first."""
        if is_group(user_id):
            return self.group_conversation(group_id_of(user_id), offset, count)
        query = {"user_id": wire.user_id_param(user_id), "offset": offset, "count": min(count, PAGE_SIZE)}
        data = self._get("/v2.0/oa/conversation", query)
        return wire.rows_of(data, "/v2.0/oa/conversation", CONVERSATION, self._is_from_oa)

    def user_profile(self, user_id: str) -> ZaloProfile:
        data = self._get("/v3.0/oa/user/detail", {"user_id": user_id})
        if not isinstance(data, dict):
            raise InvalidResponse("user/detail has no data object", side="zalo", endpoint="/v3.0/oa/user/detail")
        return wire.profile_of(data, user_id)

    def message_quota(self, user_id: str) -> tuple[int, ZaloQuota | None]:
        """Zalo's view of a user: their last interaction (epoch ms, 0 if unknown) and the free replies left."""
        ep = "/v3.0/oa/quota/message"
        data = self._request("POST", ep, json_body={"user_id": user_id})
        if not isinstance(data, dict):
            raise InvalidResponse("quota/message has no data object", side="zalo", endpoint=ep)
        return wire.user_quota_of(data)

    def package_quota(self) -> list[ZaloPackage]:
        """The OA's quota assets (its package's, bought, rewarded), as ``quota/message`` lists them."""
        ep = "/v3.0/oa/quota/message"
        return wire.packages_of(self._request("POST", ep, json_body={"quota_owner": "OA"}))

    def oa_id(self) -> str:
        """The OA's own id (asked of Zalo once)."""
        if self._oa_id is None:
            self.oa_profile()
        return self._oa_id or ""

    def oa_avatar(self) -> str:
        if self._oa_avatar is None:
            self._oa_avatar = str(self.oa_profile().get("avatar") or "")
        return self._oa_avatar

    def tag_follower(self, user_id: str, tag: str) -> None:
        """Tag the user on Zalo (a tag that does not exist yet is created)."""
        self._request("POST", "/v2.0/oa/tag/tagfollower", json_body=wire.tag_body(user_id, tag))

    def untag_follower(self, user_id: str, tag: str) -> None:
        self._request("POST", "/v2.0/oa/tag/rmfollowerfromtag", json_body=wire.tag_body(user_id, tag))

    def send_info_request(self, user_id: str, title: str, subtitle: str, image_url: str) -> ZaloSent:
        """The card that asks the customer to share their details with the OA (``request_user_info``)."""
        return self._send(user_id, wire.info_request(title, subtitle, image_url))

    def interacted_users(self, period: str, offset: int, count: int = 50) -> tuple[list[str], int]:
        """One page of the users who interacted with the OA in ``period`` (``TODAY``, ``L7D``,
        ``YYYY_MM_DD:YYYY_MM_DD`` ...); returns their ids and the total."""
        ep = "/v3.0/oa/user/getlist"
        query = {"offset": offset, "count": min(count, 50), "last_interaction_period": period}
        return wire.interacted_of(self._get(ep, query), ep)

    def oa_profile(self) -> Json:
        data = wire.oa_of(self._get("/v2.0/oa/getoa", None))
        self._oa_id = wire.oa_id_of(data) or self._oa_id
        return data

    # --- sending -------------------------------------------------------------------------------------

    def send_text(self, user_id: str, text: str, quote: str = "") -> ZaloSent:
        """Send a customer-service text (at most 2,000 characters), quoting the message ``quote`` if given."""
        message: Json = {"text": text}
        if quote and not is_group(user_id):  # the group sends document no quote
            message["quote_message_id"] = quote
        return self._send(user_id, message)

    def send_image(self, user_id: str, attachment_id: str, caption: str = "") -> ZaloSent:
        element = {"media_type": "image", "attachment_id": attachment_id}
        return self._send(user_id, wire.media_template(element, caption))

    def send_gif(self, user_id: str, attachment_id: str, width: int, height: int) -> ZaloSent:
        # Zalo requires the size of a GIF, and only of a GIF.
        element = {"media_type": "gif", "attachment_id": attachment_id, "width": width, "height": height}
        return self._send(user_id, wire.media_template(element, ""))

    def send_file(self, user_id: str, token: str) -> ZaloSent:
        # The official docs and SDKs put the upload's token under payload.token (research §2.1).
        return self._send(user_id, {"attachment": {"type": "file", "payload": {"token": token}}})

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
        return wire.uploaded(self._request("POST", endpoint, files=files), keys, media.name, endpoint)

    def _send(self, user_id: str, message: Json) -> ZaloSent:
        if is_group(user_id):  # the same message shapes, to the group
            return self.send_to_group(group_id_of(user_id), message)
        ep = "/v3.0/oa/message/cs"
        data = self._request("POST", ep, json_body={"recipient": {"user_id": user_id}, "message": message})
        return wire.sent_of(data, ep)

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
        return wire.data_of(http.json_body(response, side="zalo", endpoint=endpoint), endpoint, response.status_code)

    def _is_from_oa(self, raw: Json) -> bool | None:
        """Whether a listing row is the OA's: its ``src``, or (one live report lists none) its sender."""
        side = wire.side_of(raw)
        if side is not None:
            return side
        # One live report lists no `src`: fall back to comparing the sender with the OA's own id.
        if self._oa_id is None:
            try:
                self.oa_profile()
            except PermissionMissing:
                return None  # the OA's id is not ours to read: the row cannot be placed
        if self._oa_id is None:
            return None
        return str(raw.get("from_id")) == self._oa_id
