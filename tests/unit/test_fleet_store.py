"""A fleet's tenants and leases in the store: claimed once, renewed, run out, fenced, shared."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from zfsync.domain.errors import StoreError
from zfsync.store import Store, in_memory
from zfsync.store import fleet as fleet_module
from zfsync.store.fleet import LEASE_SECONDS


@pytest.fixture
def store(monkeypatch):
    now = [1_000.0]
    monkeypatch.setattr(fleet_module.time, "time", lambda: now[0])
    opened = Store.open(Path(in_memory(f"fleet-{uuid.uuid4().hex}")))
    opened.now = now  # type: ignore[attr-defined]
    for name in ("a", "b", "c", "d"):
        opened.add_tenant(name, "[zalo]\n", "sealed", "app-1")
    yield opened
    opened.close()


def test_a_tenant_is_claimed_by_one_daemon_until_its_lease_runs_out(store):
    first = store.claim_tenants("vm1 1", 3)
    assert [t.name for t in first] == ["a", "b", "c"] and all(t.fence == 1 for t in first)
    assert [t.name for t in store.claim_tenants("vm2 2", 10)] == ["d"]  # only what nobody holds
    store.now[0] += LEASE_SECONDS - 1
    _, held = store.renew_leases("vm1 1")
    assert [t.name for t in held] == ["a", "b", "c"]
    store.now[0] += 2  # vm2 never renewed: d is free again, and fenced anew when taken
    (taken,) = store.claim_tenants("vm1 1", 10)
    assert (taken.name, taken.fence) == ("d", 2)
    _, held = store.renew_leases("vm2 2")
    assert held == []  # vm2 learns it holds nothing


def test_a_paused_tenant_is_not_claimed_and_a_released_one_is(store):
    store.set_paused("a", True)
    assert [t.name for t in store.claim_tenants("vm1 1", 10)] == ["b", "c", "d"]
    store.release_tenant("vm1 1", store.tenant_named("b").id)
    store.release_tenant("vm2 2", store.tenant_named("c").id)  # not its to release: nothing happens
    assert [t.name for t in store.claim_tenants("vm2 2", 10)] == ["b"]
    assert store.tenant_named("c").owner == "vm1 1"


def test_live_daemons_share_the_active_tenants(store):
    assert store.beat("vm1 1", 0) == 1 and store.share(1) == 4
    assert store.beat("vm2 2", 0) == 2 and store.share(2) == 2
    store.set_paused("a", True)
    assert store.share(2) == 2 and store.share(3) == 1
    store.now[0] += LEASE_SECONDS + 1
    assert store.beat("vm1 1", 0) == 1  # vm2 fell silent
    assert store.live_members() == ["vm1 1"]


def test_dropping_a_tenant_deletes_its_rows_only(store):
    a, b = (store.for_tenant(store.tenant_named(n).id) for n in ("a", "b"))
    for view in (a, b):
        view.set_state("k", "v")
    deleted = store.drop_tenant(store.tenant_named("a").id)
    assert deleted["state"] == 1 and store.tenant_named("a") is None
    assert a.get_state("k") is None and b.get_state("k") == "v"
    with pytest.raises(StoreError, match="tenant b exists already"):
        store.add_tenant("b", "", "", "")


def test_each_daemon_notes_its_feeds_and_reads_every_live_daemons(store):
    store.beat("vm1 1", 2, {"app-1": (20, 80)})
    store.beat("vm2 2", 2, {"app-1": (0, 100), "app-2": (1, 0)})
    assert store.fleet_feeds() == {"app-1": (20, 180), "app-2": (1, 0)}
    store.now[0] += LEASE_SECONDS + 1
    store.beat("vm1 1", 2, {"app-1": (5, 95)})  # vm2 fell silent: its feeds no longer count
    assert store.fleet_feeds() == {"app-1": (5, 95)}
