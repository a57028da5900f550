"""A stopping daemon does not wait out its quota: a call waiting for room gives up at once."""

from __future__ import annotations

import threading

import pytest

from zfsync.domain.errors import Stopping
from zfsync.sides.priority import Priority
from zfsync.sides.quota import Quota


def test_a_call_waiting_for_room_gives_up_when_the_daemon_stops():
    quota = Quota("freshchat", 60)  # real clocks; the wait below would last most of a minute
    while quota.available(Priority.FEED):
        quota.acquire(Priority.FEED)
    outcome: list[BaseException] = []

    def waiting_call() -> None:
        try:
            quota.acquire(Priority.FEED)
        except Stopping as exc:
            outcome.append(exc)

    caller = threading.Thread(target=waiting_call)
    caller.start()
    quota.stop()
    caller.join(timeout=5)  # woken by stop(), not by the minute's end
    assert not caller.is_alive() and outcome and "stopping" in str(outcome[0])
    with pytest.raises(Stopping):
        quota.acquire(Priority.SEND)  # nothing new starts either
