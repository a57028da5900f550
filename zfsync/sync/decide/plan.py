"""Plan, then act: what one queued row becomes on the other side, decided with no I/O.

A writer gathers the facts (the contact's conversation, what zfsync itself sent, the customer's window),
asks the planner for one action and carries it out; when FreshChat refuses a post, `recovery` says how to
recover, step by step. Every decision lives here, table-tested in tests/unit/test_plan.py; the writers
only talk to the APIs and the store. A row to FreshChat is one of three posts (a customer's message, OA
staff's message, a note to an agent), each with its planner.
"""

from __future__ import annotations

from dataclasses import dataclass

from zfsync.domain import Conversation
from zfsync.domain.outbound import Command, Reply, ReplyAttachment, ReplyDocument, ReplyText, ResolveNotice
from zfsync.sync.decide import render

OA_NOTE_HOLD = 1.0  # seconds: our own send usually settles within a round trip; an OA row waits behind it


# --- to FreshChat -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostTo:
    """Post the customer's message (as their FreshChat user), or OA staff's as a private note: into
    ``conversation``, or a new conversation when None (``replaced`` names the one it stands in for, so the
    agent is told)."""

    conversation: Conversation | None
    replaced: str = ""
    reopen: bool = False  # the conversation was resolved: open it again for the agents
    follows: str = ""  # a new conversation after this resolved one (`sync.after_resolve`): the note links it


@dataclass(frozen=True)
class SkipEcho:
    """The row is zfsync's own send, listed back by Zalo: nothing to post."""

    reason: str


@dataclass(frozen=True)
class ClaimEcho:
    """The row matches our send ``row_id`` whose listing is unknown yet: it is that send's echo, unless
    another listing row claimed the send first (then it is OA staff's and goes to the agent as a note)."""

    row_id: int


@dataclass(frozen=True)
class HoldBack:
    """Not yet: offered again after ``delay`` seconds (no failure, no attempt counted)."""

    reason: str
    delay: float


@dataclass(frozen=True)
class EchoFacts:
    """What the store knows of zfsync's own sends to the contact, for an OA row in Zalo's listings."""

    listing_claimed: bool  # the row's id is a send's id, or already matched to one
    own_send_open: bool  # one of our sends to this contact has no known outcome yet
    match: int | None  # a send of ours with this content and no listing row yet


ToFreshChat = PostTo | SkipEcho | ClaimEcho | HoldBack


@dataclass(frozen=True)
class AfterResolve:
    """What a customer's message after a resolve opens (``sync.after_resolve``, ``sync.reopen_within_hours``):
    "reopen" the resolved conversation within so many hours of the resolve (0: however long), a new one
    after; "new" always a new one."""

    mode: str = "reopen"
    within_hours: float = 24.0

    def opens_new(self, resolved: Conversation, now: float) -> bool:
        if self.mode == "new":
            return True
        if not self.within_hours:
            return False
        # A resolve read before schema 9 has no time: its conversation's last activity stands in.
        resolved_at = resolved.resolved_at or resolved.last_activity_at
        return now - resolved_at > self.within_hours * 3600


def plan_customer_message(
    current: Conversation | None, previous: str | None, now: float = 0.0, after: AfterResolve | None = None
) -> PostTo:
    """``current``: the contact's conversation to post to; ``previous``: the FreshChat id of their newest
    one, current or not; ``after``: what a message after a resolve opens (reopen, by default)."""
    if current is None:
        # A customer with a conversation before (deleted in FreshChat, or dropped by an operator) gets a
        # new one, and the agent a note saying why.
        return PostTo(None, replaced=previous or "")
    if current.resolved and after is not None and after.opens_new(current, now):
        return PostTo(None, follows=current.fc_conversation_id)
    return PostTo(current, reopen=current.resolved)


def plan_oa_note(
    current: Conversation | None, previous: str | None, echo: EchoFacts
) -> PostTo | SkipEcho | HoldBack | ClaimEcho:
    """An OA row of Zalo's listings: zfsync's own send listed back, or what OA staff wrote."""
    if echo.listing_claimed:
        return SkipEcho("echo of a reply zfsync sent")
    if echo.own_send_open:
        return HoldBack("waiting for zfsync's own send to this user to settle", OA_NOTE_HOLD)
    if echo.match is not None:
        return ClaimEcho(echo.match)
    return oa_note(current, previous)


def oa_note(current: Conversation | None, previous: str | None) -> PostTo:
    """Where an OA staff message goes: also what a `ClaimEcho` becomes when the send was claimed first."""
    return PostTo(current) if current is not None else PostTo(None, replaced=previous or "")


# --- to Zalo ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunCommand:
    """An agent's "/zalo ..." note: ``name`` is one of `COMMANDS` (anything else: help)."""

    name: str
    arg: str


@dataclass(frozen=True)
class SkipNotice:
    """The resolve notice would be a paid message (``sync.resolve_notice_when = "free_reply"``)."""

    reason: str


ToZalo = ReplyText | ReplyAttachment | ReplyDocument | RunCommand | SkipNotice  # a reply is sent as it is

COMMANDS = ("info", "tag", "untag", "status", "retry", "template", "help")


def plan_to_zalo(reply: Reply, notice_only_when_free: bool = False, reply_free: bool = True) -> ToZalo:
    """What a reply on its way to Zalo becomes. The window is not decided here: a reply outside it is held
    back only once Zalo's own view agrees (`zfsync.sync.decide.zalo_clocks`)."""
    if isinstance(reply, Command):
        return RunCommand(reply.name if reply.name in COMMANDS else "help", reply.arg)
    if isinstance(reply, ResolveNotice) and notice_only_when_free and not reply_free:
        return SkipNotice("the resolve notice would be a paid message (sync.resolve_notice_when = free_reply)")
    if isinstance(reply, ResolveNotice):
        return ReplyText(reply.text, reply.agent_id)  # the notice is a text like any other
    return reply


def parse_command(text: str, prefix: str) -> tuple[str, str] | None:
    """An agent's private note that is a command (``prefix`` then a name and an argument), or None."""
    stripped = text.strip()
    if not prefix or not stripped.lower().startswith(prefix.lower()):
        return None
    rest = stripped[len(prefix) :]
    if rest and not rest[0].isspace():
        return None  # "/zaloabc" is not "/zalo abc"
    name, _, arg = rest.strip().partition(" ")
    # An argument is one plain line (a tag with a newline or a control character is no tag).
    return name.lower(), render.one_line(arg, len(arg) + 1)
