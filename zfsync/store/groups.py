"""Where reading the OA's group chats stands (`zfsync.sync.read.group_reader`): one state row of JSON, the
`GroupBook`. The groups' messages themselves are recorded as every Zalo message is (`FeedStore`), under
each group's contact id; this row holds only what decides what to read next, so losing a write of it
costs a read again, never a message."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from zfsync.domain import Baseline, GroupBook, KnownGroup
from zfsync.store.base import StoreBase

GROUPS_KEY = "gmf.groups"
MEMBERS_KEPT = 500  # names a group remembers for mentions: the most recent writers
_changing = threading.Lock()  # the reader and the package check change the book from two threads


class GroupStore(StoreBase):
    def group_book(self) -> GroupBook:
        text = self.get_state(GROUPS_KEY)
        try:
            found = json.loads(text) if text else {}
        except ValueError:
            found = {}
        return _book(found) if isinstance(found, dict) else GroupBook()

    def change_group_book(self, change: Callable[[GroupBook], GroupBook]) -> GroupBook:
        """Read the book, change it and write it back, with no other change of it in between."""
        with _changing, self.db.atomic():
            book = change(self.group_book())
            self.save_group_book(book)
            return book

    def save_group_book(self, book: GroupBook) -> None:
        baseline = book.baseline
        self.set_state(
            GROUPS_KEY,
            json.dumps(
                {
                    "baseline": None if baseline is None else [baseline.time_ms, sorted(baseline.ids)],
                    "listed_at": book.listed_at,
                    "assets_at": book.assets_at,
                    "refused": book.refused,
                    "refused_at": book.refused_at,
                    "groups": [
                        {
                            "id": g.group_id,
                            "name": g.name,
                            "avatar": g.avatar,
                            "enabled": g.enabled,
                            "valid_through": g.valid_through,
                            "swept_at": g.swept_at,
                            "warned_through": g.warned_through,
                            "members": [list(m) for m in g.members[-MEMBERS_KEPT:]],
                        }
                        for g in book.groups
                    ],
                },
                ensure_ascii=False,
                sort_keys=True,
            ),
        )


def _book(found: dict[str, Any]) -> GroupBook:
    baseline = found.get("baseline")
    groups = []
    for g in found.get("groups") or []:
        if not isinstance(g, dict) or not g.get("id"):
            continue
        members = tuple((str(m[0]), str(m[1])) for m in g.get("members") or [] if isinstance(m, list) and len(m) == 2)
        groups.append(
            KnownGroup(
                group_id=str(g["id"]),
                name=str(g.get("name") or ""),
                avatar=str(g.get("avatar") or ""),
                enabled=bool(g.get("enabled", True)),
                valid_through=str(g.get("valid_through") or ""),
                swept_at=float(g.get("swept_at") or 0.0),
                warned_through=str(g.get("warned_through") or ""),
                members=members,
            )
        )
    return GroupBook(
        baseline=Baseline(int(baseline[0]), frozenset(baseline[1])) if isinstance(baseline, list) else None,
        groups=tuple(groups),
        listed_at=float(found.get("listed_at") or 0.0),
        assets_at=float(found.get("assets_at") or 0.0),
        refused=str(found.get("refused") or ""),
        refused_at=float(found.get("refused_at") or 0.0),
    )
