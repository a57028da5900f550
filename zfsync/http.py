"""The one place where `requests` is called: timeouts, exception mapping and JSON decoding.

Both clients go through `call()` and then apply their provider's own rules to the decoded body. Nothing
here knows Zalo or FreshChat; nothing above the clients sees `requests`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from zfsync.errors import InvalidResponse, RateLimited, TransientError

TIMEOUT = (5.0, 30.0)  # connect, read: a poll that hangs must not stall its job for minutes
USER_AGENT = "zfsync/0.1"


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def call(
    session: requests.Session, method: str, url: str, *, side: str, endpoint: str, **kwargs: Any
) -> requests.Response:
    """Perform one request; network failures become `TransientError`, never a `requests` exception."""
    kwargs.setdefault("timeout", TIMEOUT)
    try:
        return session.request(method, url, **kwargs)
    except requests.Timeout:
        raise TransientError("timed out", side=side, endpoint=endpoint) from None
    except requests.ConnectionError as exc:
        raise TransientError(f"connection failed ({type(exc).__name__})", side=side, endpoint=endpoint) from None
    except requests.RequestException as exc:
        raise TransientError(f"request failed ({type(exc).__name__})", side=side, endpoint=endpoint) from None


def json_body(response: requests.Response, *, side: str, endpoint: str) -> Any:
    """Decode a JSON body, refusing HTML (a wrong host or a proxy page) and truncated JSON."""
    content_type = response.headers.get("Content-Type", "")
    text = response.text
    if "html" in content_type.lower() or text.lstrip()[:1] == "<":
        raise InvalidResponse(
            "answered with HTML instead of JSON: check the API URL",
            side=side,
            endpoint=endpoint,
            status=response.status_code,
        )
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidResponse(
            f"answered with a body that is not JSON ({len(text)} bytes)",
            side=side,
            endpoint=endpoint,
            status=response.status_code,
        ) from None


def retry_after(response: requests.Response, default: float) -> float:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), else ``default``."""
    value = response.headers.get("Retry-After")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_server_trouble(response: requests.Response, *, side: str, endpoint: str, wait: float) -> None:
    """429 and 5xx mean "not now" on both APIs, whatever the body says; ``wait`` is the default pause."""
    if response.status_code == 429:
        raise rate_limited(response, side=side, endpoint=endpoint, default=wait)
    if response.status_code >= 500:
        raise TransientError("server error", side=side, endpoint=endpoint, status=response.status_code)


def rate_limited(response: requests.Response, *, side: str, endpoint: str, default: float) -> RateLimited:
    return RateLimited(
        "rate limited",
        retry_after=retry_after(response, default),
        side=side,
        endpoint=endpoint,
        status=response.status_code,
    )
