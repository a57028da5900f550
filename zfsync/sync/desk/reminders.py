"""Tell agents of Zalo's clocks before they bite, and keep the OA's package quota in view.

Once a minute: each customer whose 7-day reply window closes within ``sync.window_warning_hours`` gets
one private note in their current FreshChat conversation (once per interaction: a new message, and
so a new window, may warn again). Once an hour: the OA's quota assets (``quota/message`` with
``quota_owner=OA``) are read into the state `zfsync status` and the metrics show; the sends' answers
keep the package's count current in between.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

import structlog

from zfsync.domain import ZaloPackage
from zfsync.domain.errors import PermanentError, RemoteError, TransientError
from zfsync.log import Throttle
from zfsync.sides.priority import Priority, purpose
from zfsync.sync.decide import notes, zalo_clocks
from zfsync.sync.ports import ZaloSide
from zfsync.sync.seams import Contacts, Outbox

log = structlog.get_logger("zfsync.sync")

WARN_EVERY = 60.0
PACKAGE_EVERY = 3600.0
PER_RUN = 50
PACKAGE_KEY = "zalo.package"  # the OA's quota assets, as JSON (status, metrics)
_refused = Throttle(window=86_400.0)


class ReminderStore(Outbox, Contacts, Protocol):
    def set_state(self, key: str, value: str) -> None: ...

    def get_state(self, key: str) -> str | None: ...


def closing_range(now: float, warning_hours: float) -> tuple[int, int]:
    """The last interactions whose window closes within ``warning_hours`` but is not closed yet, in ms:
    ``(after, up to)``."""
    return int((now * 1000) - zalo_clocks.WINDOW_MS), int(
        now * 1000 + warning_hours * 3_600_000 - zalo_clocks.WINDOW_MS
    )


def package_state(packages: list[ZaloPackage], checked_at: float) -> dict[str, object]:
    """The consultation (``cs``) assets, as the state keeps them: what is left of each kind, summed."""
    kinds: dict[str, dict[str, object]] = {}
    for package in packages:
        if package.product != "cs":
            continue
        kind = kinds.setdefault(package.kind, {"remain": 0, "total": 0, "valid_through": ""})
        kind["remain"] = int(str(kind["remain"])) + package.remain
        kind["total"] = int(str(kind["total"])) + package.total
        kind["valid_through"] = max(str(kind["valid_through"]), package.valid_through, key=_day_order)
    return {"checked_at": checked_at, "kinds": kinds}


def _day_order(day: str) -> str:
    """A "dd/MM/yyyy" day, as text that sorts in time order."""
    parts = day.split("/")
    return "/".join(reversed(parts)) if len(parts) == 3 else ""


def with_sub_quota(state: dict[str, object], remain: int, total: int, expires: str) -> dict[str, object]:
    """The state after a send's answer said what the package's free messages now are."""
    kinds = dict(state.get("kinds") or {})  # type: ignore[call-overload]
    kinds["sub_quota"] = {"remain": remain, "total": total, "valid_through": expires}
    return {**state, "kinds": kinds}


class Reminders:
    def __init__(
        self,
        zalo: ZaloSide,
        store: ReminderStore,
        clock: Callable[[], float],
        warning_hours: float,
        monotonic: Callable[[], float] | None = None,
    ):
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.monotonic = monotonic or clock
        self.warning_hours = warning_hours
        self._warned_at = float("-inf")
        self._package_at = float("-inf")

    def run_due(self) -> int:
        """Warn of closing windows (once a minute) and read the package quota (once an hour); returns
        how many warnings were queued."""
        warned = 0
        if self.warning_hours and self.monotonic() - self._warned_at >= WARN_EVERY:
            self._warned_at = self.monotonic()
            warned = self.warn_closing()
        if self.monotonic() - self._package_at >= PACKAGE_EVERY:
            self._package_at = self.monotonic()
            self.read_package()
        return warned

    def warn_closing(self) -> int:
        now = self.clock()
        after, up_to = closing_range(now, self.warning_hours)
        warned = 0
        for contact in self.store.contacts_window_closing(after, up_to, PER_RUN):
            opened = contact.interacted_ms
            if contact.is_group:  # a group chat has no 7-day window: marked, so it is not found again
                self.store.mark_warned(contact.id, window_ms=opened)
                continue
            conversation = self.store.current_conversation(contact.id)
            if not self.store.mark_warned(contact.id, window_ms=opened) or conversation is None:
                continue  # another daemon warned; or no conversation to warn in (nothing to answer)
            closes = zalo_clocks.window_closes_ms(contact)
            text = notes.window_closing_note(zalo_clocks.local_time(closes), (closes - now * 1000) / 3_600_000)
            row = notes.note_row(f"window:{contact.id}:{opened}", text, conversation.fc_conversation_id, "", now)
            self.store.insert_rows(contact.id, [row], now)
            log.info("window_closing_warned", contact=contact.zalo_user_id, closes_at=zalo_clocks.iso(closes))
            warned += 1
        return warned

    def sub_quota_seen(self, remain: int, total: int, expires: str) -> None:
        """A send's answer said what is left of the package's free messages."""
        try:
            state = json.loads(self.store.get_state(PACKAGE_KEY) or "{}")
        except ValueError:
            state = {}
        self.store.set_state(PACKAGE_KEY, json.dumps(with_sub_quota(state, remain, total, expires)))

    def read_package(self) -> None:
        try:
            with purpose(Priority.PROFILE):
                packages = self.zalo.package_quota()
        except (TransientError, PermanentError) as exc:
            if _refused.first(type(exc).__name__):
                log.info("zalo_package_unknown", error=str(exc))
            return
        except RemoteError as exc:  # auth or rate limits: the polls record and report them
            log.info("zalo_package_unknown", error=str(exc))
            return
        self.store.set_state(PACKAGE_KEY, json.dumps(package_state(packages, self.clock())))
