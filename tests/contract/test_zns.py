"""The ZNS contract (recorded/zns/, README names each source): the real client reads every recorded form,
and the simulator answers with the recorded fields and types in each of its modes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.test_recorded import assert_recorded_shape, recorded
from tests.contract.test_recorded import store as store  # the fixture: a store holding tokens
from zfsync.domain import ZaloTokens, ZnsParam, ZnsQuota, ZnsRating, ZnsSent
from zfsync.domain.errors import InvalidResponse, ParameterRefused, PermanentError
from zfsync.sides.zalo.oauth import TokenKeeper, ZaloOAuth
from zfsync.sides.zalo.zns import ZnsClient
from zfsync.sim.inprocess import InProcessAdapter, session_for
from zfsync.sim.zalo import ZaloSim
from zfsync.store import Store

ZNS = "https://business.openapi.zalo.me"
OAUTH = "https://oauth.zaloapp.com"


@pytest.fixture
def client(store: Store) -> ZnsClient:
    return ZnsClient(ZNS, TokenKeeper(ZaloOAuth(OAUTH, "app", "secret"), store, lambda: 2_000.0))


# --- (a) the real client reads the recordings ------------------------------------------------------


def test_the_template_list_is_read_in_the_examples_form_and_the_field_tables(client, requests_mock):
    requests_mock.get(f"{ZNS}/template/all", json=recorded("zns/template_all_doc.json"))
    (listed,) = client.templates()
    assert (listed.template_id, listed.name, listed.status, listed.quality) == (
        "900025",
        "Template_1",
        "PENDING_REVIEW",
        "UNDEFINED",
    )
    assert not listed.approved and not listed.detailed and listed.params == ()
    assert requests_mock.last_request.headers["access_token"] == "access-1"
    assert requests_mock.last_request.qs == {"offset": ["0"], "limit": ["100"]}
    requests_mock.get(f"{ZNS}/template/all", json=recorded("zns/template_all_field_table_composed.json"))
    (listed,) = client.templates()
    assert (listed.template_id, listed.name, listed.approved) == ("900026", "Xác nhận đơn hàng", True)


def test_a_long_list_is_read_page_by_page_until_its_total(client, requests_mock):
    page = recorded("zns/template_all_doc.json")
    rows = [dict(page["data"][0], templateId=900_000 + n) for n in range(150)]
    requests_mock.get(
        f"{ZNS}/template/all",
        [
            {"json": {**page, "data": rows[:100], "metadata": {"total": 150}}},
            {"json": {**page, "data": rows[100:], "metadata": {"total": 150}}},
        ],
    )
    assert [t.template_id for t in client.templates()] == [str(900_000 + n) for n in range(150)]
    assert [r.qs["offset"] for r in requests_mock.request_history] == [["0"], ["100"]]


def test_a_templates_detail_gives_its_parameters(client, requests_mock):
    requests_mock.get(f"{ZNS}/template/info/v2", json=recorded("zns/template_info_doc.json"))
    template = client.template("12345")
    assert requests_mock.last_request.qs == {"template_id": ["12345"]}
    assert (template.template_id, template.status, template.tag, template.price) == (
        "12345",
        "ENABLE",
        "IN_TRANSACTION",
        "800.0",
    )
    assert template.params == (ZnsParam("payment_link", True, "STRING", 30, 0, False),)
    assert template.detailed and template.preview_url.startswith("https://account.zalo.cloud/")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zns/message_quota_doc.json", ZnsQuota(500, 499)),
        ("zns/message_quota_field_table_composed.json", ZnsQuota(500, 0)),
    ],
)
def test_the_daily_quota_is_read_as_numbers_or_strings(client, requests_mock, name, expected):
    requests_mock.get(f"{ZNS}/message/quota", json=recorded(name))
    assert client.daily_quota() == expected


@pytest.mark.parametrize(
    ("case", "raised"),
    [
        ("template_id_invalid", PermanentError),
        ("not_approved", PermanentError),
        ("too_long", ParameterRefused),
        ("missing", ParameterRefused),
        ("no_permission", PermanentError),
    ],
)
def test_zns_codes_become_errors_that_say_what_happened(client, requests_mock, case, raised):
    answer = recorded("zns/errors_composed.json")[case]
    requests_mock.get(f"{ZNS}/template/info/v2", json=answer)
    with pytest.raises(raised) as caught:
        client.template("12345")
    assert caught.value.code == answer["error"] and caught.value.side == "zns"
    assert answer["message"] in str(caught.value)


def test_a_refused_token_is_refreshed_once_and_the_call_made_again(client, store, requests_mock):
    requests_mock.get(
        f"{ZNS}/message/quota",
        [
            {"json": recorded("zns/errors_composed.json")["token_invalid"]},
            {"json": recorded("zns/message_quota_doc.json")},
        ],
    )
    requests_mock.post(
        f"{OAUTH}/v4/oa/access_token",
        json={"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": "90000"},
    )
    assert client.daily_quota() == ZnsQuota(500, 499)
    assert requests_mock.request_history[-1].headers["access_token"] == "access-2"
    assert store.load_tokens().refresh_token == "refresh-2"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [
        {"error": 0, "data": [{"templateName": "no id"}]},
        {"error": 0, "data": "not a list"},
        {"error": "soon", "data": []},
        ["not an object"],
    ],
)
def test_an_answer_that_is_not_a_template_list_is_refused_in_one_line(client, requests_mock, body):
    requests_mock.get(f"{ZNS}/template/all", json=body)
    with pytest.raises(InvalidResponse):
        client.templates()


def test_odd_values_are_shown_on_one_line_and_bounded(client, requests_mock):
    page = recorded("zns/template_all_doc.json")
    page["data"][0]["templateName"] = "Tên\nmẫu\x00 " + "x" * 2000
    requests_mock.get(f"{ZNS}/template/all", json=page)
    (listed,) = client.templates()
    assert listed.name.startswith("Tên mẫu x") and len(listed.name) == 500
    assert all(c.isprintable() for c in listed.name)


# --- (b) the simulator answers with the recorded shapes ----------------------------------------------


@pytest.fixture
def sim() -> tuple[ZaloSim, Any]:
    zalo = ZaloSim()
    zalo.zns.add_template(
        {"template_id": "12345", "name": "Xác nhận đơn", "params": [{"name": "order_id", "maxLength": 30}]}, 0
    )
    zalo.zns.add_template({"name": "Đánh giá", "status": "PENDING_REVIEW"}, 1)
    return zalo, session_for(zalo, ZNS)


@pytest.mark.parametrize("keys", ["doc", "field_table"])
@pytest.mark.parametrize("numbers", [True, False])
def test_the_simulator_answers_with_recorded_shapes_in_every_mode(sim, keys, numbers):
    zalo, http = sim
    zalo.modes.zns_keys, zalo.modes.zns_numbers = keys, numbers
    headers = {"access_token": zalo.mint_tokens()[0]}
    listed = http.get(f"{ZNS}/template/all", params={"offset": 0, "limit": 100}, headers=headers).json()
    lists = [recorded("zns/template_all_doc.json"), recorded("zns/template_all_field_table_composed.json")]
    assert_recorded_shape(listed, [lists[0] if keys == "doc" else lists[1]])
    info = http.get(f"{ZNS}/template/info/v2", params={"template_id": "12345"}, headers=headers).json()
    assert_recorded_shape(info, [recorded("zns/template_info_doc.json")])
    quota = http.get(f"{ZNS}/message/quota", headers=headers).json()
    quotas = [recorded("zns/message_quota_doc.json"), recorded("zns/message_quota_field_table_composed.json")]
    assert_recorded_shape(quota, [quotas[0] if numbers else quotas[1]])
    unknown = http.get(f"{ZNS}/template/info/v2", params={"template_id": "nope"}, headers=headers).json()
    assert_recorded_shape(unknown, [recorded("zns/errors_composed.json")["template_id_invalid"]])
    refused = http.get(f"{ZNS}/message/quota", headers={"access_token": "nobody's"}).json()
    assert refused == recorded("zns/errors_composed.json")["token_invalid"]


def test_the_real_client_reads_the_simulator_as_it_reads_the_recordings(sim, store):
    zalo, http = sim
    zalo.modes.zns_keys, zalo.modes.zns_numbers = "field_table", False
    store.save_tokens(ZaloTokens(*zalo.mint_tokens(), 90_000), zalo.now())
    http.mount(OAUTH, InProcessAdapter(zalo))
    client = ZnsClient(ZNS, TokenKeeper(ZaloOAuth(OAUTH, "sim-app", "sim-secret", http), store, zalo.now), http)
    assert [(t.template_id, t.name, t.status) for t in client.templates()] == [
        ("900002", "Đánh giá", "PENDING_REVIEW"),
        ("12345", "Xác nhận đơn", "ENABLE"),
    ]
    assert client.template("12345").params == (ZnsParam("order_id", True, "STRING", 30, 0, False),)
    zalo.zns.used = 20
    assert client.daily_quota() == ZnsQuota(500, 480)


# --- sending a template ------------------------------------------------------------------------------


def test_a_send_writes_the_recorded_request_and_reads_the_recorded_answer(client, requests_mock):
    requests_mock.post(f"{ZNS}/message/template", json=recorded("zns/message_template_doc.json"))
    sent = client.send_template("84987654321", "7895417a7d3f9461cd2e", {"ky": "1"}, "row-7")
    assert sent == ZnsSent("a4d0243feee163bd3af2", 1626926349402, ZnsQuota(500, 499))
    written = requests_mock.last_request.json()
    example = recorded("zns/message_template_request_doc.json")
    assert set(written) == set(example)  # template_data's keys are each template's own; its values strings
    assert all(isinstance(v, str) for v in written["template_data"].values())
    assert written["tracking_id"] == "row-7" and requests_mock.last_request.headers["access_token"] == "access-1"


@pytest.mark.parametrize(
    ("case", "raised"),
    [("quota_spent", PermanentError), ("no_account", PermanentError), ("missing", ParameterRefused)],
)
def test_a_refused_send_raises_what_zns_said(client, requests_mock, case, raised):
    requests_mock.post(f"{ZNS}/message/template", json=recorded("zns/errors_composed.json")[case])
    with pytest.raises(raised):
        client.send_template("84987654321", "1", {"a": "b"}, "row-8")


def test_the_simulator_sends_checks_and_counts_as_zns_documents(sim):
    zalo, http = sim
    zalo.users["7001"] = {"display_name": "Lan", "shared_info": {"phone": 84912345678}}
    headers = {"access_token": zalo.mint_tokens()[0]}

    def send(**body: Any) -> Any:
        request = {"phone": "0912345678", "template_id": "12345", "template_data": {"order_id": "A1"}}
        return http.post(
            f"{ZNS}/message/template", json={**request, "tracking_id": "t", **body}, headers=headers
        ).json()

    answer = send()
    assert_recorded_shape(answer, [recorded("zns/message_template_doc.json")])
    assert answer["data"]["quota"] == {"dailyQuota": "500", "remainingQuota": "499"}
    assert zalo.zns.sent[0]["phone"] == "84912345678" and zalo.zns.sent[0]["template_data"] == {"order_id": "A1"}
    errors = recorded("zns/errors_composed.json")
    for body, case in (
        ({"template_data": {"other": "x"}}, "missing"),
        ({"template_data": {"order_id": "x" * 31}}, None),
        ({"template_id": "900002"}, "not_approved"),
        ({"phone": "0987000000"}, "no_account"),
    ):
        refused = send(**body)
        if case is not None:
            assert refused["error"] == errors[case]["error"], (body, refused)
        else:
            assert refused == {"error": -1121, "message": "order_id data breaks max length"}
    zalo.zns.used = zalo.zns.daily
    assert send()["error"] == errors["quota_spent"]["error"]
    assert len(zalo.zns.sent) == 1


# --- ratings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("zns/rating_get_doc.json", ZnsRating("7e4c33cfc20b05575c18", "1956", 5, ("Nhân viên vui vẻ",), "", 0)),
        (
            "zns/rating_get_field_table_composed.json",
            ZnsRating("9b2c41d0e7a35f8c1d22", "zfsync42", 3, ("Xử lý nhanh hơn",), "", 0),
        ),
    ],
)
def test_ratings_are_read_with_feedbacks_or_feedback(client, requests_mock, name, first):
    requests_mock.get(f"{ZNS}/rating/get", json=recorded(name))
    found = client.ratings("203972", 1, 2)
    assert requests_mock.last_request.qs["template_id"] == ["203972"]
    assert (found[0].message_id, found[0].tracking_id, found[0].stars) == (
        first.message_id,
        first.tracking_id,
        first.stars,
    )
    assert found[0].feedbacks[0] == first.feedbacks[0]
    assert [r.submitted_ms for r in found] == sorted(r.submitted_ms for r in found)


def test_ratings_are_asked_by_post_once_get_is_refused(client, requests_mock):
    requests_mock.get(f"{ZNS}/rating/get", json={"error": -106, "message": "Method unsupported"})
    requests_mock.post(f"{ZNS}/rating/get", json=recorded("zns/rating_get_doc.json"))
    assert len(client.ratings("203972", 1, 2)) == 2
    assert requests_mock.last_request.json()["template_id"] == "203972"
    client.ratings("203972", 1, 2)
    assert [r.method for r in requests_mock.request_history] == ["GET", "POST", "POST"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("key", ["feedbacks", "feedback"])
def test_the_simulator_plays_each_form_of_rating_get_and_the_client_reads_it(sim, store, method, key):
    zalo, http = sim
    zalo.modes.rating_method, zalo.modes.rating_feedback_key = method, key
    zalo.zns.rate({"template_id": "12345", "tracking_id": "zfsync7", "rate": 4, "feedbacks": ["Nhanh"]}, 1_000)
    zalo.zns.rate({"template_id": "other", "tracking_id": "zfsync8", "rate": 1}, 1_000)
    headers = {"access_token": zalo.mint_tokens()[0]}
    query = {"template_id": "12345", "from_time": 0, "to_time": 2_000, "offset": 0, "limit": 100}
    answer = (
        http.get(f"{ZNS}/rating/get", params=query, headers=headers)
        if method == "GET"
        else http.post(f"{ZNS}/rating/get", json=query, headers=headers)
    ).json()
    recordings = [recorded("zns/rating_get_doc.json"), recorded("zns/rating_get_field_table_composed.json")]
    assert_recorded_shape(answer, recordings)
    assert key in answer["data"]["data"][0] and len(answer["data"]["data"]) == 1
    store.save_tokens(ZaloTokens(*zalo.mint_tokens(), 90_000), zalo.now())
    http.mount(OAUTH, InProcessAdapter(zalo))
    client = ZnsClient(ZNS, TokenKeeper(ZaloOAuth(OAUTH, "sim-app", "sim-secret", http), store, zalo.now), http)
    (rating,) = client.ratings("12345", 0, 2_000)
    assert (rating.tracking_id, rating.stars, rating.feedbacks) == ("zfsync7", 4, ("Nhanh",))
