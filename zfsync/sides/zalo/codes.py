"""What Zalo's negative ``error`` codes mean for us (research/zalo_api.md §6).

Zalo answers most errors with HTTP 200 and ``{"error": <negative int>, "message": "..."}``, so the client
classifies the code, not the status.
"""

from __future__ import annotations

from dataclasses import dataclass

from zfsync.domain.errors import AuthError, ParameterRefused, PermanentError, RateLimited, RemoteError, TransientError
from zfsync.i18n import N_
from zfsync.sides import telemetry
from zfsync.sides.zalo import permissions


@dataclass(frozen=True)
class Code:
    """One of Zalo's error codes: the error class it becomes, what it means, and what the agent is told
    when a reply fails with it ("" for the generic note)."""

    code: int
    cls: type[RemoteError]
    meaning: str
    advice: str = ""


class TokenRejected(AuthError):
    """The access token was refused; the client refreshes once and retries before giving up."""


# Each code once; the permission refusals (-212, -223) are `permissions.REFUSAL_CODES`.
# AuthError: no call succeeds until a human acts (the app, the OA, the token);
# TransientError: Zalo's own "try again later"; PermanentError: this request is refused for good.
CODES: dict[int, Code] = {
    c.code: c
    for c in (
        Code(-32, RateLimited, "the app reached its API call limit for this minute"),
        Code(-100, PermanentError, "the uploaded attachment expired"),
        Code(-200, TransientError, "Zalo could not send the message; try again later"),
        Code(-201, ParameterRefused, "a parameter is invalid"),
        Code(-204, AuthError, "the OA is disabled or deleted"),
        Code(-205, AuthError, "the OA does not exist"),
        Code(-209, AuthError, "the app is not activated"),
        Code(
            -210,
            PermanentError,
            "a parameter exceeds its limit (message or file too large)",
            N_("Zalo says the message is too large. Send it shorter, or as a smaller file."),
        ),
        Code(-211, PermanentError, "the OA is out of quota for this feature"),
        Code(
            -213,
            PermanentError,
            "the user has not followed the OA",
            N_(
                "The customer has not followed the OA, so Zalo refuses this message. Ask them to open the chat "
                "with the OA from the Zalo mobile app, or to scan the OA's QR code, then reply again."
            ),
        ),
        Code(-216, TokenRejected, "the access token is invalid"),
        Code(
            -217,
            PermanentError,
            "the user has blocked invitations from the OA",
            N_("The customer has blocked invitations from the OA, so Zalo refuses this message."),
        ),
        Code(-218, PermanentError, "the user's receiving quota is exhausted"),
        Code(-219, AuthError, "the app was removed or disabled"),
        Code(-220, TokenRejected, "the access token expired or was removed"),
        Code(
            -221,
            PermanentError,
            "the OA must be verified for this feature",
            N_("Zalo says the OA must be verified to use this feature. The OA admin must verify the OA with Zalo."),
        ),
        Code(
            -224,
            PermanentError,
            "the OA must buy or upgrade its package",
            N_("The OA's Zalo package does not include this feature. The OA admin must upgrade the package."),
        ),
        Code(
            -227,
            PermanentError,
            "the user is banned or has been offline over 45 days",
            N_("Zalo says the customer's account is banned or has been offline for over 45 days."),
        ),
        Code(
            -230,
            PermanentError,
            "the user has not interacted with the OA in the last 7 days",
            N_(
                "The customer has not written to the OA in the last 7 days, so Zalo allows no reply. "
                "The customer must write first."
            ),
        ),
        Code(
            -232,
            PermanentError,
            "the user has not interacted with the OA recently",
            N_(
                "The customer has not interacted with the OA recently, so Zalo allows no reply. "
                "The customer must write first."
            ),
        ),
        Code(-233, PermanentError, "the message type is not supported"),
        Code(
            -237,
            PermanentError,
            "the group chat is disabled (its GMF package expired)",
            N_(
                "Zalo says this group chat is disabled: its group chat package (GMF) expired or was removed. The "
                "OA admin must renew the group's package in Zalo OA Manager; until then no reply reaches the group."
            ),
        ),
        Code(-240, PermanentError, "the v2 message API is shut down"),
        Code(-242, AuthError, "the appsecret_proof is invalid"),
        Code(-244, PermanentError, "the user restricted this message type"),
        Code(-248, PermanentError, "the message violates Zalo's platform standards"),
        Code(
            -320,
            PermanentError,
            "the app must be linked to a Zalo Cloud Account to use paid features",
            N_(
                "Zalo requires this app to be linked to a Zalo Cloud Account to send this message (a paid "
                "feature). The OA admin must link the app to a Zalo Cloud Account in the Zalo developer console."
            ),
        ),
        Code(
            -321,
            PermanentError,
            "the Zalo Cloud Account linked to the app is out of money",
            N_("The Zalo Cloud Account linked to the app is out of money. The OA admin must top it up."),
        ),
        Code(
            -403,
            PermanentError,
            "the OA is not in the group",
            N_("Zalo says the OA is no longer in this group chat, so no reply can reach it."),
        ),
        # GOCLAW's client also saw these for a token Zalo no longer takes.
        Code(216, TokenRejected, "the access token is invalid"),
        Code(401, TokenRejected, "the access token is invalid"),
        Code(-401, TokenRejected, "the access token is invalid"),
    )
}
TOKEN_REJECTED = frozenset(c.code for c in CODES.values() if c.cls is TokenRejected)

# Zalo resets its per-minute limit at the next minute; waiting a full minute is always safe (the quota
# shortens it to the minute's end).
RATE_LIMIT_WAIT = 60.0
DOCUMENTED_LIMIT = 4000  # requests a minute per app (research/zalo_api.md §7); packages may allow far fewer


def error_for(code: int, message: str, *, endpoint: str, status: int | None = None) -> RemoteError:
    """Classify one Zalo error code into the zfsync hierarchy; the error carries the agent's advice."""
    if code in permissions.REFUSAL_CODES:  # what it stops depends on the endpoint's permission group
        return permissions.refusal(code, message, endpoint=endpoint, status=status)
    known = CODES.get(code)
    reason = message or (known.meaning if known else "unknown Zalo error")
    if known is not None and known.cls is RateLimited:
        telemetry.rate_limited("zalo")
        return RateLimited(
            reason, retry_after=RATE_LIMIT_WAIT, side="zalo", endpoint=endpoint, status=status, code=code
        )
    cls = known.cls if known is not None else PermanentError
    error = cls(reason, side="zalo", endpoint=endpoint, status=status, code=code)
    error.advice = known.advice if known is not None else ""
    return error
