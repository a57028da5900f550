"""A fleet through the real `zfsync` command: tenants taken in, authorised and served by one daemon, paused,
resumed and removed; their secrets sealed in the store. Two OAs whose customers have the same Zalo id
and whose FreshChat accounts hand out the same ids stay apart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from devtools import pgcluster
from tests.integration.test_daemon import until, zfsync
from zfsync.domain import NewRow, ZaloContent, ZaloTokens
from zfsync.runtime.status import STARTS_KEY
from zfsync.sim.base import Fault, SimServer
from zfsync.sim.freshchat import CHANNEL_ID, FreshChatSim
from zfsync.sim.zalo import ZaloSim
from zfsync.sim.zalo_host import ZaloHost
from zfsync.store import Store
from zfsync.store.secrets import Sealer, new_key

KEY = new_key()

SECRETS = {
    "a": ("fc-key-of-shop-a-9d1f", "zalo-secret-of-shop-a-77"),
    "b": ("fc-key-of-shop-b-4e2a", "zalo-secret-of-shop-b-31"),
}


@pytest.fixture
def desks():
    """Two OAs, each with its simulators."""
    servers = {
        name: (SimServer(ZaloSim(app_secret=zalo_secret)).start(), SimServer(FreshChatSim(api_key=fc_key)).start())
        for name, (fc_key, zalo_secret) in SECRETS.items()
    }
    yield servers
    for zalo, fc in servers.values():
        zalo.stop()
        fc.stop()


def write_fleet(tmp_path: Path, store_url: str = "", daemon_name: str = "", fleet_keys: str = "") -> Path:
    fleet = tmp_path / "fleet.toml"
    store = f'url = "{store_url}"\n' if store_url else 'path = "fleet.db"\n'
    name = f'daemon_name = "{daemon_name}"\n' if daemon_name else ""
    fleet.write_text(
        f'[fleet]\nquiet_after = 60\n{fleet_keys}{name}[store]\n{store}[log]\nformat = "json"\n'
        '[metrics]\ntextfile = "fleet.prom"\ninterval = 1\n'
    )
    env = tmp_path / "zfsync.env"
    env.write_text(f"ZFSYNC_SECRETS_KEY={new_key()}\n")
    env.chmod(0o600)
    return fleet


def write_tenant(
    tmp_path: Path, name: str, zalo_url: str, fc_url: str, secrets: tuple[str, str] | None = None
) -> tuple[Path, Path]:
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f'[zalo]\napp_id = "sim-app"\napi_url = "{zalo_url}"\noauth_url = "{zalo_url}"\npoll_interval = 1\n'
        "allow_insecure_http = true\n"
        f'[freshchat]\napi_url = "{fc_url}"\nchannel_id = "{CHANNEL_ID}"\nhot_interval = 1\n'
        "allow_insecure_http = true\n"
        f'[sync]\nlanguage = "{"en" if name == "a" else "vi"}"\n'
    )
    env = tmp_path / f"{name}.env"
    fc_key, zalo_secret = secrets or SECRETS[name]
    env.write_text(f"ZFSYNC_FRESHCHAT_API_KEY={fc_key}\nZFSYNC_ZALO_APP_SECRET={zalo_secret}\n")
    env.chmod(0o600)
    return config, env


def take_in(fleet: Path, tmp_path: Path, desks: dict) -> dict[str, str]:
    """Both tenants added and authorised; returns each one's refresh token."""
    tokens = {}
    for name, (zalo, fc) in desks.items():
        config, env = write_tenant(tmp_path, name, zalo.url, fc.url)
        added = zfsync(fleet, "tenant", "add", name, "--config", str(config), "--env", str(env), "--no-check")
        assert added.returncode == 0, added.stderr
        tokens[name] = zalo.app.mint_tokens()[1]
        auth = zfsync(fleet, "auth", "zalo", "--tenant", name, f"--refresh-token={tokens[name]}")
        assert auth.returncode == 0, auth.stderr
    return tokens


def start(fleet: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zfsync", "--config", str(fleet), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
    )


def polled(fleet: Path, *names: str) -> bool:
    """Whether each tenant's Zalo feed was read once (its baseline set: what comes next crosses)."""
    reports = [zfsync(fleet, "status", "--tenant", name, "--json").stdout for name in names]
    return all(r and json.loads(r)["sides"]["zalo"]["state"] == "OK" for r in reports)


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return out


def customer_texts(fc: FreshChatSim) -> list[str]:
    return [
        p["text"]["content"]
        for c in fc.state()["conversations"]
        for m in c["messages"]
        if m["actor_type"] == "user"
        for p in m["message_parts"]
        if "text" in p
    ]


def test_one_daemon_serves_two_tenants_with_the_same_ids_apart_and_seals_their_secrets(desks, tmp_path):
    fleet = write_fleet(tmp_path)
    tokens = take_in(fleet, tmp_path, desks)
    listed = zfsync(fleet, "tenant", "list", "--json")
    assert [t["name"] for t in json.loads(listed.stdout)] == ["a", "b"], listed.stderr
    process = start(fleet)
    try:
        assert until(lambda: polled(fleet, "a", "b")), stop(process)
        for name, (zalo, _) in desks.items():
            zalo.app.add_customer_message("7001", "Lan", text=f"xin chào {name}")
        assert until(lambda: all(customer_texts(fc.app) for _, fc in desks.values())), stop(process)
        for name, (_, fc) in desks.items():
            assert customer_texts(fc.app) == [f"xin chào {name}"]
            conversation = fc.app.conversation_of("7001")
            fc.app.add_agent_message(conversation, f"trả lời {name}")
        assert until(lambda: all(zalo.app.sent for zalo, _ in desks.values())), stop(process)
        for name, (zalo, _) in desks.items():
            assert [s["text"] for s in zalo.app.sent] == [f"trả lời {name}"]
        # Paused: a customer's message waits in Zalo; resumed: it crosses, once.
        assert zfsync(fleet, "tenant", "pause", "a").returncode == 0
        assert until(lambda: "paused" in zfsync(fleet, "status").stdout)
        assert until(lambda: json.loads(zfsync(fleet, "tenant", "list", "--json").stdout)[0]["owner"] == "")
        desks["a"][0].app.add_customer_message("7001", "Lan", text="còn hàng không?")
        desks["b"][0].app.add_customer_message("7001", "Lan", text="b vẫn chạy")
        assert until(lambda: "b vẫn chạy" in customer_texts(desks["b"][1].app)), stop(process)
        assert "còn hàng không?" not in customer_texts(desks["a"][1].app)
        assert zfsync(fleet, "tenant", "resume", "a").returncode == 0
        assert until(lambda: "còn hàng không?" in customer_texts(desks["a"][1].app)), stop(process)
        status = zfsync(fleet, "status", "--json")
        shown = json.loads(status.stdout)
        assert [t["state"] for t in shown["tenants"]] == ["healthy", "healthy"], status.stdout
        assert all(t["owner"] for t in shown["tenants"])
        one = zfsync(fleet, "status", "--tenant", "b", "--json")
        assert json.loads(one.stdout)["sides"]["zalo"]["state"] == "OK", one.stdout
        prom = tmp_path / "fleet.prom"
        wanted = [f'zfsync_messages_total{{direction="z2f",kind="text",tenant="{t}"}} 2.0' for t in "ab"]
        assert until(lambda: prom.exists() and all(w in prom.read_text() for w in wanted)), prom.read_text()
        assert 'zfsync_fleet_tenants{state="served"} 2.0' in prom.read_text()
    finally:
        out = stop(process)
    assert customer_texts(desks["a"][1].app) == ["xin chào a", "còn hàng không?"]
    assert [s["text"] for s in desks["b"][0].app.sent] == ["trả lời b"]
    # The store holds no secret in clear: neither API key, nor app secret, nor any token.
    dump = b"".join(p.read_bytes() for p in tmp_path.glob("fleet.db*"))
    for fc_key, zalo_secret in SECRETS.values():
        assert fc_key.encode() not in dump and zalo_secret.encode() not in dump
    for token in tokens.values():
        assert token.encode() not in dump
    for secret in [*(s for pair in SECRETS.values() for s in pair), *tokens.values()]:
        assert secret not in out  # nor in the log
    shown_b = json.loads(zfsync(fleet, "tenant", "show", "b", "--json").stdout)
    assert shown_b["secrets"] == {"ZFSYNC_FRESHCHAT_API_KEY": "set", "ZFSYNC_ZALO_APP_SECRET": "set"}
    assert SECRETS["b"][0] not in json.dumps(shown_b)


def test_remove_refuses_while_messages_wait_and_tenant_commands_say_what_is_wrong(desks, tmp_path):
    fleet = write_fleet(tmp_path)
    take_in(fleet, tmp_path, desks)
    process = start(fleet)
    try:
        assert until(lambda: polled(fleet, "a")), stop(process)
        zalo, fc = desks["a"]
        fc.app.faults.append(Fault("/v2/", "status", count=100_000, code=503))  # FreshChat down: the message waits
        zalo.app.add_customer_message("7001", "Lan", text="chờ")
        assert until(lambda: json.loads(zfsync(fleet, "tenant", "list", "--json").stdout)[0]["queued"] >= 1)
    finally:
        stop(process)
    refused = zfsync(fleet, "tenant", "remove", "a")
    assert refused.returncode == 1 and "--drop-queue" in refused.stderr and "\n" not in refused.stderr.strip()
    removed = zfsync(fleet, "tenant", "remove", "a", "--drop-queue")
    assert removed.returncode == 0, removed.stderr
    assert [t["name"] for t in json.loads(zfsync(fleet, "tenant", "list", "--json").stdout)] == ["b"]
    for args, says in (
        (("tenant", "show", "nobody"), "no tenant 'nobody'"),
        (("tenant", "add", "Bad Name", "--config", "x.toml"), "tenant name"),
        (("failed",), "--tenant NAME"),
        (("failed", "--tenant", "nobody"), "no tenant 'nobody'"),
        (("tenant", "rekey"), "lists one key"),
    ):
        result = zfsync(fleet, *args)
        assert result.returncode != 0 and says in result.stderr, (args, result.stderr)


@pytest.fixture
def four_desks():
    servers = {
        name: (
            SimServer(ZaloSim(app_secret=f"secret-{name}")).start(),
            SimServer(FreshChatSim(api_key=f"key-{name}")).start(),
        )
        for name in ("t1", "t2", "t3", "t4")
    }
    yield servers
    for zalo, fc in servers.values():
        zalo.stop()
        fc.stop()


def within(seconds: float, condition) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def owners(fleet: Path) -> dict[str, str]:
    listed = zfsync(fleet, "tenant", "list", "--json")
    return {t["name"]: t["owner"] for t in json.loads(listed.stdout)} if listed.returncode == 0 else {}


def test_daemons_on_postgresql_share_the_tenants_and_take_over_a_killed_ones_within_thirty_seconds(
    four_desks, tmp_path, pg_url, monkeypatch
):
    monkeypatch.setenv("ZFSYNC_STORE_PASSWORD", pgcluster.PASSWORD)
    fleet = write_fleet(tmp_path, store_url=pg_url)
    for name, (zalo, fc) in four_desks.items():
        config, env = write_tenant(tmp_path, name, zalo.url, fc.url, (f"key-{name}", f"secret-{name}"))
        assert (
            zfsync(fleet, "tenant", "add", name, "--config", str(config), "--env", str(env), "--no-check").returncode
            == 0
        )
        auth = zfsync(fleet, "auth", "zalo", "--tenant", name, f"--refresh-token={zalo.app.mint_tokens()[1]}")
        assert auth.returncode == 0, auth.stderr
    first = start(fleet)
    second = None
    try:
        assert until(lambda: len(set(owners(fleet).values()) - {""}) == 1 and all(owners(fleet).values()))
        assert until(lambda: polled(fleet, *four_desks)), stop(first)
        second = start(fleet)  # a daemon added later gets its share
        assert until(lambda: sorted(Counter(owners(fleet).values()).values()) == [2, 2]), owners(fleet)
        for name, (zalo, _) in four_desks.items():
            zalo.app.add_customer_message("7001", "Lan", text=f"trước {name}")
        assert until(lambda: all(customer_texts(fc.app) for _, fc in four_desks.values()))
        first_pid = str(first.pid)
        taken_from_first = [n for n, owner in owners(fleet).items() if owner.endswith(f" {first_pid}")]
        assert len(taken_from_first) == 2
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        killed_at = time.monotonic()
        assert within(40, lambda: all(o.endswith(f" {second.pid}") for o in owners(fleet).values())), owners(fleet)
        unowned_for = time.monotonic() - killed_at
        assert unowned_for <= 30, unowned_for
        for name, (zalo, _) in four_desks.items():
            zalo.app.add_customer_message("7001", "Lan", text=f"sau {name}")
        assert within(40, lambda: all(len(customer_texts(fc.app)) == 2 for _, fc in four_desks.values()))
    finally:
        if second is not None:
            stop(second)
        if first.poll() is None:
            first.kill()
    for name, (_, fc) in four_desks.items():
        assert customer_texts(fc.app) == [f"trước {name}", f"sau {name}"]  # once each, in order
    # Claims, balancing moves and the takeover are no restarts: none counts toward a crash loop.
    listed = json.loads(zfsync(fleet, "tenant", "list", "--json").stdout)
    for tenant in listed:
        view = Store.open(pg_url, pgcluster.PASSWORD, tenant=tenant["id"])
        assert view.get_state(STARTS_KEY) is None, tenant["name"]
        view.close()


@pytest.fixture
def one_app():
    """Three OAs of one Zalo app on one Zalo host (the app's limit counts them all), each with its own
    FreshChat account."""
    host = ZaloHost()
    zalo = SimServer(host).start()
    oas = {name: host.add_oa(name) for name in ("dead", "storm", "calm")}
    accounts = {name: SimServer(FreshChatSim(api_key=f"key-{name}")).start() for name in oas}
    yield zalo, oas, accounts
    zalo.stop()
    for fc in accounts.values():
        fc.stop()


def take_in_one_app(fleet: Path, tmp_path: Path, one_app, authorised) -> None:
    zalo, oas, accounts = one_app
    for name, oa in oas.items():
        fc = accounts[name]
        config, env = write_tenant(tmp_path, name, zalo.url, fc.url, (f"key-{name}", "sim-secret"))
        added = zfsync(fleet, "tenant", "add", name, "--config", str(config), "--env", str(env), "--no-check")
        assert added.returncode == 0, added.stderr
        if name in authorised:
            auth = zfsync(fleet, "auth", "zalo", "--tenant", name, f"--refresh-token={oa.mint_tokens()[1]}")
            assert auth.returncode == 0, auth.stderr


def test_a_dead_token_and_a_429_storm_leave_a_third_tenant_untouched(one_app, tmp_path):
    """Three OAs of one Zalo app: one without a usable token, one whose FreshChat answers only 429. The
    third's messages cross both ways, once, its budgets never made it wait or saw a refusal, and the app's
    shared limit refused no one."""
    fleet = write_fleet(tmp_path)
    zalo, oas, accounts = one_app
    take_in_one_app(fleet, tmp_path, one_app, authorised=("storm", "calm"))  # the dead one never authorised
    process = start(fleet)
    try:
        assert until(lambda: polled(fleet, "storm", "calm")), stop(process)
        accounts["storm"].app.faults.append(Fault("/v2/", "status", count=1_000_000, code=429, seconds=1))
        calm_fc = accounts["calm"].app
        for i in range(5):
            oas["storm"].add_customer_message("7001", "Lan", text=f"storm {i}")
            oas["calm"].add_customer_message("7001", "Lan", text=f"calm {i}")
        assert until(lambda: len(customer_texts(calm_fc)) == 5), stop(process)
        calm_fc.add_agent_message(calm_fc.conversation_of("7001"), "đã nhận")
        assert until(lambda: [s["text"] for s in oas["calm"].sent] == ["đã nhận"]), stop(process)
        reports = {n: json.loads(zfsync(fleet, "status", "--tenant", n, "--json").stdout) for n in oas}
    finally:
        stop(process)
    assert customer_texts(calm_fc) == [f"calm {i}" for i in range(5)]
    assert customer_texts(accounts["storm"].app) == []  # waiting, not lost: its queue holds them
    assert reports["dead"]["sides"]["zalo"]["state"] == "BAD_CREDENTIALS"
    assert reports["storm"]["sides"]["freshchat"]["state"] == "RATE_LIMITED"
    assert reports["storm"]["backlog"]["z2f"] == 5
    assert zalo.app.refused("sim-app") == 0
    calm = reports["calm"]
    assert calm["exit_code"] == 0 and calm["backlog"] == {"z2f": 0, "f2z": 0}, calm
    for side in ("zalo", "freshchat"):
        assert calm["quotas"][side]["refusals"] == 0, calm["quotas"]
    assert calm["quotas"]["freshchat"]["waits"] == 0, calm["quotas"]


@pytest.mark.parametrize("told", ["zalo_requests_per_minute = 40\n", ""], ids=["configured", "from-headers"])
def test_tenants_of_one_app_keep_together_under_its_limit(one_app, tmp_path, told):
    """The Zalo host allows the app 40 requests a minute, whichever OA asks; the fleet is told so, or left at
    the documented 4,000 and learns it from Zalo's headers. Two tenants poll and carry traffic both ways,
    and the host refuses not one request of theirs (unpaced, two feeds would spend 40 in 10 s)."""
    zalo, oas, accounts = one_app
    zalo.app.per_app_minute = 40
    fleet = write_fleet(tmp_path, fleet_keys=told)
    take_in_one_app(fleet, tmp_path, one_app, authorised=("storm", "calm"))
    process = start(fleet)
    try:
        assert until(lambda: polled(fleet, "storm", "calm")), stop(process)
        for i in range(3):
            for name in ("storm", "calm"):
                oas[name].add_customer_message("7001", "Lan", text=f"{name} {i}")
        assert until(lambda: all(len(customer_texts(accounts[n].app)) == 3 for n in ("storm", "calm"))), stop(process)
        for name in ("storm", "calm"):
            fc = accounts[name].app
            fc.add_agent_message(fc.conversation_of("7001"), f"đáp {name}")
        assert until(lambda: all(oas[n].sent for n in ("storm", "calm"))), stop(process)
    finally:
        stop(process)
    for name in ("storm", "calm"):
        assert customer_texts(accounts[name].app) == [f"{name} {i}" for i in range(3)]
        assert [s["text"] for s in oas[name].sent] == [f"đáp {name}"]
    assert zalo.app.refused("sim-app") == 0


def test_a_single_oa_store_moves_in_and_the_key_is_rotated(desks, tmp_path):
    """import-store keeps the message map, the queue and the tokens (sealed on the way in); rekey seals every
    secret again under a new key, after which the old one is not needed."""
    fleet = write_fleet(tmp_path)
    zalo, fc = desks["a"]
    config, env = write_tenant(tmp_path, "a", zalo.url, fc.url)
    single = Store.open(tmp_path / "single.db")
    contact = single.record_zalo_messages(
        "7001", "Lan", "", [NewRow("z2f", "m1", "text", ZaloContent("text", text="chờ"), 1.0)], (1, "m1"), 1, 2.0
    )
    single.save_tokens(ZaloTokens("access-old", "refresh-old", 86400), 2.0)
    single.close()
    added = zfsync(fleet, "tenant", "add", "a", "--config", str(config), "--env", str(env), "--no-check", "--paused")
    assert added.returncode == 0, added.stderr
    refused = zfsync(fleet, "tenant", "import-store", "a", str(tmp_path / "nowhere.db"))
    assert refused.returncode == 2 and "no SQLite store" in refused.stderr
    moved = zfsync(fleet, "tenant", "import-store", "a", str(tmp_path / "single.db"))
    assert moved.returncode == 0, moved.stderr
    assert "imported 1 contact, 0 conversation, 1 message, 0 state, 1 token" in moved.stdout
    again = zfsync(fleet, "tenant", "import-store", "a", str(tmp_path / "single.db"))
    assert again.returncode == 1 and "has rows already" in again.stderr
    assert b"refresh-old" not in (tmp_path / "fleet.db").read_bytes()
    listed = json.loads(zfsync(fleet, "tenant", "list", "--json").stdout)
    assert listed[0]["queued"] == 1 and listed[0]["state"] == "paused"
    old_key = (tmp_path / "zfsync.env").read_text().split("=", 1)[1].strip()
    new = zfsync(fleet, "tenant", "rekey", "--new-key").stdout.strip()
    (tmp_path / "zfsync.env").write_text(f"ZFSYNC_SECRETS_KEY={new},{old_key}\n")
    rekeyed = zfsync(fleet, "tenant", "rekey")
    assert rekeyed.returncode == 0 and rekeyed.stdout.startswith("3 secrets sealed again"), rekeyed.stdout
    (tmp_path / "zfsync.env").write_text(f"ZFSYNC_SECRETS_KEY={new}\n")
    shown = json.loads(zfsync(fleet, "tenant", "show", "a", "--json").stdout)
    assert shown["secrets"] == {"ZFSYNC_FRESHCHAT_API_KEY": "set", "ZFSYNC_ZALO_APP_SECRET": "set"}
    view = Store.open(tmp_path / "fleet.db", tenant=shown["id"], sealer=Sealer(new))
    assert view.contact("7001") is not None and contact.zalo_user_id == "7001"
    assert view.load_tokens().refresh_token == "refresh-old"  # type: ignore[union-attr]
    view.close()
    backup = zfsync(fleet, "backup", str(tmp_path / "fleet-copy.db"))
    assert backup.returncode == 0, backup.stderr
    copied = Store.open(tmp_path / "fleet-copy.db", tenant=shown["id"], sealer=Sealer(new))
    assert [t.name for t in copied.tenants()] == ["a"] and copied.contact("7001") is not None
    copied.close()
    (tmp_path / "zfsync.env").write_text(f"ZFSYNC_SECRETS_KEY={old_key}\n")
    wrong = zfsync(fleet, "tenant", "show", "a")
    assert wrong.returncode == 1 and "does not open with ZFSYNC_SECRETS_KEY" in wrong.stderr
