"""Where the FreshChat writer was until it is split by job (the next commit): its names, re-exported."""

from zfsync.sync.write.freshchat_posts import (  # noqa: F401
    CustomerMessagePost,
    FreshChatWriter,
)
