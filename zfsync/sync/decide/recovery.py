"""How a post FreshChat refused is recovered, one step at a time, decided with no I/O.

A refused post or new conversation is a small state: what FreshChat said, and what was looked up since.
The planner returns the next step; the poster (`zfsync.sync.write.freshchat_poster`) carries it out, adds
what it learned to the state and asks again, until a step ends the recovery. Table-tested in
tests/unit/test_recovery.py.

Posting into a conversation:
- 400 "not the latest conversation": follow the customer's newest other conversation (none: open a new
  one); after a resolve FreshChat may have opened it *with* the refused message (wedosoft's bridge saw
  both), so look there first and adopt what is found, else post into it;
- 404: the conversation was deleted in FreshChat: forget it, open a new one, tell the agent which it
  replaces;
- anything else: the row's failure.

Opening a conversation:
- a routed one refused while the customer's user still exists: the route's channel or group is wrong
  (a typo, deleted since), so the default channel takes the customer and the desk is told;
- refused and the user is gone too: make the user again, once, and open it;
- refused with the user there and no route to blame: the row's failure.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- posting into a conversation ------------------------------------------------------------------


@dataclass(frozen=True)
class PostRefused:
    """A post into ``conversation_id`` that FreshChat refused, and what was learned since."""

    conversation_id: str
    not_latest: bool = False  # 400 "not the latest conversation"
    status: int | None = None  # the refusal's HTTP status
    reason: str = ""  # what FreshChat said, for the log
    newest: str | None = None  # the customer's newest other conversation ("" : they have none)
    found: str | None = None  # the refused message found in ``newest`` ("" : not there)


@dataclass(frozen=True)
class FindNewest:
    """Ask FreshChat for the customer's newest conversation other than the refused one."""


@dataclass(frozen=True)
class Follow:
    """Make ``conversation_id`` the customer's conversation and look there for the refused message."""

    conversation_id: str


@dataclass(frozen=True)
class Adopt:
    """The message stands there already: it was delivered as ``message_id``."""

    message_id: str
    conversation_id: str


@dataclass(frozen=True)
class PostInto:
    """Post the message into ``conversation_id``."""

    conversation_id: str


@dataclass(frozen=True)
class OpenNew:
    """Open a new conversation with the message; ``replaced``: the one it stands in for (the agent is told),
    which zfsync forgets when ``forget``."""

    replaced: str = ""
    forget: bool = False


@dataclass(frozen=True)
class GiveUp:
    """The refusal is the row's failure."""


PostStep = FindNewest | Follow | Adopt | PostInto | OpenNew | GiveUp


def after_post_refused(refused: PostRefused) -> PostStep:
    if refused.not_latest:
        if refused.newest is None:
            return FindNewest()
        if not refused.newest:
            return OpenNew()
        if refused.found is None:
            return Follow(refused.newest)
        if refused.found:
            return Adopt(refused.found, refused.newest)
        return PostInto(refused.newest)
    if refused.status == 404:
        return OpenNew(replaced=refused.conversation_id, forget=True)
    return GiveUp()


# --- opening a conversation -----------------------------------------------------------------------


@dataclass(frozen=True)
class OpenRefused:
    """A new conversation FreshChat refused, and what was learned since."""

    route: int  # the route it was opened by (0: the default channel)
    user_there: bool | None = None  # whether FreshChat still has the customer's user (None: not asked)


@dataclass(frozen=True)
class AskForUser:
    """Ask FreshChat whether the customer's user still exists (found by its reference id)."""


@dataclass(frozen=True)
class FallBackToDefault:
    """Open it in the default channel; the route is recorded as refused and the desk told."""


@dataclass(frozen=True)
class RecreateUser:
    """Make the customer's user again, once, and open it as them; the agent is told."""


OpenStep = AskForUser | FallBackToDefault | RecreateUser | GiveUp


def after_open_refused(refused: OpenRefused) -> OpenStep:
    if refused.user_there is None:
        return AskForUser()
    if not refused.user_there:
        return RecreateUser()
    if refused.route:
        return FallBackToDefault()  # a route never hides a customer
    return GiveUp()
