"""The planner: what one queued row becomes on the other side, as a table of facts and actions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from zfsync.domain import Conversation
from zfsync.domain.outbound import ReplyAttachment, ReplyDocument, ReplyText, decode
from zfsync.sync.decide.plan import (
    OA_NOTE_HOLD,
    ClaimEcho,
    EchoFacts,
    HoldBack,
    PostTo,
    RunCommand,
    SkipEcho,
    SkipNotice,
    parse_command,
    plan_customer_message,
    plan_oa_note,
    plan_to_zalo,
)


def conversation(resolved: bool = False) -> Conversation:
    return Conversation(7, 3, "fc-open", True, resolved, 0.0, 0.0, 0.0, "", 0.0)


OPEN, RESOLVED = conversation(), conversation(resolved=True)
NOT_OURS = EchoFacts(listing_claimed=False, own_send_open=False, match=None)


@pytest.mark.parametrize(
    ("kind", "payload", "current", "previous", "echo", "action"),
    [
        # A customer's message goes to their conversation; a resolved one is opened again for the agents.
        ("text", {}, OPEN, None, None, PostTo(OPEN)),
        ("photo", {}, RESOLVED, None, None, PostTo(RESOLVED, reopen=True)),
        # No conversation yet: a new one; one before (deleted, or dropped): a new one, and the agent is told.
        ("text", {}, None, None, None, PostTo(None)),
        ("text", {}, None, "fc-gone", None, PostTo(None, replaced="fc-gone")),
        # What OA staff wrote in OA Manager reaches the agent as a note; a resolved conversation stays so.
        ("oa_note", {}, RESOLVED, None, NOT_OURS, PostTo(RESOLVED)),
        ("oa_note", {}, None, "fc-gone", NOT_OURS, PostTo(None, replaced="fc-gone")),
        # ... unless it is zfsync's own send listed back: by its id, by content, or perhaps (still sending).
        ("oa_note", {}, OPEN, None, EchoFacts(True, False, None), SkipEcho("echo of a reply zfsync sent")),
        ("oa_note", {}, OPEN, None, EchoFacts(False, False, 41), ClaimEcho(41)),
        (
            "oa_note",
            {},
            OPEN,
            None,
            EchoFacts(False, True, None),
            HoldBack("waiting for zfsync's own send to this user to settle", OA_NOTE_HOLD),
        ),
    ],
)
def test_to_freshchat(kind, payload, current, previous, echo, action):
    # The writer asks the planner of the row's post: a note to the agent, OA staff's message, or the
    # customer's.
    planned = plan_oa_note(current, previous, echo) if kind == "oa_note" else plan_customer_message(current, previous)
    assert planned == action


QUOTED = ("zm-1", "zc-1")  # the feed's id of the quoted message, and the conversation listing's
SKIP_PAID = SkipNotice("the resolve notice would be a paid message (sync.resolve_notice_when = free_reply)")


@pytest.mark.parametrize(
    ("kind", "payload", "only_when_free", "free", "action"),
    [
        ("text", {"text": "Dạ"}, True, True, ReplyText("Dạ")),
        ("text", {"text": "Dạ", "quote": "zm-1"}, True, False, ReplyText("Dạ", quote="zm-1")),
        (
            "text",
            {"text": "Dạ", "quote": "zm-1", "quote_alias": "zc-1"},
            False,
            True,
            ReplyText("Dạ", "", "zm-1", "zc-1"),
        ),
        ("image", {"url": "u"}, True, True, ReplyAttachment("u", is_image=True)),
        ("file", {"url": "u", "name": "a.pdf"}, True, True, ReplyAttachment("u", "a.pdf")),
        ("text_file", {"text": "dài"}, True, True, ReplyDocument("dài")),
        # The resolve notice goes when it is free, or always if so configured; a paid one is skipped.
        ("resolve_notice", {"text": "Cảm ơn"}, True, True, ReplyText("Cảm ơn")),
        ("resolve_notice", {"text": "Cảm ơn"}, False, False, ReplyText("Cảm ơn")),
        ("resolve_notice", {"text": "Cảm ơn"}, True, False, SKIP_PAID),
        # An agent's command is done on Zalo; an unknown one answers with the help.
        ("command", {"command": "tag", "arg": "VIP"}, True, True, RunCommand("tag", "VIP")),
        ("command", {"command": "info", "arg": ""}, True, False, RunCommand("info", "")),
        ("command", {"command": "frobnicate", "arg": "x"}, True, True, RunCommand("help", "x")),
    ],
)
def test_to_zalo(kind, payload, only_when_free, free, action):
    # The window is no longer decided here: a reply zfsync thinks is late asks Zalo first (clock, writer).
    assert plan_to_zalo(decode(kind, payload), only_when_free, free) == action


@pytest.mark.parametrize(
    ("text", "prefix", "command"),
    [
        ("/zalo info", "/zalo", ("info", "")),
        ("  /ZALO Tag  Khách VIP ", "/zalo", ("tag", "Khách VIP")),
        ("/zalo", "/zalo", ("", "")),
        ("/zaloinfo", "/zalo", None),  # not the prefix followed by a word
        ("please /zalo info", "/zalo", None),  # only at the start of the note
        ("/zalo info", "", None),  # commands turned off
        ("#zf untag VIP", "#zf", ("untag", "VIP")),
    ],
)
def test_a_private_note_is_a_command_only_when_it_starts_with_the_prefix(text, prefix, command):
    assert parse_command(text, prefix) == command


def test_what_a_message_after_a_resolve_opens():
    from zfsync.domain import Conversation
    from zfsync.sync.decide.plan import AfterResolve, PostTo, plan_customer_message

    hour = 3600.0
    resolved = Conversation(1, 1, "fc-1", True, True, 0.0, 0.0, 0.0, "", 0.0, resolved_at=100 * hour)
    open_ = replace(resolved, resolved=False)
    day = AfterResolve("reopen", 24)
    assert plan_customer_message(resolved, "fc-1", 123 * hour, day) == PostTo(resolved, reopen=True)
    assert plan_customer_message(resolved, "fc-1", 125 * hour, day) == PostTo(None, follows="fc-1")
    assert plan_customer_message(resolved, "fc-1", 9999 * hour, AfterResolve("reopen", 0)).reopen
    assert plan_customer_message(resolved, "fc-1", 100 * hour, AfterResolve("new", 24)).follows == "fc-1"
    assert plan_customer_message(open_, "fc-1", 9999 * hour, AfterResolve("new", 24)) == PostTo(open_)
    # A resolve read before schema 9 has no time: the conversation's last activity stands in.
    old = replace(resolved, resolved_at=0.0, last_activity_at=100 * hour)
    assert plan_customer_message(old, "fc-1", 125 * hour, day).follows == "fc-1"
