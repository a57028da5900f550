"""Write to FreshChat: customer messages as the contact's FreshChat user, notes as private messages.

The writer turns a queued row into its post (`freshchat_posts`) with no request made yet; the poster
(`freshchat_poster`) posts and recovers when FreshChat refuses, the route book (`freshchat_routes`) says
where a new conversation opens. A queued row's content is read once, when its post is made.
"""

from __future__ import annotations

from collections.abc import Callable

from zfsync.domain import Kind, OutboxRow, Route, ZaloContent
from zfsync.sync.decide import plan
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import WriterStore
from zfsync.sync.write import media
from zfsync.sync.write.freshchat_poster import Poster
from zfsync.sync.write.freshchat_posts import (
    AgentNotePost,
    CustomerMessagePost,
    HistoryMarkerPost,
    OaNotePost,
    Post,
    PostContext,
)
from zfsync.sync.write.freshchat_routes import RouteBook


class FreshChatWriter:
    def __init__(
        self,
        freshchat: FreshChatSide,
        zalo: ZaloSide,
        store: WriterStore,
        clock: Callable[[], float],
        channel_id: str,
        display_name: str,
        routes: tuple[Route, ...] = (),
        agent_notes: str = "all",
        after_resolve: plan.AfterResolve | None = None,
    ):
        self.store = store
        self.routes = RouteBook(routes, channel_id, freshchat, zalo, store, clock)
        poster = Poster(freshchat, store, clock, display_name, self.routes)
        self.context = PostContext(
            freshchat, zalo, store, clock, poster, agent_notes, after_resolve or plan.AfterResolve()
        )

    def check_routes_due(self) -> None:
        """Check the routes against the account at the start and hourly (`RouteBook.check_due`)."""
        self.routes.check_due()

    def action(self, row: OutboxRow) -> Post:
        """What the row becomes: no request is made yet."""
        contact = self.store.contact_by_id(row.contact_id)
        if row.kind == Kind.FAILURE_NOTE:
            return AgentNotePost(self.context, row, contact)
        content = row.content
        assert isinstance(content, ZaloContent), row.kind  # a row to FreshChat: a message or a note
        if row.kind == Kind.OA_NOTE:
            return OaNotePost(self.context, row, contact, content)
        if row.kind == Kind.HISTORY_MARKER:
            return HistoryMarkerPost(self.context, row, contact, content)
        return CustomerMessagePost(self.context, row, contact, content, list(row.copied) if row.copied else None)

    def heavy(self, row: OutboxRow) -> bool:
        """A customer's photo, voice or file not yet copied into FreshChat: a download and an upload."""
        if row.kind in (Kind.FAILURE_NOTE, Kind.OA_NOTE, Kind.HISTORY_MARKER) or row.copied is not None:
            return False
        return isinstance(row.content, ZaloContent) and media.has_media(row.content)
