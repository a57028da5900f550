"""Recovering a post FreshChat refused: the next step for each state of what is known, and whole
sequences as the poster walks them (each step's finding fed back)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from zfsync.sync.decide.recovery import (
    Adopt,
    AskForUser,
    FallBackToDefault,
    FindNewest,
    Follow,
    GiveUp,
    OpenNew,
    OpenRefused,
    PostInto,
    PostRefused,
    RecreateUser,
    after_open_refused,
    after_post_refused,
)

NOT_LATEST = PostRefused("fc-1", not_latest=True, status=400)


@pytest.mark.parametrize(
    ("refused", "step"),
    [
        # Not the customer's latest conversation: find their newest; none: a new one.
        (NOT_LATEST, FindNewest()),
        (replace(NOT_LATEST, newest=""), OpenNew()),
        # Their newest: follow it, and look there first (FreshChat may have opened it *with* the message).
        (replace(NOT_LATEST, newest="fc-2"), Follow("fc-2")),
        (replace(NOT_LATEST, newest="fc-2", found="fm-9"), Adopt("fm-9", "fc-2")),
        (replace(NOT_LATEST, newest="fc-2", found=""), PostInto("fc-2")),
        # Deleted in FreshChat (404): forgotten, and a new one says which it replaces.
        (PostRefused("fc-1", status=404), OpenNew(replaced="fc-1", forget=True)),
        # Any other refusal is the row's failure, whatever was found.
        (PostRefused("fc-1", status=400), GiveUp()),
        (PostRefused("fc-1", status=403, newest="fc-2"), GiveUp()),
        (PostRefused("fc-1"), GiveUp()),
    ],
)
def test_a_refused_post(refused, step):
    assert after_post_refused(refused) == step


@pytest.mark.parametrize(
    ("refused", "step"),
    [
        (OpenRefused(route=0), AskForUser()),
        (OpenRefused(route=2), AskForUser()),
        # The user is there: a routed conversation falls back to the default channel; unrouted, it fails.
        (OpenRefused(route=2, user_there=True), FallBackToDefault()),
        (OpenRefused(route=0, user_there=True), GiveUp()),
        # The user is gone (deleted in FreshChat): made again, routed or not.
        (OpenRefused(route=0, user_there=False), RecreateUser()),
        (OpenRefused(route=2, user_there=False), RecreateUser()),
    ],
)
def test_a_refused_new_conversation(refused, step):
    assert after_open_refused(refused) == step


def walk(refused: PostRefused, newest: str, found: str) -> list[object]:
    """The steps a refused post takes when FreshChat answers ``newest`` and ``found``."""
    steps: list[object] = []
    while True:
        step = after_post_refused(refused)
        steps.append(step)
        if isinstance(step, FindNewest):
            refused = replace(refused, newest=newest)
        elif isinstance(step, Follow):
            refused = replace(refused, found=found)
        else:
            return steps


@pytest.mark.parametrize(
    ("newest", "found", "steps"),
    [
        ("fc-2", "fm-9", [FindNewest(), Follow("fc-2"), Adopt("fm-9", "fc-2")]),
        ("fc-2", "", [FindNewest(), Follow("fc-2"), PostInto("fc-2")]),
        ("", "", [FindNewest(), OpenNew()]),
    ],
)
def test_the_whole_recovery_of_a_post_into_a_conversation_that_is_not_the_latest(newest, found, steps):
    assert walk(NOT_LATEST, newest, found) == steps
