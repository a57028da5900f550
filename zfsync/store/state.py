"""Small named values: Zalo's feed cursor, the routes found wrong, Zalo's tokens, each side's health."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from zfsync.domain import (
    Baseline,
    FeedCursor,
    HistoryImport,
    Mark,
    Resume,
    SideHealth,
    StoredTokens,
    ZaloTokens,
    ZnsParam,
    ZnsQuota,
    ZnsTemplate,
    safe_text,
)
from zfsync.log import remember_secret
from zfsync.store.base import columns
from zfsync.store.history import HistoryStore
from zfsync.store.prepared import Slot

MARK_KEY = "zalo.feed_hwm"  # "time|id,id,...": the top page's ids at the end of the last complete cycle
RESUME_KEY = "zalo.feed_resume"  # "offset|mark": where a capped scan reads on
BASELINE_KEY = "zalo.baseline"  # "time:id,id,...": what the feed held at the first start
OWED_KEY = "zalo.feed_owed"  # "user,user,...": the catch-up a cycle cut short still owes
ROUTE_PROBLEMS_KEY = "freshchat.route_problems"  # JSON: {route number: {"why", "at"}}, the routes found wrong
USER_LIST_CUT_KEY = "zalo.user_list_cut"  # JSON: when user/getlist last named more users than it lets be read
ZNS_QUOTA_KEY = "zns.quota"  # JSON: {"at", "daily", "remaining"}, as ZNS last said it
ZNS_TEMPLATES_KEY = "zns.templates"  # JSON: {"at", "templates"}, the OA's ZNS templates as Zalo last listed them
TOKEN_LOCK_CLASS = 0x7A67  # the first half of the advisory lock key of a tenant's token refresh
TOKEN_LOCK_WAIT = 120.0  # seconds a refresh waits for another's: beyond any token request's deadline


class StateStore(HistoryStore):
    # --- Zalo's feed cursor (three state rows, in the text forms every version has written) -------------

    def feed_cursor(self) -> FeedCursor:
        State = self.tables.State
        # One query, not four: every Zalo poll starts here.
        keys = [MARK_KEY, BASELINE_KEY, RESUME_KEY, OWED_KEY]
        query = self.prepared("feed_cursor", lambda: State.select(State.key, State.value).where(State.key.in_(keys)))
        found: dict[str, str] = dict(query.tuples())
        return FeedCursor(
            _mark(found.get(MARK_KEY)),
            _baseline(found.get(BASELINE_KEY)),
            _resume(found.get(RESUME_KEY)),
            frozenset(u for u in (found.get(OWED_KEY) or "").split(",") if u),
        )

    def start_feed(self, baseline: Baseline, mark: Mark, history: HistoryImport | None = None) -> None:
        """The first start: what the feed holds is history, and the mark stands above it; ``history``,
        the import of some of it asked for by the config, is recorded in the same transaction."""
        with self.db.atomic():
            self.set_state(BASELINE_KEY, f"{baseline.time_ms}:{','.join(sorted(baseline.ids))}")
            self.set_state(MARK_KEY, _mark_text(mark))
            if history is not None:
                self.save_history_import(history)

    def move_feed(self, mark: Mark, resume: Resume | None, owed: frozenset[str] = frozenset()) -> None:
        """Move the mark (every row above it is recorded, or belongs to a user in ``owed``), the resume
        point and the owed catch-up, in one transaction."""
        with self.db.atomic():
            self.set_state(MARK_KEY, _mark_text(mark))
            if resume is None:
                self.delete_state(RESUME_KEY)
            else:
                self.set_state(RESUME_KEY, f"{resume.offset}|{_mark_text(resume.floor)}")
            if owed:
                self.set_state(OWED_KEY, ",".join(sorted(owed)))
            else:
                self.delete_state(OWED_KEY)

    def route_problems(self) -> dict[int, tuple[str, float]]:
        """The ``[[route]]`` tables found wrong (by number): why, and since when."""
        try:
            found = json.loads(self.get_state(ROUTE_PROBLEMS_KEY) or "{}")
            return {int(n): (str(p["why"]), float(p["at"])) for n, p in found.items()}
        except (ValueError, TypeError, KeyError, AttributeError):
            return {}

    def set_route_problems(self, found: Mapping[int, str], now: float, *, add: bool = False) -> None:
        """Record the routes found wrong: all of them (a check of every route), or one more (``add``: a
        conversation FreshChat refused to open where the route says). A problem seen before keeps its time."""
        known = self.route_problems()
        kept = {n: p for n, p in known.items() if add}
        kept.update({n: (why, known[n][1] if n in known else now) for n, why in found.items()})
        value = {str(n): {"why": why, "at": at} for n, (why, at) in sorted(kept.items())}
        self.set_state(ROUTE_PROBLEMS_KEY, json.dumps(value, ensure_ascii=False))

    def note_user_list_cut(self, at: float, cut: Sequence[tuple[str, int]]) -> None:
        self.set_state(USER_LIST_CUT_KEY, json.dumps({"at": at, "periods": [[p, n] for p, n in cut]}))

    def user_list_cut(self) -> tuple[float, list[tuple[str, int]]] | None:
        """When `user/getlist` last named more users than it lets be read, and for which days."""
        try:
            found = json.loads(self.get_state(USER_LIST_CUT_KEY) or "null")
            return float(found["at"]), [(str(p), int(n)) for p, n in found["periods"]]
        except (ValueError, TypeError, KeyError):
            return None

    # --- tokens (the `TokenStore` of zfsync.zalo.oauth) ----------------------------------------------

    def load_tokens(self) -> StoredTokens | None:
        Token = self.tables.Token
        row = self.prepared("tokens", lambda: Token.select().where(Token.provider == "zalo")).first()
        if row is None:
            return None
        access, refresh = self.sealer.open(row.access_token), self.sealer.open(row.refresh_token)
        remember_secret(access, refresh)
        return StoredTokens(access, refresh, row.expires_at, row.dead_reason)

    def save_tokens(self, tokens: ZaloTokens, now: float) -> None:
        remember_secret(tokens.access_token, tokens.refresh_token)  # before the SQL that carries them is logged
        Token = self.tables.Token
        Token.insert(
            provider="zalo",
            access_token=self.sealer.seal(tokens.access_token),
            refresh_token=self.sealer.seal(tokens.refresh_token),
            expires_at=now + tokens.expires_in,
            updated_at=now,
            dead_reason="",
        ).on_conflict(conflict_target=[Token.tenant_id, Token.provider], preserve=columns(Token)).execute()

    @contextmanager
    def refreshing(self) -> Iterator[None]:
        """Held while the tokens are refreshed. On PostgreSQL, where several daemons share the store: a lock
        per tenant taken in a transaction, which the refresh's HTTP call runs inside (its lock timeout
        outlives the call's), so two daemons never spend one single-use refresh token; the new pair is
        committed when the block ends, before anything uses it. A daemon that dies meanwhile lets the
        lock go with its connection. On SQLite one daemon holds the store and its own lock suffices: a
        transaction there would hold every other write for the length of the call."""
        if not self.postgres:
            yield
            return
        with self.db.atomic():
            self.db.execute_sql(f"SET LOCAL lock_timeout = '{TOKEN_LOCK_WAIT:.0f}s'")
            self.db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (TOKEN_LOCK_CLASS, self.tenant))
            yield

    def mark_tokens_dead(self, reason: str) -> None:
        Token = self.tables.Token
        Token.update(dead_reason=reason).where(Token.provider == "zalo").execute()

    def token_expiry(self) -> tuple[float, str] | None:
        Token = self.tables.Token
        row = Token.get_or_none(Token.provider == "zalo")
        return (row.expires_at, row.dead_reason) if row else None

    # --- health --------------------------------------------------------------------------------------

    def set_health(self, side: str, state: str, now: float, error: str = "") -> None:
        Health = self.tables.Health
        if state == SideHealth.OK:
            # The common case, a good poll: one statement, the last error kept where it is.
            refreshed = self.prepared(
                "health_ok",
                lambda: Health.update(state=Slot("state"), last_ok_at=Slot("now"), updated_at=Slot("now")).where(
                    Health.side == Slot("side")
                ),
            ).execute(state=state, now=now, side=side)
            if refreshed:
                return
        row = self.prepared("side_health", lambda: Health.select().where(Health.side == Slot("side"))).first(side=side)
        last_ok = row.last_ok_at if row else None
        last_error_at = row.last_error_at if row else None
        last_error = row.last_error if row else ""
        if state == SideHealth.OK:
            last_ok = now
        else:
            last_error_at, last_error = now, safe_text(error)
        names = ("side", "state", "last_ok_at", "last_error_at", "last_error", "updated_at")
        self.prepared(
            "set_health",
            lambda: Health.insert({getattr(Health, n): Slot(n) for n in names}).on_conflict(
                conflict_target=[Health.tenant_id, Health.side], preserve=columns(Health)
            ),
        ).execute(
            side=side,
            state=state,
            last_ok_at=last_ok,
            last_error_at=last_error_at,
            last_error=last_error,
            updated_at=now,
        )

    def health(self) -> dict[str, dict[str, Any]]:
        Health = self.tables.Health
        return {row["side"]: row for row in Health.select().dicts()}

    # --- the OA's ZNS templates, as Zalo last listed them ---------------------------------------------

    def save_zns_templates(self, templates: Sequence[ZnsTemplate], now: float) -> None:
        rows = [{**vars(t), "params": [vars(p) for p in t.params]} for t in templates]
        self.set_state(ZNS_TEMPLATES_KEY, json.dumps({"at": now, "templates": rows}, ensure_ascii=False))

    def save_zns_quota(self, quota: ZnsQuota, now: float) -> None:
        self.set_state(ZNS_QUOTA_KEY, json.dumps({"at": now, "daily": quota.daily, "remaining": quota.remaining}))

    def zns_quota(self) -> tuple[float, ZnsQuota] | None:
        """The OA's ZNS quota as a send or `zfsync templates` last read it, and when; None if never."""
        raw = self.get_state(ZNS_QUOTA_KEY)
        if not raw:
            return None
        kept = json.loads(raw)
        return float(kept["at"]), ZnsQuota(kept.get("daily"), kept.get("remaining"))

    def zns_templates(self) -> tuple[float, list[ZnsTemplate]] | None:
        """When the templates were last read from Zalo, and what they were; None if never."""
        raw = self.get_state(ZNS_TEMPLATES_KEY)
        if not raw:
            return None
        kept = json.loads(raw)
        templates = [
            ZnsTemplate(**{**t, "params": tuple(ZnsParam(**p) for p in t["params"])}) for t in kept["templates"]
        ]
        return float(kept["at"]), templates


def _mark_text(mark: Mark) -> str:
    return f"{mark.time_ms}|{','.join(sorted(mark.ids))}"


def _mark(text: str | None) -> Mark | None:
    if not text:
        return None
    if "|" not in text:  # written by zfsync 0.1 as "time:id"
        time_ms, _, message_id = text.partition(":")
        return Mark(int(time_ms), frozenset({message_id} - {""}))
    time_ms, _, ids = text.partition("|")
    return Mark(int(time_ms), frozenset(i for i in ids.split(",") if i))


def _baseline(text: str | None) -> Baseline:
    if not text:
        return Baseline(0, frozenset())
    time_ms, _, ids = text.partition(":")
    return Baseline(int(time_ms), frozenset(i for i in ids.split(",") if i))


def _resume(text: str | None) -> Resume | None:
    if not text:
        return None
    offset, _, floor = text.partition("|")
    return Resume(int(offset), _mark(floor) or Mark(0, frozenset()))
