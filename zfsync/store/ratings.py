"""The customers' ratings (`zfsync.sync.desk.ratings`): how far Zalo's ratings were read, which landed (by
Zalo's id, so none lands twice), and the counts of stars the histogram and `zfsync status` show. Two
state rows; the ratings themselves are the private notes they became."""

from __future__ import annotations

import json
import re
from typing import Any

from zfsync.domain import ZnsRating, vietnam_day
from zfsync.store.base import StoreBase

READ_UNTIL_KEY = "zns.ratings_read_until"  # epoch ms: the end of the last read of rating/get
RATINGS_KEY = "zns.ratings"  # JSON: {"seen": [ids], "stars": {"1".."5": n}, "sum", "days": {day: [sum, n]}}
SEEN_KEPT = 5000  # ids remembered: far more than a day's re-read holds
DAYS_KEPT = 8
OURS = re.compile(r"zfsync(\d{1,18})")  # the tracking id a rating template was sent with


class RatingStore(StoreBase):
    def ratings_read_until(self) -> int:
        return int(self.get_state(READ_UNTIL_KEY) or 0)

    def set_ratings_read_until(self, until_ms: int) -> None:
        self.set_state(READ_UNTIL_KEY, str(until_ms))

    def rating_origin(self, tracking_id: str) -> tuple[int, str] | None:
        """The contact and FreshChat conversation of the row a rating template was sent as, by its
        tracking id; None if it is not one of this desk's."""
        found = OURS.fullmatch(tracking_id)
        if found is None:
            return None
        Message = self.tables.Message
        row = (
            Message.select(Message.contact, Message.conversation_id)
            .where(Message.id == int(found.group(1)), Message.conversation_id.is_null(False))
            .tuples()
            .first()
        )
        return (int(row[0]), str(row[1])) if row else None

    def rating_seen(self, message_id: str) -> bool:
        return message_id in self._ratings()["seen"]

    def record_rating(self, rating: ZnsRating, now: float) -> bool:
        """Count a rating once; False if it was counted before."""
        with self.db.atomic():
            kept = self._ratings()
            if rating.message_id in kept["seen"]:
                return False
            kept["seen"] = [*kept["seen"], rating.message_id][-SEEN_KEPT:]
            stars = str(max(1, min(5, rating.stars)))
            kept["stars"][stars] = kept["stars"].get(stars, 0) + 1
            kept["sum"] += int(stars)
            day = vietnam_day(rating.submitted_ms / 1000 if rating.submitted_ms else now)
            total, count = kept["days"].get(day, [0, 0])
            kept["days"][day] = [total + int(stars), count + 1]
            kept["days"] = dict(sorted(kept["days"].items())[-DAYS_KEPT:])
            self.set_state(RATINGS_KEY, json.dumps(kept))
        return True

    def rating_counts(self) -> tuple[dict[int, int], int]:
        """How many ratings gave each number of stars (1 to 5), and their sum."""
        kept = self._ratings()
        return {n: int(kept["stars"].get(str(n), 0)) for n in range(1, 6)}, int(kept["sum"])

    def rating_day(self, now: float) -> tuple[int, float | None]:
        """Today's ratings (Vietnam's day) and their average stars (None if none)."""
        total, count = self._ratings()["days"].get(vietnam_day(now), [0, 0])
        return int(count), (round(total / count, 2) if count else None)

    def _ratings(self) -> dict[str, Any]:
        raw = self.get_state(RATINGS_KEY)
        kept = json.loads(raw) if raw else {}
        return {"seen": [], "stars": {}, "sum": 0, "days": {}, **kept}
