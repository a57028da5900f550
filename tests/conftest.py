from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools import pgcluster
from devtools.drive import Drive
from zfsync import i18n
from zfsync.config import Settings, from_mapping
from zfsync.domain import ZaloTokens
from zfsync.runtime.app import build_clients, build_engine
from zfsync.sides.quota import Quota
from zfsync.sim.base import SimServer
from zfsync.sim.fakes import FakeClock, FakeFreshChat, FakeZalo
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.inprocess import session_for
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store, in_memory
from zfsync.sync.engine import Engine


@pytest.fixture(autouse=True)
def english_desk() -> Iterator[None]:
    """The suite reads zfsync's notes in English (test_i18n checks the Vietnamese default and both
    catalogues); a test that builds an engine or a CLI in another language leaves none behind."""
    i18n.use("en")
    yield
    i18n.use("en")


def make_settings(zalo_url: str, freshchat_url: str, store_path: Path, store_url: str = "", **sync: object) -> Settings:
    sync = {"language": "en", **sync}
    templates = sync.pop("templates", [])  # [[template]] tables, given as a list of dicts
    routes = sync.pop("routes", [])  # [[route]] tables, likewise
    raw = {
        # The in-process simulators answer at made-up http hosts: no secret leaves the process.
        "zalo": {"app_id": "sim-app", "api_url": zalo_url, "oauth_url": zalo_url, "allow_insecure_http": True},
        "freshchat": {"api_url": freshchat_url, "channel_id": CHANNEL_ID, "allow_insecure_http": True},
        "store": {"path": str(store_path), "url": store_url},
        "sync": dict(sync),
        "template": templates,
        "route": routes,
    }
    secrets = {"ZFSYNC_ZALO_APP_SECRET": "sim-secret", "ZFSYNC_FRESHCHAT_API_KEY": "sim-key"}
    return from_mapping(raw, {**secrets, "ZFSYNC_STORE_PASSWORD": pgcluster.PASSWORD})


FAKES, SIMS, SIMS_IN_PROCESS = "fakes", "sims", "sims-in-process"


@dataclass
class Bridge:
    """The engine between the two sides, a store and a fake clock, driven by hand through the daemon's own
    steps (`drive`). The sides are the in-memory fakes (``backend`` "fakes": the core's behaviour, in
    milliseconds) or both simulators, over loopback HTTP ("sims") or without sockets ("sims-in-process");
    tests steer either in the simulators' words and read what each side received through the views below."""

    zalo: Any  # ZaloSim | FakeZalo: both take the same control calls
    fc: Any  # FreshChatSim | FakeFreshChat
    zalo_url: str
    fc_url: str
    settings: Settings
    clock: FakeClock
    store: Store
    engine: Engine
    backend: str = SIMS
    driven: Drive | None = None

    @property
    def in_process(self) -> bool:
        """Whether the simulators are reached without sockets."""
        return self.backend == SIMS_IN_PROCESS

    @property
    def drive(self) -> Drive:
        """The daemon's steps over this engine, run in the test's thread."""
        if self.driven is None or self.driven.engine is not self.engine or self.driven.steps.store is not self.store:
            self.driven = Drive(self.settings, self.store, self.engine)
        return self.driven

    def restart(self) -> None:
        """What a daemon restart keeps: the database, nothing in memory (an in-memory store lives on
        while the new daemon's connection holds it)."""
        old = self.store
        self.store = open_store(self.settings)
        old.close()
        self.engine = make_engine(self)

    def reconfigure(self, **sync: object) -> None:
        """Restart with other ``[sync]`` settings."""
        self.settings = make_settings(
            self.zalo_url, self.fc_url, self.settings.store_path, self.settings.store_url, **sync
        )
        self.restart()

    def cycle(self, times: int = 1) -> None:
        for _ in range(times):
            self.drive.zalo()
            self.clock.advance(self.settings.freshchat.hot_interval)
            self.drive.freshchat()

    def settle(self, rounds: int = 8, step: float = 5.0) -> None:
        """Run cycles, moving the clock past any backoff, until nothing is left to do."""
        for _ in range(rounds):
            self.cycle()
            self.clock.advance(step)

    # what each side received
    def customer_messages(self, user_id: str) -> list[dict]:
        state = self.fc_state()
        ref = f"zalo-{user_id}"
        users = {u["id"] for u in state["users"] if u["reference_id"] == ref}
        return [
            m
            for c in state["conversations"]
            if c["user_id"] in users
            for m in c["messages"]
            if m["actor_type"] == "user"
        ]

    def notes(self) -> list[dict]:
        return [
            m for c in self.fc_state()["conversations"] for m in c["messages"] if m.get("message_type") == "private"
        ]

    def fc_state(self) -> dict:
        """FreshChat's users and conversations with their messages, in its JSON."""
        return self.fc.state()

    def conversation(self, conversation_id: str) -> dict:
        """One FreshChat conversation with its messages, in FreshChat's JSON."""
        (found,) = [c for c in self.fc_state()["conversations"] if c["conversation_id"] == conversation_id]
        return found

    def conversation_of(self, user_id: str) -> str:
        conversation = self.fc.conversation_of(user_id)
        assert conversation is not None, f"no FreshChat conversation for Zalo user {user_id}"
        return conversation

    def written_by(self, user_id: str) -> list[str]:
        """What a customer wrote on Zalo, in Zalo's order."""
        if self.backend == FAKES:
            return [m.content.text for m in self.zalo.messages if m.user_id == user_id and not m.from_oa]
        return [row["message"] for row in self.zalo.messages if row["from_id"] == user_id]

    def sent_to(self, user_id: str) -> list[str]:
        return [s["text"] for s in self.zalo.sent if s["user_id"] == user_id]

    def sent_records(self, user_id: str) -> list[dict]:
        return [s for s in self.zalo.sent if s["user_id"] == user_id]


def make_engine(b: Bridge, sleep: Callable[[float], None] | None = None) -> Engine:
    """The engine over the bridge's store; a quota that must wait moves the fake clock (or calls ``sleep``,
    on the simulators: the fakes' budgets wait on the bridge's clock, set in `fake_sides`)."""
    if b.backend == FAKES:
        assert sleep is None, "the fakes' budgets wait on the bridge's clock: run this test on the simulators"
        return build_engine(b.settings, b.store, b.zalo, b.fc, b.clock, lane_threads=False)
    sessions = (session_for(b.zalo, b.zalo_url), session_for(b.fc, b.fc_url)) if b.in_process else (None, None)
    clients = build_clients(b.settings, b.store, b.clock, *sessions, sleep=sleep or b.clock.advance)
    return build_engine(b.settings, b.store, clients.zalo, clients.freshchat, b.clock, lane_threads=False)


def open_store(settings: Settings) -> Store:
    return Store.open(settings.store_location, settings.store_password)


def start_bridge(
    tmp_path: Path,
    zalo: ZaloSim,
    fc: FreshChatSim,
    zalo_url: str,
    fc_url: str,
    in_process: bool = False,
    store_url: str = "",
    **sync: object,
) -> Bridge:
    settings = make_settings(zalo_url, fc_url, tmp_path / "zfsync.db", store_url, **sync)
    clock = FakeClock()
    store = open_store(settings)
    access, refresh = zalo.mint_tokens()
    store.save_tokens(ZaloTokens(access, refresh, 90_000), clock())
    backend = SIMS_IN_PROCESS if in_process else SIMS
    b = Bridge(zalo, fc, zalo_url, fc_url, settings, clock, store, None, backend)  # type: ignore[arg-type]
    b.engine = make_engine(b)
    b.cycle()  # the first cycle sets the baseline, as on a real first start
    return b


def fake_sides(clock: FakeClock) -> tuple[FakeZalo, FakeFreshChat]:
    """Both fakes on ``clock``, with budgets no test runs out of (a wait moves the clock)."""
    zalo = FakeZalo(clock=clock, quota=Quota("zalo", 100_000, clock, clock, clock.advance, minute_windows=True))
    fc = FakeFreshChat(clock=clock, quota=Quota("freshchat", 100_000, clock, clock, clock.advance))
    return zalo, fc


def start_fakes_bridge(
    store_url: str = "", sides: tuple[FakeZalo, FakeFreshChat] | None = None, **sync: object
) -> Bridge:
    """The engine on the in-memory fakes (``sides``, with what they hold already, or new ones) and, unless
    ``store_url`` names PostgreSQL, an in-memory store."""
    clock = sides[0].clock if sides else FakeClock()
    zalo, fc = sides or fake_sides(clock)  # type: ignore[arg-type]
    # Named afresh each time: this module may be imported twice (as pytest's conftest and as tests.conftest),
    # and a store left open by a test must never be found by the next one.
    memory = Path(in_memory(f"zfsync-test-{uuid.uuid4().hex}"))
    settings = make_settings("http://zalo.fake", "http://freshchat.fake", memory, store_url, **sync)
    urls = ("http://zalo.fake", "http://freshchat.fake")
    b = Bridge(zalo, fc, *urls, settings, clock, open_store(settings), None, FAKES)  # type: ignore[arg-type]
    b.engine = make_engine(b)
    b.cycle()  # the first cycle sets the baseline, as on a real first start
    return b


STORE_ENV = "ZFSYNC_TEST_STORE"  # "postgres": every bridge of the suite on PostgreSQL (SQLite by default)
_databases = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pgcluster.Cluster]:
    """A throwaway PostgreSQL for the whole run; skipped with the reason where it cannot be had, never on CI."""
    try:
        cluster = pgcluster.Cluster()
    except pgcluster.Unavailable as exc:
        if os.environ.get("CI") or os.environ.get("ZFSYNC_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is needed on CI: {exc}")
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: pgcluster.Cluster) -> str:
    """A new empty database of the throwaway cluster."""
    return pg_cluster.create_database(f"test_{next(_databases)}")


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """Where the bridges of this test keep their store: "" for SQLite, or a PostgreSQL URL."""
    return str(request.getfixturevalue("pg_url")) if os.environ.get(STORE_ENV) == "postgres" else ""


@pytest.fixture
def bridge(request: pytest.FixtureRequest, tmp_path: Path, store_url: str) -> Iterator[Bridge]:
    """The one scenario fixture. A test (or its module's ``pytestmark``) chooses the sides with
    ``@pytest.mark.parametrize("bridge", [...], indirect=True)``: "fakes" (the default: the engine's
    behaviour on in-memory fakes and an in-memory store), "sims" (both simulators on loopback HTTP: the
    whole stack, sockets included) or "sims-in-process" (the simulators without sockets, sharing the fake
    clock: many cycles or hours of time through the real clients)."""
    backend = getattr(request, "param", FAKES)
    if backend == FAKES:
        b = start_fakes_bridge(store_url)
        yield b
        b.store.close()
    elif backend == SIMS:
        zalo_server, fc_server = SimServer(ZaloSim()).start(), SimServer(FreshChatSim()).start()
        b = start_bridge(tmp_path, zalo_server.app, fc_server.app, zalo_server.url, fc_server.url, store_url=store_url)  # type: ignore[arg-type]
        yield b
        b.store.close()
        zalo_server.stop()
        fc_server.stop()
    else:
        zalo, fc = ZaloSim(), FreshChatSim()
        clock_holder: list[FakeClock] = []
        zalo.clock = fc.clock = lambda: clock_holder[0]() if clock_holder else time.time()
        b = start_bridge(
            tmp_path, zalo, fc, "http://zalo.sim", "http://freshchat.sim", in_process=True, store_url=store_url
        )
        clock_holder.append(b.clock)
        yield b
        b.store.close()


def on(*backends: str) -> pytest.MarkDecorator:
    """Run a test's ``bridge`` on these sides (the default is the fakes)."""
    return pytest.mark.parametrize("bridge", backends, indirect=True)


@pytest.fixture
def sims() -> Iterator[tuple[SimServer, SimServer]]:
    """Both simulators on loopback HTTP, for tests that run the real `zfsync` process against them."""
    zalo, fc = SimServer(ZaloSim()).start(), SimServer(FreshChatSim()).start()
    yield zalo, fc
    zalo.stop()
    fc.stop()


def store_section(store_path: Path, store_url: str = "") -> str:
    """The ``[store]`` of a config file for the CLI: the bridge's SQLite file or PostgreSQL database."""
    return f'[store]\npath = "{store_path}"\nurl = "{store_url}"\n'


def cli_config(tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch, store_url: str = "") -> Path:
    """A config file for running the CLI against a bridge's store (the APIs are never called)."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[zalo]\napp_id = "1"\n[freshchat]\napi_url = "https://x.freshchat.com"\nchannel_id = "c"\n'
        + store_section(store_path, store_url),
        encoding="utf-8",
    )
    monkeypatch.setenv("ZFSYNC_ZALO_APP_SECRET", "s")
    monkeypatch.setenv("ZFSYNC_FRESHCHAT_API_KEY", "k")
    monkeypatch.setenv("ZFSYNC_STORE_PASSWORD", pgcluster.PASSWORD)
    return config
