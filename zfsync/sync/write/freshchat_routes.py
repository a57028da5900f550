"""Where a customer's new FreshChat conversation opens: the ``[[route]]`` tables of the config, checked
against the account's channels and groups at the start and hourly, so a wrong route is skipped and shown
(`zfsync status`), never followed; one FreshChat refuses anyway falls back to the default channel
(`zfsync.sync.decide.recovery`). The choice itself is `zfsync.sync.decide.routing`'s."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from zfsync.domain import Contact, FcOutgoing, Route, TextPart, group_id_of
from zfsync.domain.errors import PermanentError, TransientError
from zfsync.sync.decide import notes, render, routing
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import WriterStore

log = structlog.get_logger("zfsync.sync")

ROUTE_CHECK = 3600.0  # seconds between checks of the routes against the account's channels and groups
ROUTE_CHECK_RETRY = 300.0  # seconds before a check FreshChat did not answer is tried again


class RouteBook:
    """The routes, which of them are wrong, and the destination of each new conversation."""

    def __init__(
        self,
        routes: tuple[Route, ...],
        channel_id: str,
        freshchat: FreshChatSide,
        zalo: ZaloSide,
        store: WriterStore,
        clock: Callable[[], float],
    ):
        self.routes = routes
        self.channel_id = channel_id  # the default channel
        self.fc = freshchat
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.wrong: dict[int, str] = {}  # routes whose channel or group the account lacks: skipped
        self.checked_at: float | None = None

    def check(self) -> None:
        """Compare the routes with the account's channels and groups: a route to a channel or group
        FreshChat lacks is skipped, said once in the log and shown by status."""
        if not self.routes:
            return
        channels = {str(c.get("id")) for c in self.fc.channels()}
        groups = {str(g.get("id")) for g in self.fc.groups()} if any(r.group_id for r in self.routes) else None
        found = {number: "; ".join(wrong) for number, wrong in routing.problems(self.routes, channels, groups).items()}
        for number in sorted(set(found) - set(self.wrong)):
            log.warning("route_invalid", route=number, problem=found[number])
        self.wrong = found
        self.store.set_route_problems(found, self.clock())
        self.checked_at = self.clock()

    def check_due(self) -> None:
        """`check` at the start and hourly; a check FreshChat does not answer is tried again later
        (meanwhile a refused route still falls back to the default channel)."""
        now = self.clock()
        if not self.routes or (self.checked_at is not None and now - self.checked_at < ROUTE_CHECK):
            return
        try:
            self.check()
        except (TransientError, PermanentError) as exc:
            log.info("route_check_failed", error=str(exc))
            self.checked_at = now - ROUTE_CHECK + ROUTE_CHECK_RETRY

    def destination(self, contact: Contact, message: FcOutgoing) -> routing.Destination:
        """Which channel (and group) the customer's new conversation opens in."""
        if not self.routes:
            return routing.Destination(self.channel_id)
        self.check_due()
        tags: tuple[str, ...] = ()
        if any(route.tag for route in self.routes) and not contact.is_group:  # a group has no tags
            try:
                tags = self.zalo.user_profile(contact.zalo_user_id).tags
            except (TransientError, PermanentError) as exc:  # routed by what else is known
                log.info("route_tags_unknown", contact=contact.zalo_user_id, error=str(exc))
        oa = ""
        if any(route.oa for route in self.routes):
            try:
                oa = self.zalo.oa_id()
            except (TransientError, PermanentError) as exc:  # routed by what else is known
                log.info("route_oa_unknown", contact=contact.zalo_user_id, error=str(exc))
        text = "\n".join(part.text for part in message.parts if isinstance(part, TextPart))
        group = group_id_of(contact.zalo_user_id) if contact.is_group else ""
        found = routing.destination(self.routes, self.channel_id, tags, text, oa, skip=self.wrong, group=group)
        log.info("conversation_routed", contact=contact.zalo_user_id, route=found.route, channel=found.channel_id)
        return found

    def skipped_note(self, to: routing.Destination) -> str:
        """The note for a conversation opened elsewhere because its route is known to be wrong ("" : none)."""
        return self.note(to.skipped, self.wrong.get(to.skipped, "")) if to.skipped else ""

    def refused(self, to: routing.Destination, exc: PermanentError) -> str:
        """Record a route FreshChat refused; returns the note for the conversation opened instead."""
        route = self.routes[to.route - 1]
        if to.route not in self.store.route_problems():
            log.warning("route_refused", route=to.route, channel=route.channel_id, group=route.group_id, error=str(exc))
        why = f"FreshChat refused a conversation in {self._where(to.route)}: {exc}"
        self.wrong[to.route] = why  # skipped until the next check of the routes
        self.store.set_route_problems({to.route: why}, self.clock(), add=True)
        return self.note(to.route, str(exc))

    def note(self, number: int, why: str) -> str:
        return notes.route_refused_note(number, self._where(number), render.cut_on_word(why, 300))

    def _where(self, number: int) -> str:
        route = self.routes[number - 1]
        return f"channel {route.channel_id}" + (f", group {route.group_id}" if route.group_id else "")
