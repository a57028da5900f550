"""The figures `zfsync status` and the metrics show: messages by state, delivered and failed counts, how
long deliveries took."""

from __future__ import annotations

from peewee import Case, fn

from zfsync.domain import F2Z, GROUP_PREFIX, WINDOW_REFUSALS, Kind, Status
from zfsync.store.base import Figures, StoreBase


class FiguresStore(StoreBase):
    def delivered_counts(self) -> list[tuple[str, str, int]]:
        """(direction, kind, count) of every message delivered since the store was made."""
        Message = self.tables.Message
        query = (
            Message.select(Message.direction, Message.kind, fn.COUNT(Message.id))
            .where(Message.status == Status.SENT)
            .group_by(Message.direction, Message.kind)
        )
        return [(d, k, int(n)) for d, k, n in query.tuples()]

    def delivered_by_chat(self) -> list[tuple[str, str, int]]:
        """(direction, chat, count) of every message delivered: "direct" for a customer's own chat, "group"
        for a Zalo group chat's. (The groups' part is counted under a WHERE, and the rest by difference:
        PostgreSQL refuses a GROUP BY on an expression that carries a parameter.)"""
        Message, Contact = self.tables.Message, self.tables.Contact
        totals: dict[str, int] = {}
        for direction, _kind, count in self.delivered_counts():
            totals[direction] = totals.get(direction, 0) + count
        in_groups = dict(
            Message.select(Message.direction, fn.COUNT(Message.id))
            .join(Contact, on=(Message.contact == Contact.id))
            .where(Message.status == Status.SENT, Contact.zalo_user_id.startswith(GROUP_PREFIX))
            .group_by(Message.direction)
            .tuples()
        )
        found = [(d, "direct", n - int(in_groups.get(d, 0))) for d, n in sorted(totals.items())]
        found += [(d, "group", int(n)) for d, n in sorted(in_groups.items())]
        return [row for row in found if row[2]]

    def failure_counts(self) -> list[tuple[str, str, int]]:
        """(direction, reason, count) of every delivery that ended failed; the reason is the error code."""
        Message = self.tables.Message
        query = (
            Message.select(Message.direction, Message.error_code, fn.COUNT(Message.id))
            .where(Message.status == Status.FAILED)
            .group_by(Message.direction, Message.error_code)
        )
        return [(d, code or "unknown", int(n)) for d, code, n in query.tuples()]

    def latency_histogram(self, buckets: tuple[float, ...]) -> dict[str, tuple[list[int], float, int]]:
        """Per direction: how many deliveries took at most each bucket's seconds (cumulative), their sum
        and count, over every message ever delivered (so it never goes back, across restarts too)."""
        Message = self.tables.Message
        delay = Message.done_at - Message.source_time
        columns = [fn.SUM(Case(None, [(delay <= bound, 1)], 0)) for bound in buckets]
        query = (
            Message.select(
                Message.direction,
                fn.COUNT(Message.id),
                fn.SUM(self._greatest(delay, 0)),
                *columns,
            )
            .where(Message.status == Status.SENT, Message.done_at.is_null(False), Message.history == False)  # noqa: E712
            .group_by(Message.direction)
        )
        found: dict[str, tuple[list[int], float, int]] = {}
        for direction, count, total, *cumulative in query.tuples():
            found[direction] = ([int(c or 0) for c in cumulative], float(total or 0.0), int(count))
        return found

    def agent_replied(self, contact_id: int, fc_conversation_id: str) -> bool:
        """Whether an agent's reply from this FreshChat conversation was ever queued to the customer."""
        Message = self.tables.Message
        replies = (Kind.TEXT, Kind.IMAGE, Kind.FILE, Kind.TEXT_FILE)
        return (
            Message.select(Message.id)
            .where(
                Message.contact == contact_id,
                Message.direction == F2Z,
                Message.conversation_id == fc_conversation_id,
                Message.kind.in_(replies),
            )
            .exists()
        )

    def refused_for_window(self, since: float) -> int:
        """Replies that ended failed since ``since`` because the customer's 7-day window had closed."""
        Message = self.tables.Message
        return int(
            Message.select(fn.COUNT(Message.id))
            .where(
                Message.direction == "f2z",
                Message.status == Status.FAILED,
                Message.error_code.in_(WINDOW_REFUSALS),
                Message.done_at >= since,
            )
            .scalar()
            or 0
        )

    def figures(self, now: float) -> Figures:
        Message = self.tables.Message
        figures = Figures()
        for direction, status, count in (
            Message.select(Message.direction, Message.status, fn.COUNT(Message.id))
            .group_by(Message.direction, Message.status)
            .tuples()
        ):
            figures.by_status.setdefault(direction, {})[status] = count
        for direction in ("z2f", "f2z"):
            figures.carried[direction] = {}
            figures.latency[direction] = {}
            for label, span in (("hour", 3600.0), ("day", 86_400.0)):
                latencies = sorted(
                    done - source
                    for done, source in Message.select(Message.done_at, Message.source_time)
                    .where(
                        Message.direction == direction,
                        Message.status == Status.SENT,
                        Message.done_at >= now - span,
                        Message.history == False,  # noqa: E712  (its delay is its age, not ours)
                    )
                    .tuples()
                )
                figures.carried[direction][label] = len(latencies)
                if label == "hour":
                    figures.latency[direction]["p50"] = _percentile(latencies, 0.50)
                    figures.latency[direction]["p95"] = _percentile(latencies, 0.95)
        return figures


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return max(0.0, sorted_values[index])
