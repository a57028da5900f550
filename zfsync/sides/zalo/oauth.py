"""Zalo OAuth v4 for an Official Account: permission URL with PKCE, code and refresh-token grants, and a
token keeper that refreshes ahead of expiry.

Facts that shape this (research/zalo_api.md §5): access tokens live 25 h and ``expires_in`` arrives as a
string; refresh tokens are single-use and rotate on every refresh, so the new pair is persisted before it
is used and refreshes are single-flight; OAuth errors usually arrive with HTTP 200.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol
from urllib.parse import urlencode

import requests

from zfsync.domain import StoredTokens, ZaloTokens
from zfsync.domain.errors import AuthError, InvalidResponse, RemoteError, TransientError
from zfsync.sides import http
from zfsync.sides.priority import Priority
from zfsync.sides.quota import Quota

TOKEN_PATH = "/v4/oa/access_token"
# The only answers that mean "this refresh token will never work again": -118 invalid_grant and -14014
# invalid refresh token, the two goclaw's live-tested client escalates. Every other refusal (another code,
# a 5xx, a timeout, an HTML page) may pass, so it is retried while the access token still works.
REFRESH_TOKEN_DEAD = frozenset({-118, -14014})
# The token endpoint may also refuse with words alone (``error_name``, ``error_reason``, ``error_description``,
# or an RFC 6749 ``error`` string), even with HTTP 200 (tests/contract/recorded/README.md). Those that name a
# dead or used refresh token (or the grant) mean the same; any other words stay transient.
DEAD_WORDS = re.compile(
    r"invalid_grant|refresh[ _-]?token.*\b(invalid|expired|used|revoked|not found)\b"
    r"|\b(invalid|expired|used|revoked)\b.*refresh[ _-]?token",
    re.IGNORECASE | re.DOTALL,
)
REFRESH_BACKOFF = (30.0, 1800.0)  # seconds between failed refresh attempts: first, and the cap
PERMISSION_PATH = "/v4/oa/permission"
DEFAULT_EXPIRES_IN = 90_000.0  # 25 h, what Zalo documents when a response omits the field
REFRESH_MARGIN = 5 * 3600.0  # refresh at ~20 h of 25, leaving hours to recover from a failing refresh


def new_pkce_pair() -> tuple[str, str]:
    """A (verifier, S256 challenge) pair; Zalo wants base64url without padding of the raw digest."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def permission_url(oauth_url: str, app_id: str, redirect_uri: str, challenge: str, state: str) -> str:
    query = urlencode({"app_id": app_id, "redirect_uri": redirect_uri, "code_challenge": challenge, "state": state})
    return f"{oauth_url}{PERMISSION_PATH}?{query}"


class ZaloOAuth:
    """The token endpoint. Raises `AuthError` for a refused grant, `TransientError` for the rest."""

    def __init__(
        self,
        oauth_url: str,
        app_id: str,
        app_secret: str,
        session: requests.Session | None = None,
        quota: Quota | None = None,
    ):
        self.oauth_url = oauth_url
        self.app_id = app_id
        self._secret = app_secret
        self._session = session or http.new_session()
        self._quota = quota  # the app's Zalo budget: a refresh goes first, with the sends

    def exchange_code(self, code: str, verifier: str) -> ZaloTokens:
        form = {"code": code, "app_id": self.app_id, "grant_type": "authorization_code"}
        if verifier:
            form["code_verifier"] = verifier
        return self._grant(form)

    def redeem_refresh_token(self, refresh_token: str) -> ZaloTokens:
        return self._grant({"refresh_token": refresh_token, "app_id": self.app_id, "grant_type": "refresh_token"})

    def _grant(self, form: dict[str, str]) -> ZaloTokens:
        """Raises `AuthError` only for a grant refused for good (`REFRESH_TOKEN_DEAD`, or a bad code in
        the code grant); every other failure is a `TransientError`."""
        ep = TOKEN_PATH
        if self._quota is not None:
            self._quota.acquire(Priority.SEND)
        response = http.call(
            self._session,
            "POST",
            self.oauth_url + ep,
            side="zalo",
            endpoint=ep,
            data=form,
            headers={"secret_key": self._secret},
        )
        http.raise_for_server_trouble(response, side="zalo", endpoint=ep, wait=60.0)
        body = http.json_body(response, side="zalo", endpoint=ep)
        if not isinstance(body, dict):
            raise InvalidResponse("token answer is not an object", side="zalo", endpoint=ep)
        code = body.get("error")
        if (code not in (None, 0, "0")) or response.status_code >= 400 or not body.get("access_token"):
            words = [body.get(k) for k in ("message", "error_description", "error_reason", "error_name")]
            texts = [str(w) for w in words if isinstance(w, str) and w.strip()]
            if isinstance(code, str) and _code_number(code) is None:
                texts.append(code)  # an RFC 6749 error string, such as "invalid_grant"
            reason = texts[0] if texts else "grant refused"
            dead = _code_number(code) in REFRESH_TOKEN_DEAD or any(DEAD_WORDS.search(t) for t in texts)
            refused_for_good = dead or form["grant_type"] == "authorization_code"
            cls = AuthError if refused_for_good else TransientError
            raise cls(reason, side="zalo", endpoint=ep, status=response.status_code, code=code)
        if not body.get("refresh_token"):
            raise InvalidResponse("token answer has no refresh_token", side="zalo", endpoint=ep)
        try:
            expires_in = float(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        return ZaloTokens(str(body["access_token"]), str(body["refresh_token"]), expires_in)


def _code_number(code: object) -> int | None:
    try:
        return int(str(code))
    except ValueError:
        return None


class TokenStore(Protocol):
    def load_tokens(self) -> StoredTokens | None: ...

    def save_tokens(self, tokens: ZaloTokens, now: float) -> None: ...

    def mark_tokens_dead(self, reason: str) -> None: ...

    def refreshing(self) -> AbstractContextManager[None]:
        """Held while a refresh runs: no other daemon refreshes the same tokens meanwhile, and what is
        saved inside is stored when it ends."""
        ...


FIX_HINT = "run `zfsync auth zalo --refresh-token TOKEN` (or `zfsync auth zalo` for a new authorisation)"


class TokenKeeper:
    """Hands out a valid access token, refreshing ahead of expiry, once at a time across threads."""

    def __init__(
        self,
        oauth: ZaloOAuth,
        store: TokenStore,
        clock: Callable[[], float],
        monotonic: Callable[[], float] | None = None,
    ):
        self._oauth = oauth
        self._store = store
        self._clock = clock  # wall time: expiry is stored as one
        self._monotonic = monotonic or clock  # the refresh backoff
        self._lock = threading.Lock()
        self._failures = 0  # refreshes failed in a row, transiently
        self._retry_at = float("-inf")  # no refresh before this, on the monotonic clock

    def access_token(self) -> str:
        stored = self._usable()
        now = self._clock()
        if stored.expires_at - now > REFRESH_MARGIN:
            return stored.access_token
        if self._monotonic() < self._retry_at and stored.expires_at > now:
            return stored.access_token  # the last refresh failed moments ago; the token still works
        try:
            return self.refresh(stale=stored.access_token)
        except TransientError:
            if stored.expires_at > self._clock():
                return stored.access_token  # still valid: try the refresh again after the backoff
            raise

    def refresh(self, stale: str) -> str:
        """Redeem the refresh token unless another thread (or daemon) already replaced ``stale``."""
        with self._lock:
            with self._store.refreshing():
                outcome = self._refresh(stale)
            if isinstance(outcome, Exception):
                raise outcome  # raised once the store's lock is let go, and a dead token is noted
            return outcome

    def _refresh(self, stale: str) -> str | RemoteError:
        """The refresh itself, inside the store's lock; a failure is returned, to be raised outside it
        (on PostgreSQL the lock is a transaction, which an exception would roll back)."""
        try:
            stored = self._usable()
        except AuthError as exc:
            return exc
        fresh_enough = stored.expires_at - self._clock() > REFRESH_MARGIN
        if stored.access_token != stale and fresh_enough:
            return stored.access_token
        if self._monotonic() < self._retry_at and stored.expires_at <= self._clock():
            return TransientError(
                "the token endpoint failed a moment ago; retrying after a pause", side="zalo", endpoint=TOKEN_PATH
            )
        try:
            tokens = self._oauth.redeem_refresh_token(stored.refresh_token)
        except TransientError as exc:
            self._failures += 1
            first, cap = REFRESH_BACKOFF
            self._retry_at = self._monotonic() + min(cap, first * 2 ** (self._failures - 1))
            return exc
        except AuthError as exc:
            self._store.mark_tokens_dead(f"refresh refused: {exc.reason}")
            return AuthError(
                f"the Zalo refresh token was refused ({exc.reason}): {FIX_HINT}",
                side="zalo",
                endpoint=exc.endpoint,
                status=exc.status,
                code=exc.code,
            )
        # Single-use refresh tokens: the new pair must be stored before anything uses it.
        self._store.save_tokens(tokens, self._clock())
        self._failures, self._retry_at = 0, float("-inf")
        return tokens.access_token

    def _usable(self) -> StoredTokens:
        stored = self._store.load_tokens()
        if stored is None:
            raise AuthError(f"no Zalo token is stored: {FIX_HINT}", side="zalo", endpoint=TOKEN_PATH)
        if stored.dead_reason:
            raise AuthError(f"{stored.dead_reason}: {FIX_HINT}", side="zalo", endpoint=TOKEN_PATH)
        return stored
