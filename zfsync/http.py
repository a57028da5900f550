"""The one place where `requests` is called: timeouts, exception mapping and JSON decoding.

Both clients go through `call()` and then apply their provider's own rules to the decoded body. Nothing
here knows Zalo or FreshChat; nothing above the clients sees `requests`.
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
from datetime import UTC, datetime
from email.message import Message as _Headers
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from zfsync.domain import Media
from zfsync.errors import InvalidResponse, PermanentError, RateLimited, TransientError

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


def download(
    session: requests.Session, url: str, *, side: str, max_bytes: int, headers: dict[str, str] | None = None
) -> Media:
    """Fetch an attachment, streamed and capped at ``max_bytes``: a larger one is refused before it is read
    (by Content-Length) or as soon as it passes the cap, so memory stays bounded whatever the server sends."""
    endpoint = "media"
    if urlsplit(url).scheme not in ("http", "https"):
        raise PermanentError(f"not a web link: {url[:80]!r}", side=side, endpoint=endpoint)
    response = call(session, "GET", url, side=side, endpoint=endpoint, headers=headers, stream=True)
    with response:
        raise_for_server_trouble(response, side=side, endpoint=endpoint, wait=30.0)
        if response.status_code >= 400:
            raise PermanentError(f"download answered HTTP {response.status_code}", side=side, endpoint=endpoint)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise PermanentError(_too_large(int(declared), max_bytes), side=side, endpoint=endpoint, code="too_large")
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise PermanentError(_too_large(size, max_bytes), side=side, endpoint=endpoint, code="too_large")
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise TransientError(f"download broke off ({type(exc).__name__})", side=side, endpoint=endpoint) from None
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        name = _file_name(response.headers.get("Content-Disposition", ""), url, content_type)
    return Media(b"".join(chunks), content_type or mimetypes.guess_type(name)[0] or "application/octet-stream", name)


def _too_large(size: int, cap: int) -> str:
    return f"file is {size / 1e6:.1f} MB, over the {cap / 1e6:g} MB limit"


def _file_name(disposition: str, url: str, content_type: str) -> str:
    if disposition:
        header = _Headers()
        header["Content-Disposition"] = disposition
        name = header.get_filename()
        if name:
            return posixpath.basename(name)
    name = posixpath.basename(unquote(urlsplit(url).path))
    if "." not in name:
        extension = mimetypes.guess_extension(content_type) or ""
        name = (name or "attachment") + extension
    return name[-200:]  # Zalo caps file names at 200 characters
