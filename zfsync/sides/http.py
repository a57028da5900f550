"""The one place where `requests` is called: deadlines, size caps, exception mapping and JSON decoding.

Both clients go through `call()` and then apply their provider's own rules to the decoded body. Nothing
here knows Zalo or FreshChat; nothing above the clients sees `requests`.

Every response is read under an overall deadline and a size cap, not only a per-read timeout: a server
that drips a byte every few seconds, or answers without end, costs a bounded time and memory. Every
decoded body has its invalid code points (lone UTF-16 surrogates, which JSON allows) replaced by U+FFFD,
so nothing above can fail to store or send a text.
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message as _Headers
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import structlog
from requests.adapters import HTTPAdapter

from zfsync.domain import Media, json_may_hold_invalid, safe_text
from zfsync.domain.errors import InvalidResponse, PermanentError, RateLimited, Stopping, TransientError
from zfsync.log import Throttle
from zfsync.sides import telemetry

log = structlog.get_logger("zfsync.http")
_capped = Throttle(window=600.0)  # a header a server keeps sending is told once every ten minutes

TIMEOUT = (5.0, 20.0)  # connect, and the longest silence while reading
DEADLINE = 60.0  # seconds for a whole API call, body included
MAX_BODY = 4_000_000  # bytes: no API answer zfsync reads comes near this (a page of 50 messages is ~50 kB)
DOWNLOAD_DEADLINE = 180.0  # seconds for one attachment (25 MB at a slow 150 kB/s)
USER_AGENT = "zfsync/0.1"
POOL_SIZE = 32  # connections kept per host: both lanes' workers, the catch-up readers and the polls at once

_stopping = threading.Event()  # set once, when the daemon stops: transfers end at their next piece


class _Session(requests.Session):
    """A session that reads the environment (proxies, ``no_proxy``, a CA bundle) once per host, not at
    every request: it cannot change while the process runs, and reading it was a third of an idle
    request's CPU."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if proxies or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (*urlsplit(str(url))[:2], stream, verify, cert)
        found = self._environment.get(key)
        if found is None:
            found = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environment) < 256:  # a host per CDN node: a handful, but never unbounded
                self._environment[key] = found
        return {**found, "proxies": dict(found["proxies"])}


def new_session() -> requests.Session:
    session = _Session()
    session.headers["User-Agent"] = USER_AGENT
    # requests' default pool keeps 10 connections a host and warns each time it drops one beyond them.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def stop_transfers() -> None:
    """The process is stopping: every answer still arriving is abandoned at its next piece (`Stopping`),
    so a slow download does not hold the stop; what it was for is taken up again at the next start."""
    _stopping.set()


def call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    side: str,
    endpoint: str,
    deadline: float | None = None,
    max_bytes: int | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Perform one request and read its whole body within ``deadline`` seconds (default `DEADLINE`) and
    ``max_bytes`` (default `MAX_BODY`); network failures become `TransientError`, never a `requests`
    exception."""
    kwargs.setdefault("timeout", TIMEOUT)
    give_up_at = time.monotonic() + (DEADLINE if deadline is None else deadline)
    max_bytes = MAX_BODY if max_bytes is None else max_bytes
    try:
        response = session.request(method, url, stream=True, **kwargs)
    except requests.Timeout:
        telemetry.request(side, endpoint, "timeout")
        raise TransientError("timed out", side=side, endpoint=endpoint) from None
    except requests.ConnectionError as exc:
        telemetry.request(side, endpoint, "connection")
        raise TransientError(f"connection failed ({type(exc).__name__})", side=side, endpoint=endpoint) from None
    except requests.RequestException as exc:
        telemetry.request(side, endpoint, "connection")
        raise TransientError(f"request failed ({type(exc).__name__})", side=side, endpoint=endpoint) from None
    try:
        with response:
            body = b"".join(_chunks(response, give_up_at, max_bytes, side, endpoint))
    except PermanentError:
        telemetry.request(side, endpoint, "too_large")
        raise
    except TransientError:
        telemetry.request(side, endpoint, "deadline")
        raise
    status = response.status_code
    telemetry.request(side, endpoint, "ok" if status < 400 else f"http_{status // 100}xx")
    response._content = body
    response._content_consumed = True
    return response


def _chunks(response: requests.Response, give_up_at: float, max_bytes: int, side: str, endpoint: str) -> Any:
    """The body as it arrives, stopped at the deadline or the cap (checked as each piece arrives)."""
    if response.raw is None:  # served in-process: the body is already here
        content = response._content or b""
        if len(content) > max_bytes:
            raise PermanentError(too_large(len(content), max_bytes), side=side, endpoint=endpoint, code="too_large")
        yield content
        return
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PermanentError(too_large(int(declared), max_bytes), side=side, endpoint=endpoint, code="too_large")
    size = 0
    try:
        while True:
            chunk = response.raw.read1(64 * 1024)
            if not chunk:
                return
            size += len(chunk)
            if size > max_bytes:
                raise PermanentError(too_large(size, max_bytes), side=side, endpoint=endpoint, code="too_large")
            if _stopping.is_set():
                raise Stopping("the daemon is stopping")
            if time.monotonic() > give_up_at:
                raise TransientError(
                    f"answer still arriving after the deadline ({size} bytes so far)", side=side, endpoint=endpoint
                )
            yield chunk
    except (requests.RequestException, OSError, ValueError) as exc:
        raise TransientError(f"answer broke off ({type(exc).__name__})", side=side, endpoint=endpoint) from None
    except Exception as exc:  # urllib3's own errors (protocol, decoding) are a broken answer too
        if type(exc).__module__.startswith("urllib3"):
            raise TransientError(f"answer broke off ({type(exc).__name__})", side=side, endpoint=endpoint) from None
        raise


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
        decoded = json.loads(text)
    except ValueError:
        raise InvalidResponse(
            f"answered with a body that is not JSON ({len(text)} bytes)",
            side=side,
            endpoint=endpoint,
            status=response.status_code,
        ) from None
    # Walking every value of every answer was a sixth of an idle request's CPU; almost none needs it.
    return safe_text(decoded) if json_may_hold_invalid(text) else decoded


def retry_after(response: requests.Response, default: float, side: str = "") -> float:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date, at most `MAX_SERVER_WAIT`), else
    ``default``."""
    value = response.headers.get("Retry-After")
    if not value:
        return default
    seconds = _number(value)
    if seconds is None:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return default
    return capped_wait(max(0.0, seconds), side, "Retry-After")


@dataclass(frozen=True)
class RateHeaders:
    """What a side's ``X-RateLimit-*`` headers said; None where a header was missing or unreadable."""

    limit: int | None
    remaining: int | None
    reset_in: float | None  # seconds until the window resets


RESET_AS_SECONDS = 86_400 * 365  # below this, X-RateLimit-Reset is seconds to wait, not a Unix time
RESET_AS_MS = 1e11  # at or above this, a Unix time in milliseconds (in seconds it would be the year 5138)
MAX_SERVER_WAIT = 3600.0  # the longest wait a server may name; beyond it, a misread header or a bug


def rate_headers(response: requests.Response, side: str = "") -> RateHeaders:
    """Zalo sends ``X-RateLimit-Limit`` and ``X-RateLimit-Remain``; FreshChat's swagger names ``-Remaining``
    and ``-Reset``, "a Unix timestamp". ``-Reset`` is read as whichever is plausible: seconds to wait (a
    small value, as many APIs send), a Unix time in seconds, or one in milliseconds. Both spellings are read
    from both sides."""
    headers = response.headers
    remaining = headers.get("X-RateLimit-Remaining", headers.get("X-RateLimit-Remain"))
    reset = _number(headers.get("X-RateLimit-Reset"))
    if reset is not None:
        now = datetime.now(UTC).timestamp()
        if reset >= RESET_AS_MS:
            reset = reset / 1000 - now
        elif reset >= RESET_AS_SECONDS:
            reset -= now
        reset = capped_wait(max(0.0, reset), side, "X-RateLimit-Reset")
    limit = _number(headers.get("X-RateLimit-Limit"))
    left = _number(remaining)
    return RateHeaders(int(limit) if limit is not None else None, int(left) if left is not None else None, reset)


def capped_wait(seconds: float, side: str, header: str) -> float:
    """A wait a server named, at most `MAX_SERVER_WAIT`: a side must never be parked for days by one header."""
    if seconds <= MAX_SERVER_WAIT:
        return seconds
    key = (side, header)
    repeats = _capped.repeats(key)
    if _capped.first(key):
        log.warning(
            "server_wait_capped",
            side=side,
            header=header,
            named=round(seconds),
            capped_to=MAX_SERVER_WAIT,
            repeats=repeats,
        )
    return MAX_SERVER_WAIT


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def raise_for_server_trouble(response: requests.Response, *, side: str, endpoint: str, wait: float) -> None:
    """429 and 5xx mean "not now" on both APIs, whatever the body says; ``wait`` is the default pause."""
    if response.status_code == 429:
        raise rate_limited(response, side=side, endpoint=endpoint, default=wait)
    if response.status_code >= 500:
        raise TransientError("server error", side=side, endpoint=endpoint, status=response.status_code)


def rate_limited(response: requests.Response, *, side: str, endpoint: str, default: float) -> RateLimited:
    telemetry.rate_limited(side)
    reset = rate_headers(response, side).reset_in
    explicit = bool(response.headers.get("Retry-After")) or reset is not None
    wait = max(1.0, retry_after(response, reset if reset is not None else default, side))  # never spin on a refusal
    return RateLimited(
        "rate limited",
        retry_after=wait,
        side=side,
        endpoint=endpoint,
        status=response.status_code,
        explicit_wait=explicit,
    )


def download(
    session: requests.Session, url: str, *, side: str, max_bytes: int, headers: dict[str, str] | None = None
) -> Media:
    """Fetch an attachment, streamed and capped at ``max_bytes``: a larger one is refused before it is read
    (by Content-Length) or as soon as it passes the cap, so memory stays bounded whatever the server sends."""
    endpoint = "media"
    if urlsplit(url).scheme not in ("http", "https"):
        raise PermanentError(f"not a web link: {url[:80]!r}", side=side, endpoint=endpoint)
    response = call(
        session,
        "GET",
        url,
        side=side,
        endpoint=endpoint,
        headers=headers,
        deadline=DOWNLOAD_DEADLINE,
        max_bytes=max_bytes,
    )
    raise_for_server_trouble(response, side=side, endpoint=endpoint, wait=30.0)
    if response.status_code >= 400:
        raise PermanentError(f"download answered HTTP {response.status_code}", side=side, endpoint=endpoint)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    name = _file_name(response.headers.get("Content-Disposition", ""), url, content_type)
    return Media(response.content, content_type or mimetypes.guess_type(name)[0] or "application/octet-stream", name)


def too_large(size: int, cap: int) -> str:
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
