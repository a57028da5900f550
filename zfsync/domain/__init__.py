"""Small frozen objects both API clients translate to and from.

Terminology, used the same way everywhere:
- *contact*: one Zalo user who wrote to the OA, and the FreshChat user that stands for them;
- *conversation*: the FreshChat conversation that currently carries a contact's messages;
- *message id*: the id a side gave a message; Zalo ids are strings (they can exceed 2^53);
- *direction*: ``z2f`` (customer to agent) or ``f2z`` (agent to customer);
- *cursor*: how far a side has been read, stored next to the rows it covers.

`common` holds what all share, `zalo` and `freshchat` each side's values, `rows` the outbox's kinds and
states and what the store hands out, `outbound` what zfsync writes itself, `errors` the one error
hierarchy every layer raises and classifies by. It imports nothing of zfsync
but itself: every other layer builds on it.
"""

from zfsync.domain.common import REPLACEMENT, Json, Media, json_may_hold_invalid, safe_text
from zfsync.domain.freshchat import (
    OTHER_EVENT,
    REOPENED,
    RESOLVED,
    ButtonPart,
    FcAgent,
    FcMessage,
    FcNewUser,
    FcOutgoing,
    FcUser,
    FilePart,
    GroupPart,
    ImagePart,
    OtherPart,
    Part,
    TextPart,
    VideoPart,
    part_of,
    part_payload,
    reference_id,
)
from zfsync.domain.rows import (
    F2Z,
    OPEN_STATES,
    Z2F,
    Contact,
    Conversation,
    Direction,
    FailedReply,
    HistoryImport,
    Kind,
    NewRow,
    OutboxRow,
    OwnSend,
    Route,
    SideHealth,
    Status,
)
from zfsync.domain.zalo import (
    CONVERSATION,
    FEED,
    Baseline,
    FeedCursor,
    Mark,
    RecordedRow,
    Resume,
    StoredTokens,
    ZaloContent,
    ZaloMessage,
    ZaloPackage,
    ZaloProfile,
    ZaloQuota,
    ZaloSent,
    ZaloTokens,
)

__all__ = [
    "CONVERSATION",
    "F2Z",
    "FEED",
    "OPEN_STATES",
    "OTHER_EVENT",
    "REOPENED",
    "REPLACEMENT",
    "RESOLVED",
    "Z2F",
    "Baseline",
    "ButtonPart",
    "Contact",
    "Conversation",
    "Direction",
    "FailedReply",
    "FcAgent",
    "FcMessage",
    "FcNewUser",
    "FcOutgoing",
    "FcUser",
    "FeedCursor",
    "FilePart",
    "GroupPart",
    "HistoryImport",
    "ImagePart",
    "Json",
    "Kind",
    "Mark",
    "Media",
    "NewRow",
    "OtherPart",
    "OutboxRow",
    "OwnSend",
    "Part",
    "RecordedRow",
    "Resume",
    "Route",
    "SideHealth",
    "Status",
    "StoredTokens",
    "TextPart",
    "VideoPart",
    "ZaloContent",
    "ZaloMessage",
    "ZaloPackage",
    "ZaloProfile",
    "ZaloQuota",
    "ZaloSent",
    "ZaloTokens",
    "json_may_hold_invalid",
    "part_of",
    "part_payload",
    "reference_id",
    "safe_text",
]
