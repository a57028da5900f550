"""The customers' answers to the rating template (`sync.rating_template`), read back from Zalo.

The template itself goes out as the command an agent would write (`/zalo template NAME`), queued once per
resolve in a conversation an agent replied in (`zfsync.sync.decide.replies`); its ``tracking_id`` names its
outbox row. ZNS answers ratings only when asked (``rating/get``, by template and time), so they are read
every few minutes, the last day again each time (a rating is matched by its id, so none lands twice), and
each one lands however late on the conversation its row came from: a private note (stars, the feedback the
customer ticked, their note), the conversation property `sync.rating_property` if set, and the counts the
``zfsync_rating_stars`` histogram and `zfsync status` show.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from zfsync.domain import ZnsRating
from zfsync.domain.errors import RemoteError
from zfsync.sync.decide import notes
from zfsync.sync.ports import FreshChatSide, ZaloSide
from zfsync.sync.seams import RatingRecord

log = structlog.get_logger("zfsync.sync")

READ_EVERY = 300.0  # seconds between two reads of the ratings: within the budget, minutes late at most
OVERLAP_MS = 86_400_000  # each read looks a day back as well: a rating Zalo files late is still found
FIRST_LOOK_MS = 7 * 86_400_000  # at the first read: the last week


class Ratings:
    def __init__(
        self,
        zalo: ZaloSide,
        freshchat: FreshChatSide,
        store: RatingRecord,
        clock: Callable[[], float],
        template_id: str,
        conversation_property: str,
        monotonic: Callable[[], float],
    ):
        self.zalo, self.freshchat, self.store, self.clock = zalo, freshchat, store, clock
        self.template_id = template_id  # "" : no rating template configured
        self.conversation_property = conversation_property
        self.monotonic = monotonic
        self._next = 0.0

    def read_due(self) -> int:
        """Read the ratings when due; returns how many new ones landed."""
        if not self.template_id or self.monotonic() < self._next:
            return 0
        self._next = self.monotonic() + READ_EVERY
        now_ms = int(self.clock() * 1000)
        since = self.store.ratings_read_until()
        from_ms = max(0, (since - OVERLAP_MS) if since else now_ms - FIRST_LOOK_MS)
        try:
            found = self.zalo.zns_ratings(self.template_id, from_ms, now_ms)
        except RemoteError as exc:
            log.warning("ratings_unreadable", error=str(exc), retry_in=READ_EVERY)
            return 0
        landed = sum(self._land(rating) for rating in found)
        self.store.set_ratings_read_until(now_ms)
        return landed

    def _land(self, rating: ZnsRating) -> int:
        """The note, the property, then the count: each step may be repeated after a crash without
        showing twice (the note's source id is unique, the property is set to the same value)."""
        origin = self.store.rating_origin(rating.tracking_id)
        if origin is None or self.store.rating_seen(rating.message_id):
            return 0  # not one of our sends (another system's, or a deleted row), or landed already
        contact_id, conversation_id = origin
        note = notes.rating_note(rating.stars, list(rating.feedbacks), rating.note)
        row = notes.note_row(f"rating-answer:{rating.message_id}", note, conversation_id, "", self.clock())
        self.store.insert_rows(contact_id, [row], self.clock())
        if self.conversation_property:
            try:
                properties = {self.conversation_property: str(rating.stars)}
                self.freshchat.set_conversation_properties(conversation_id, properties)
            except RemoteError as exc:  # the note carries it; the property is a convenience
                log.warning("rating_property_unwritten", conversation=conversation_id, error=str(exc))
        self.store.record_rating(rating, self.clock())
        log.info("rating_landed", conversation=conversation_id, stars=rating.stars)
        return 1
