"""What Zalo's negative ``error`` codes mean for us (research/zalo_api.md §6).

Zalo answers most errors with HTTP 200 and ``{"error": <negative int>, "message": "..."}``, so the client
classifies the code, not the status.
"""

from __future__ import annotations

from zfsync import telemetry
from zfsync.errors import AuthError, PermanentError, RateLimited, RemoteError, TransientError

# -216 invalid token, -220 expired or removed; GOCLAW also saw 216/401/-401 as "token invalid".
TOKEN_REJECTED = frozenset({-216, -220, 216, 401, -401})
RATE_LIMIT = frozenset({-32})
# -200 "send message failed" is Zalo's own "try again later".
RETRY_LATER = frozenset({-200})
# The app itself is misconfigured or disabled: no call can succeed until an operator acts.
APP_BROKEN = frozenset({-204, -205, -209, -212, -219, -223, -242})

MEANING = {
    -32: "the app reached its API call limit for this minute",
    -100: "the uploaded attachment expired",
    -201: "a parameter is invalid",
    -204: "the OA is disabled or deleted",
    -205: "the OA does not exist",
    -209: "the app is not activated",
    -210: "a parameter exceeds its limit (message or file too large)",
    -211: "the OA is out of quota for this feature",
    -212: "the app has not registered this API",
    -213: "the user has not followed the OA",
    -216: "the access token is invalid",
    -217: "the user has blocked invitations from the OA",
    -218: "the user's receiving quota is exhausted",
    -219: "the app was removed or disabled",
    -220: "the access token expired or was removed",
    -221: "the OA must be verified for this feature",
    -223: "the OA has not granted this API to the app",
    -224: "the OA must buy or upgrade its package",
    -227: "the user is banned or has been offline over 45 days",
    -230: "the user has not interacted with the OA in the last 7 days",
    -232: "the user has not interacted with the OA recently",
    -233: "the message type is not supported",
    -240: "the v2 message API is shut down",
    -242: "the appsecret_proof is invalid",
    -244: "the user restricted this message type",
    -248: "the message violates Zalo's platform standards",
    -320: "the app must be linked to a Zalo Cloud Account to use paid features",
    -321: "the Zalo Cloud Account linked to the app is out of money",
}

# Zalo resets its per-minute limit at the next minute; waiting a full minute is always safe (the quota
# shortens it to the minute's end).
RATE_LIMIT_WAIT = 60.0
DOCUMENTED_LIMIT = 4000  # requests a minute per app (research/zalo_api.md §7); packages may allow far fewer


class TokenRejected(AuthError):
    """The access token was refused; the client refreshes once and retries before giving up."""


def error_for(code: int, message: str, *, endpoint: str, status: int | None = None) -> RemoteError:
    """Classify one Zalo error code into the zfsync hierarchy."""
    reason = message or MEANING.get(code, "unknown Zalo error")
    if code in RATE_LIMIT:
        telemetry.rate_limited("zalo")
        return RateLimited(
            reason, retry_after=RATE_LIMIT_WAIT, side="zalo", endpoint=endpoint, status=status, code=code
        )
    cls: type[RemoteError] = PermanentError
    if code in TOKEN_REJECTED:
        cls = TokenRejected
    elif code in RETRY_LATER:
        cls = TransientError
    elif code in APP_BROKEN:
        cls = AuthError
    return cls(reason, side="zalo", endpoint=endpoint, status=status, code=code)
