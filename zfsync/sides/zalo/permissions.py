"""Zalo's permission groups, and which of them the OA has refused the app.

An OA grants an app the Open API in groups ("nhóm quyền", official page
``bat-dau/gioi-thieu-official-account-api-va-cac-nhom-quyen``). A call whose group was not granted answers
-223 ("Official Account has not authorized this API"; granted in the app's OA settings) or -212 ("App has
not registed this api"; registered under the app's API registration) (``phu-luc/ma-loi``). Without the two
groups that carry messages nothing can cross, so those refusals are `AuthError`s like a dead token. Without
the OA-information group only what needs it stops (profiles, tags, routing by tag, the details card, the
customer list): those refusals are `PermissionMissing`, a `PermanentError` every such path already
survives, and the `Ledger` remembers them so that the call is not made again for an hour, or until
`zfsync check` or `zfsync auth zalo` clears them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from zfsync.domain.errors import AuthError, PermissionMissing, RemoteError
from zfsync.i18n import N_

log = structlog.get_logger("zfsync.zalo")

STATE_KEY = "zalo.permissions"  # what the daemon learned: {"app_id": ..., "missing": {group: {...}}}
RETRY = 3600.0  # seconds before a refused group is tried again on its own
REFUSAL_CODES = {
    -223: "the OA has not granted this API to the app",
    -212: "the app has not registered this API",
}
SETTINGS_URL = "https://developers.zalo.me/app/{app_id}/oa/settings"


@dataclass(frozen=True)
class Group:
    name: str  # as Zalo's console names it
    needed_for: str  # what stops without it (a catalogue message id)
    core: bool  # nothing crosses without it
    prefixes: tuple[str, ...]  # the endpoints that need it


GROUPS: dict[str, Group] = {
    # Before "send": the group asset's check is under /v3.0/oa/quota/ too.
    "groups": Group(
        "Quyền quản lý thông tin nhóm",
        N_("Zalo group chats (reading them, answering them, their package's expiry)"),
        False,
        ("/v3.0/oa/group/", "/v3.0/oa/quota/group"),
    ),
    "send": Group(
        "Quyền gửi tin nhắn",
        N_("agents' replies, uploads and the free-reply check"),
        True,
        ("/v3.0/oa/message/", "/v2.0/oa/upload/", "/v3.0/oa/quota/"),
    ),
    "messages": Group(
        "Quyền quản lý tin nhắn người dùng",
        N_("reading customers' messages"),
        True,
        ("/v2.0/oa/listrecentchat", "/v2.0/oa/conversation"),
    ),
    "oa_info": Group(
        "Quyền quản lý thông tin OA",
        N_(
            "customer profiles and tags, routing by tag or OA, /zalo tag and /zalo info, listing customers for "
            "catch-up and history"
        ),
        False,
        ("/v2.0/oa/getoa", "/v3.0/oa/user/", "/v2.0/oa/tag/"),
    ),
}

# What the agent reads when their command needed the OA-information group.
ADVICE = N_(
    "The Zalo app has not been granted the permission this command needs (Quyền quản lý thông tin OA). The OA "
    "admin must grant it in the app's OA settings on developers.zalo.me; until then the command cannot run."
)


def group_of(endpoint: str) -> str | None:
    return next((key for key, group in GROUPS.items() if endpoint.startswith(group.prefixes)), None)


def refusal(code: int, message: str, *, endpoint: str, status: int | None) -> RemoteError:
    """The error for a permission refusal (``code`` in `REFUSAL_CODES`) of a call to ``endpoint``."""
    key = group_of(endpoint)
    reason = message or REFUSAL_CODES[code]
    if key is None or GROUPS[key].core:
        named = f" (permission group «{GROUPS[key].name}»)" if key else ""
        return AuthError(
            f"{reason}{named}: grant it in the Zalo app's settings",
            side="zalo",
            endpoint=endpoint,
            status=status,
            code=code,
        )
    error = PermissionMissing(
        f"{reason} (permission group «{GROUPS[key].name}»)",
        side="zalo",
        endpoint=endpoint,
        permission=key,
        status=status,
        code=code,
    )
    error.advice = ADVICE
    return error


def _parsed(state: str | None) -> dict[str, Any]:
    """A stored `STATE_KEY` value as an object (empty for a value that is not ours)."""
    try:
        found = json.loads(state) if state else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def missing(state: str | None) -> dict[str, dict[str, Any]]:
    """The refused groups a stored `STATE_KEY` value names."""
    groups = _parsed(state).get("missing")
    if not isinstance(groups, dict):
        return {}
    return {k: v for k, v in groups.items() if k in GROUPS and isinstance(v, dict)}


def app_of(state: str | None) -> str:
    app = _parsed(state).get("app_id")
    return app if isinstance(app, str) else ""


def without(state: str | None, groups: set[str]) -> str:
    """``state`` with ``groups`` granted again (what `zfsync check` and `zfsync auth zalo` write)."""
    kept = {k: v for k, v in missing(state).items() if k not in groups}
    return json.dumps({"app_id": app_of(state), "missing": kept})


class Ledger:
    """The groups Zalo refused, shared by every call of one client: a refused group is not asked again for
    `RETRY` seconds (each such call fails at once with the remembered refusal), and comes back with the
    first call that works. ``load``/``save`` keep it in the store, where `zfsync status` reads it and
    `zfsync check` or `zfsync auth zalo` clear it (the ledger reads it again before refusing on its own)."""

    def __init__(
        self,
        clock: Callable[[], float],
        load: Callable[[], str | None] | None = None,
        save: Callable[[str], None] = lambda value: None,
        app_id: str = "",
    ):
        self.clock = clock
        self._load = load
        self._save = save
        self.app_id = app_id
        self._lock = threading.Lock()
        self._missing: dict[str, dict[str, Any]] = {}
        self._loaded = False

    def blocked(self, endpoint: str) -> PermissionMissing | None:
        """The remembered refusal of ``endpoint``'s group, if it is not yet time to ask Zalo again."""
        if not self._loaded:
            self._reload()
        key = group_of(endpoint)
        if key is None or key not in self._missing:
            return None
        if self.clock() - float(self._missing[key].get("tried_at") or 0) >= RETRY:
            return None
        self._reload()  # cleared by `zfsync check` or a re-authorisation?
        if key not in self._missing:
            return None
        error = PermissionMissing(
            f"the OA has not granted the app the permission group «{GROUPS[key].name}» (remembered; asked again "
            "within the hour)",
            side="zalo",
            endpoint=endpoint,
            permission=key,
            code=self._missing[key].get("code"),
            remembered=True,
        )
        error.advice = ADVICE
        return error

    def refused(self, error: PermissionMissing) -> None:
        now = self.clock()
        with self._lock:
            first = error.permission not in self._missing
            since = now if first else self._missing[error.permission].get("since", now)
            self._missing[error.permission] = {
                "since": since,
                "tried_at": now,
                "endpoint": error.endpoint,
                "code": error.code,
            }
            self._write()
        if first:
            group = GROUPS[error.permission]
            log.warning(
                "zalo_permission_missing",
                permission=group.name,
                endpoint=error.endpoint,
                code=error.code,
                without_it=group.needed_for,
                fix=SETTINGS_URL.format(app_id=self.app_id or "APP_ID"),
            )

    def worked(self, endpoint: str) -> None:
        key = group_of(endpoint)
        if key is None or key not in self._missing:
            return
        with self._lock:
            self._missing.pop(key, None)
            self._write()
        log.info("zalo_permission_granted", permission=GROUPS[key].name)

    def _reload(self) -> None:
        if self._load is None:  # kept in memory alone
            self._loaded = True
            return
        with self._lock:
            self._missing = missing(self._load())
            self._loaded = True

    def _write(self) -> None:
        self._save(json.dumps({"app_id": self.app_id, "missing": self._missing}))
