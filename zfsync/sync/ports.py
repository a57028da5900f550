"""What the sync core needs from each side. The real clients and the test fakes both fit these.

Every method may raise the `zfsync.domain.errors.RemoteError` family: `TransientError` (including
`InvalidResponse` and `RateLimited`), `AuthError`, `PermanentError` (including `ConversationNotLatest`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from zfsync.domain import (
    FcAgent,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    FcUser,
    FilePart,
    Json,
    Media,
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
)
from zfsync.sides.quota import Quota


class ZaloSide(Protocol):
    quota: Quota  # the one request budget of every call to Zalo

    def recent_messages(self, offset: int, count: int = 10) -> list[ZaloMessage]:
        """One page of the OA-wide feed, newest first; offsets shift as new messages arrive."""
        ...

    def conversation(self, user_id: str, offset: int, count: int = 10) -> list[ZaloMessage]:
        """One page of one user's messages with the OA, newest first."""
        ...

    def send_text(self, user_id: str, text: str, quote: str = "") -> ZaloSent:
        """Send a customer-service text of at most 2,000 characters (quoting the message ``quote``)."""
        ...

    def send_image(self, user_id: str, attachment_id: str, caption: str = "") -> ZaloSent: ...

    def send_gif(self, user_id: str, attachment_id: str, width: int, height: int) -> ZaloSent: ...

    def send_file(self, user_id: str, token: str) -> ZaloSent: ...

    def send_info_request(self, user_id: str, title: str, subtitle: str, image_url: str) -> ZaloSent:
        """The card that asks the customer to share their details with the OA."""
        ...

    def oa_id(self) -> str:
        """The OA the daemon serves ("" if Zalo does not say)."""
        ...

    def oa_avatar(self) -> str:
        """The OA's own avatar (the image of the card that asks a customer for their details)."""
        ...

    def tag_follower(self, user_id: str, tag: str) -> None: ...

    def untag_follower(self, user_id: str, tag: str) -> None: ...

    def message_quota(self, user_id: str) -> tuple[int, ZaloQuota | None]:
        """Zalo's view of a user: their last interaction (epoch ms) and the free replies left."""
        ...

    def package_quota(self) -> list[ZaloPackage]:
        """The OA's quota assets (its package's, bought, rewarded)."""
        ...

    def upload_image(self, media: Media) -> str: ...

    def upload_gif(self, media: Media) -> str: ...

    def upload_file(self, media: Media) -> str: ...

    def download(self, url: str, max_bytes: int) -> Media:
        """A customer's attachment, streamed and refused past ``max_bytes``."""
        ...

    def user_profile(self, user_id: str) -> ZaloProfile: ...

    def interacted_users(self, period: str, offset: int, count: int = 50) -> tuple[list[str], int]:
        """One page of the users who interacted in ``period`` (``user/getlist``); their ids and the total."""
        ...

    def groups(self) -> list[ZaloGroup]:
        """Every group chat the OA manages (GMF), enabled or not."""
        ...

    def group_feed(self, offset: int, count: int = 10) -> list[ZaloMessage]:
        """One page of every group's recent messages, newest first (each under its group's contact id);
        a group's own page is ``conversation`` of that id."""
        ...

    def group_members(self, group_id: str) -> list[tuple[str, str]]:
        """The people in a group chat: (user id, name), the OA itself left out."""
        ...

    def group_assets(self) -> list[ZaloGroupAsset]:
        """The OA's group chat packages, with the group each serves and until when."""
        ...

    def zns_template(self, template_id: str) -> ZnsTemplate:
        """One of the OA's ZNS templates, with its parameters (the ZNS host's errors are ``side="zns"``)."""
        ...

    def send_template(self, phone: str, template_id: str, data: dict[str, str], tracking_id: str) -> ZnsSent:
        """A ZNS template to the Zalo account of ``phone`` (84 form); it costs money: never resent blindly."""
        ...

    def zns_ratings(self, template_id: str, from_ms: int, to_ms: int) -> list[ZnsRating]:
        """Customers' answers to a rating template submitted between two times (ms), oldest first."""
        ...


class FreshChatSide(Protocol):
    quota: Quota  # the one request budget of every call to FreshChat

    def find_user(self, reference_id: str) -> FcUser | None: ...

    def create_user(self, user: FcNewUser) -> FcUser: ...

    def update_user(self, user_id: str, user: FcNewUser) -> None: ...

    def user_conversations(self, user_id: str) -> list[str]: ...

    def conversation_started(self, conversation_id: str) -> str:
        """When the conversation was created, as FreshChat's ISO time ("" if it does not say)."""
        ...

    def conversation_properties(self, conversation_id: str) -> dict[str, str]:
        """The conversation's properties (``priority``, custom ``cf_*``)."""
        ...

    def set_conversation_properties(self, conversation_id: str, properties: dict[str, str]) -> None:
        """Write custom conversation properties (``cf_*``)."""
        ...

    def conversation_assignee(self, conversation_id: str) -> str:
        """The agent the conversation is assigned to ("" if none)."""
        ...

    def create_conversation(
        self, channel_id: str, user_id: str, first: FcOutgoing, group_id: str = ""
    ) -> tuple[str, str | None]:
        """Open a conversation carrying ``first`` (assigned to ``group_id``); returns its id and the id of
        ``first`` if given."""
        ...

    def reopen(self, conversation_id: str) -> None: ...

    def post_message(self, conversation_id: str, user_id: str, message: FcOutgoing) -> str:
        """Post into a conversation; raises `ConversationNotLatest` if the user has a newer one."""
        ...

    def agent(self, agent_id: str) -> FcAgent:
        """An agent's name (their signature on replies)."""
        ...

    def message_pages(self, conversation_id: str) -> Iterator[list[FcMessage]]:
        """Pages of messages, newest first; the caller stops iterating once it has seen enough."""
        ...

    def upload_image(self, media: Media) -> str:
        """Returns the URL an ``image`` part points at."""
        ...

    def upload_file(self, media: Media) -> FilePart:
        """Returns the part that carries the uploaded file."""
        ...

    def download(self, url: str, max_bytes: int) -> Media:
        """An agent's attachment, streamed and refused past ``max_bytes``."""
        ...

    def account_configuration(self) -> Json:
        """The account's configuration: the cheapest call that proves the key and the host."""
        ...

    def channels(self) -> list[Json]:
        """The account's channels (topics), every page: each with its ``id`` and ``name``."""
        ...

    def groups(self) -> list[Json]:
        """The account's agent groups, every page: each with its ``id`` and ``name``."""
        ...
