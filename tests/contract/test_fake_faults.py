"""A fault injected into an in-memory fake raises what the real client raises when the simulator answers
with the same fault: the engine's tests run on the fakes, so their errors must not drift from the client's
(the class, Zalo's code or FreshChat's status, and whether it is worth a retry)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from zfsync.domain import FcNewUser, ZaloTokens
from zfsync.domain.errors import RemoteError
from zfsync.sides.freshchat.client import FreshChatClient
from zfsync.sides.quota import Quota
from zfsync.sides.zalo.client import ZaloClient
from zfsync.sides.zalo.oauth import TokenKeeper, ZaloOAuth
from zfsync.sim.base import Fault
from zfsync.sim.fakes import FakeFreshChat, FakeZalo
from zfsync.sim.freshchat import FreshChatSim
from zfsync.sim.inprocess import session_for
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store

ZALO, OAUTH, FC = "https://openapi.zalo.me", "https://oauth.zaloapp.com", "https://acme.freshchat.com"
USER = "2512007384617209999"
FEED, SEND = "/v2.0/oa/listrecentchat", "/v3.0/oa/message/cs"

ZALO_FAULTS = [
    Fault(FEED, "timeout"),
    Fault(FEED, "reset"),
    Fault(FEED, "html"),
    Fault(FEED, "malformed"),
    Fault(FEED, "status", code=503),
    Fault(FEED, "status", code=429, seconds=20),
    Fault(FEED, "zalo_error", code=-32),
    Fault(SEND, "zalo_error", code=-213, message="User has not followed the OA"),
    Fault(SEND, "zalo_error", code=-230),
    Fault(SEND, "zalo_error", code=-201, message="quote_message_id is invalid!"),
    Fault(SEND, "zalo_error", code=-223, message="OA has no permission"),
]
FRESHCHAT_FAULTS = [
    Fault("/v2/users", "timeout"),
    Fault("/v2/users", "reset"),
    Fault("/v2/users", "html"),
    Fault("/v2/users", "status", code=502),
    Fault("/v2/users", "status", code=429, seconds=30),
    Fault("/v2/users", "status", code=401),
    Fault("/v2/users", "status", code=404, message="user not found"),
]


def raised(call: Callable[[], Any]) -> RemoteError:
    with pytest.raises(RemoteError) as caught:
        call()
    return caught.value


def signature(error: RemoteError) -> tuple[Any, ...]:
    """What the engine reads of an error: its class (a retry or not), Zalo's code or FreshChat's status
    constant, the HTTP status, where it came from."""
    return type(error), error.code, error.status, error.side, error.endpoint


def zalo_call(side: Any, fault: Fault) -> Callable[[], Any]:
    if fault.path == SEND:
        return lambda: side.send_text(USER, "Dạ")
    return lambda: side.recent_messages(0)


@pytest.mark.parametrize("fault", ZALO_FAULTS, ids=lambda f: f"{f.path.rsplit('/', 1)[-1]}-{f.kind}-{f.code}")
def test_a_zalo_fault_raises_on_the_fake_what_the_client_raises(fault: Fault, tmp_path: Path) -> None:
    sim, fake = ZaloSim(), FakeZalo()
    for side in (sim, fake):
        side.add_customer_message(USER, "Khánh", text="chào shop")  # a customer inside the window
    store = Store.open(tmp_path / "z.db")
    store.save_tokens(ZaloTokens(*sim.mint_tokens(), 90_000), sim.now())
    session = session_for(sim, ZALO)
    client = ZaloClient(ZALO, TokenKeeper(ZaloOAuth(OAUTH, "app", "s", session), store, sim.now), session)
    sim.faults.append(replace(fault))  # each side spends its own copy
    fake.faults.append(replace(fault))
    try:
        assert signature(raised(zalo_call(fake, fault))) == signature(raised(zalo_call(client, fault)))
    finally:
        store.close()


@pytest.mark.parametrize("fault", FRESHCHAT_FAULTS, ids=lambda f: f"{f.kind}-{f.code}")
def test_a_freshchat_fault_raises_on_the_fake_what_the_client_raises(fault: Fault) -> None:
    sim, fake = FreshChatSim(), FakeFreshChat()
    client = FreshChatClient(FC, "sim-key", session_for(sim, FC), quota=Quota("freshchat", 100_000))
    sim.faults.append(replace(fault))  # each side spends its own copy
    fake.faults.append(replace(fault))
    user = FcNewUser("zalo-1", "Khánh Zalo")
    got = signature(raised(lambda: fake.create_user(user)))
    assert got == signature(raised(lambda: client.create_user(user)))
