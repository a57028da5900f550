"""Where the Zalo writer was until it is split by job (the next commit): its names, re-exported."""

from zfsync.sync.write.zalo_replies import ZaloRules, ZaloWriter  # noqa: F401
