"""One Zalo host, many OAs: the per-app limit (recorded/zalo/rate_limit_headers_doc.json: 4,000 a minute per
app, every answer carrying ``X-RateLimit-Limit`` and ``X-RateLimit-Remain``) counts every OA of the app, and
the real client reads what the app as a whole has left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from zfsync.domain import ZaloTokens
from zfsync.sides.zalo.client import ZaloClient
from zfsync.sides.zalo.oauth import TokenKeeper, ZaloOAuth
from zfsync.sim.base import Request
from zfsync.sim.inprocess import InProcessAdapter, session_for
from zfsync.sim.zalo_host import ZaloHost
from zfsync.store import Store

RECORDED = Path(__file__).parent / "recorded"
ZALO = "https://openapi.zalo.me"
OAUTH = "https://oauth.zaloapp.com"


def listing(host: ZaloHost, token: str) -> tuple[dict, dict[str, str]]:
    answer = host.serve(
        Request("GET", "/v2.0/oa/listrecentchat", {"data": '{"offset": 0, "count": 10}'}, {"access_token": token}, b""),
        wait=False,
    )
    return answer.body, answer.headers


@pytest.fixture
def host() -> ZaloHost:
    host = ZaloHost(per_app_minute=5)
    host.clock = lambda: 1_000_020.0  # inside one minute
    return host


def test_each_oa_reads_its_own_feed_and_the_headers_count_the_whole_app(host):
    shop, cafe = host.add_oa("shop"), host.add_oa("cafe")
    assert shop.oa_id != cafe.oa_id
    shop.add_customer_message("7001", "Lan", text="shop's")
    cafe.add_customer_message("7001", "Lan", text="cafe's")
    recorded_headers = json.loads((RECORDED / "zalo/rate_limit_headers_doc.json").read_text())["headers"]
    seen = []
    for oa, text in ((shop, "shop's"), (cafe, "cafe's"), (shop, "shop's")):
        body, headers = listing(host, oa.mint_tokens()[0])
        assert [row["message"] for row in body["data"]] == [text]
        assert body["data"][0]["to_id"] == oa.oa_id
        assert set(headers) == set(recorded_headers)
        seen.append(int(headers["X-RateLimit-Remain"]))
    assert seen == [4, 3, 2]  # one count for the app, whichever OA asked


def test_past_the_apps_limit_every_oa_of_it_is_refused_until_the_minute_ends_and_no_other_app(host):
    shop, cafe = host.add_oa("shop"), host.add_oa("cafe")
    other = host.add_oa("elsewhere", app_id="another-app", app_secret="x")
    shop_token, cafe_token, other_token = shop.mint_tokens()[0], cafe.mint_tokens()[0], other.mint_tokens()[0]
    for _ in range(5):
        assert listing(host, shop_token)[0]["error"] == 0
    body, headers = listing(host, cafe_token)
    assert (body["error"], headers["X-RateLimit-Remain"]) == (-32, "0")
    assert listing(host, other_token)[0]["error"] == 0
    assert host.refused("sim-app") == 1 and host.refused("another-app") == 0
    host.clock = lambda: 1_000_080.0  # the next minute
    assert listing(host, cafe_token)[0]["error"] == 0


def test_an_unknown_token_is_refused_as_zalo_does(host):
    host.add_oa("shop")
    assert listing(host, "nobody's")[0]["error"] == -216


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[list[Store]]:
    opened = [Store.open(tmp_path / f"{n}.db") for n in range(2)]
    yield opened
    for store in opened:
        store.close()


def test_the_real_client_of_one_oa_learns_what_its_neighbours_left_of_the_app(host, stores):
    host.per_app_minute = 4000
    clients = []
    for name, store in zip(("shop", "cafe"), stores, strict=True):
        oa = host.add_oa(name)
        oa.add_customer_message("7001", "Lan", text=f"{name}'s")
        store.save_tokens(ZaloTokens(*oa.mint_tokens(), 90_000), host.now())
        session = session_for(host, ZALO)
        session.mount(OAUTH, InProcessAdapter(host))
        oauth = ZaloOAuth(OAUTH, "sim-app", "sim-secret", session)
        clients.append(ZaloClient(ZALO, TokenKeeper(oauth, store, host.now), session))
    shop, cafe = clients
    for _ in range(10):
        shop.recent_messages(0)
    (row,) = cafe.recent_messages(0)
    assert row.text == "cafe's"
    snapshot = cafe.quota.snapshot()
    assert (snapshot.limit, snapshot.learned, snapshot.remaining) == (4000, True, 3989)


def redeem(host: ZaloHost, refresh: str) -> dict:
    """What the host's token endpoint answers the app's refresh token."""
    return host.serve(
        Request(
            "POST",
            "/v4/oa/access_token",
            {},
            {"secret_key": "sim-secret", "content-type": "application/x-www-form-urlencoded"},
            f"app_id=sim-app&grant_type=refresh_token&refresh_token={refresh}".encode(),
        ),
        wait=False,
    ).body


def test_the_token_endpoint_serves_the_oa_whose_refresh_token_it_is(host, stores):
    shop, cafe = host.add_oa("shop"), host.add_oa("cafe")
    refresh = cafe.mint_tokens()[1]
    access = redeem(host, refresh)["access_token"]
    assert access in cafe.access_tokens and access not in shop.access_tokens
    again = redeem(host, refresh)
    assert again["error"] == -14014  # single use, as for one OA


def test_the_control_api_adds_an_oa_and_reaches_its_own_actions(host):
    added = host.control(Request("POST", "/_sim/oa", {}, {}, b'{"name": "shop"}'), "oa")
    assert added.status == 200 and added.body["refresh_token"]
    host.control(Request("POST", "", {}, {}, b'{"user_id": "7001", "text": "hi"}'), "oa/shop/customer_message")
    assert [m["message"] for m in host.oas["shop"].messages] == ["hi"]
    assert host.control(Request("GET", "", {}, {}, b""), "oa/nobody/sent").status == 404
    apps = host.control(Request("GET", "", {}, {}, b""), "apps").body
    assert apps == {"sim-app": {"per_minute": 5, "this_minute": 0, "refused": 0}}


def test_zns_requests_reach_the_oa_whose_token_they_carry_outside_the_apps_count(host):
    shop, cafe = host.add_oa("shop"), host.add_oa("cafe")
    cafe.zns.add_template({"template_id": "231001", "name": "Xác nhận"}, 0)
    token = cafe.mint_tokens()[0]
    for _ in range(10):  # more than the app's 5 a minute: the ZNS host counts apart
        answer = host.serve(
            Request("GET", "/template/all", {"offset": "0", "limit": "100"}, {"access_token": token}, b""), wait=False
        )
        assert [t["templateId"] for t in answer.body["data"]] == [231001]
    assert host.refused("sim-app") == 0 and shop.zns.templates == []
    refused = host.serve(Request("GET", "/message/quota", {}, {"access_token": "nobody's"}, b""), wait=False)
    assert refused.body["error"] == -124
