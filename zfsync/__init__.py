"""zfsync: answer Zalo Official Account customers from FreshChat, by polling both APIs."""

__version__ = "0.1.0"
