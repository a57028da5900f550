"""The one error hierarchy of zfsync.

Clients turn every failure of a remote API into one of the `RemoteError` classes below, so the sync core
can decide what to do from the class alone: retry later (`TransientError`, `RateLimited`), stop calling the
side until a human acts (`AuthError`), record and move on (`PermanentError`), or treat an unreadable answer
as transient (`InvalidResponse`, which subclasses `TransientError` because a proxy or a half-deployed API
usually recovers). Messages never carry secrets: clients build them from status, code and the provider's
own text.
"""

from __future__ import annotations


class ZfsyncError(Exception):
    """Root of every error zfsync raises on purpose."""


class ConfigError(ZfsyncError):
    """The configuration is unusable; the message names the key and what it expects."""


class StoreError(ZfsyncError):
    """The SQLite store cannot be used (newer schema, unwritable file, corrupt database)."""


class Stopping(ZfsyncError):
    """The daemon is stopping: a call still waiting for its side's quota is not made. What it was part of
    ends as a crash would, and is picked up at the next start (a claimed row is reconciled first)."""


class NoRoom(ZfsyncError):
    """A call made with limited `quota.patience` found no room in its side's quota in time; it was not
    made. The caller stops what it was doing and comes back later (a poll leaves its position unmoved)."""


class RemoteError(ZfsyncError):
    """A call to Zalo or FreshChat failed.

    :param side: ``"zalo"`` or ``"freshchat"``.
    :param endpoint: the API path called, without query string or host.
    :param status: the HTTP status, if a response arrived.
    :param code: the provider's error code (Zalo's negative ``error``; FreshChat's ``status`` constant).
    :param reason: the provider's own message, or ours when there was none.
    """

    def __init__(
        self,
        reason: str,
        *,
        side: str,
        endpoint: str,
        status: int | None = None,
        code: int | str | None = None,
    ) -> None:
        self.reason = reason
        self.side = side
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.advice = ""  # what the agent is told when a reply fails with this error (the client knows)
        super().__init__(self.describe())

    def describe(self) -> str:
        bits = [f"{self.side} {self.endpoint}"]
        if self.status is not None:
            bits.append(f"HTTP {self.status}")
        if self.code is not None:
            bits.append(f"code {self.code}")
        return f"{', '.join(bits)}: {self.reason}"


class TransientError(RemoteError):
    """Network failure, timeout, 5xx: the same call may succeed later."""


class InvalidResponse(TransientError):
    """The answer could not be understood (HTML instead of JSON, truncated body, missing fields)."""


class RateLimited(TransientError):
    """The provider asked us to slow down; ``retry_after`` is in seconds, ``explicit_wait`` says whether the
    provider said so itself (Retry-After, X-RateLimit-Reset) or it is a default."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float,
        side: str,
        endpoint: str,
        status: int | None = None,
        code: int | str | None = None,
        explicit_wait: bool = False,
    ) -> None:
        self.retry_after = retry_after
        self.explicit_wait = explicit_wait
        super().__init__(reason, side=side, endpoint=endpoint, status=status, code=code)


class AuthError(RemoteError):
    """Credentials are missing, invalid or expired beyond repair: a human must act."""


class PermanentError(RemoteError):
    """The provider refused this request for good (bad recipient, payload, quota, billing)."""


class ParameterRefused(PermanentError):
    """The provider refused a parameter of this request (Zalo's -201 family): another value may pass, for
    instance a quote under another of the message's ids, or no quote at all."""


class PermissionMissing(PermanentError):
    """The OA has not granted the app one of Zalo's permission groups (``permission``, a key of
    `zfsync.sides.zalo.permissions.GROUPS`): only the calls that need that group fail; everything else goes on.
    Raised without a request while the refusal is remembered (``remembered``)."""

    def __init__(
        self,
        reason: str,
        *,
        side: str,
        endpoint: str,
        permission: str,
        status: int | None = None,
        code: int | str | None = None,
        remembered: bool = False,
    ) -> None:
        self.permission = permission
        self.remembered = remembered
        super().__init__(reason, side=side, endpoint=endpoint, status=status, code=code)


class ConversationNotLatest(PermanentError):
    """FreshChat refused a user message because the user has a newer conversation."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (database drivers write several), or its class when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
