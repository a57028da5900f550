"""``/zalo template``: the words parsed, the configured template found, the values filled and checked as
ZNS will check them, the phone in ZNS's form; each problem named for the agent."""

from __future__ import annotations

import pytest

from zfsync.config import from_mapping
from zfsync.domain import TemplateChoice, ZnsParam, ZnsTemplate
from zfsync.domain.errors import ConfigError
from zfsync.sync.decide.templates import Problem, TemplateRequest, TemplateSend, parse_request, phone_84, plan_send

ORDER = TemplateChoice("don", "231001", (("customer_name", "{customer.name}"), ("shop", "Cửa hàng An")))
CHOICES = (ORDER, TemplateChoice("hen", "231002"))
APPROVED = ZnsTemplate(
    "231001",
    "Xác nhận đơn",
    "ENABLE",
    params=(
        ZnsParam("order_id", True, "STRING", 10),
        ZnsParam("customer_name", True, "STRING", 30),
        ZnsParam("shop", False, "STRING", 20),
        ZnsParam("note", False, "STRING", 50),
    ),
    detailed=True,
)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("don order_id=A1", TemplateRequest("don", (("order_id", "A1"),))),
        (
            'DON order_id=A1 note="giao trước 5 giờ"',
            TemplateRequest("don", (("order_id", "A1"), ("note", "giao trước 5 giờ"))),
        ),
        ("don", TemplateRequest("don", ())),
        ("", Problem("template_usage", "no template named")),
        ('don note="open', Problem("template_usage", "a quote is not closed")),
        ("don order_id", Problem("template_usage", "a value is not written key=value", ("order_id",))),
        ("don =x", Problem("template_usage", "a value is not written key=value", ("=x",))),
    ],
)
def test_the_words_after_template(arg, expected):
    assert parse_request(arg) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0912345678", "84912345678"),
        ("84912345678", "84912345678"),
        ("+84 912 345 678", "84912345678"),
        ("0912.345.678", "84912345678"),
        ("", None),
        ("0", None),
        ("12345", None),
        ("+1 415 555 0100", None),
        ("09123abc78", None),
    ],
)
def test_a_phone_in_the_form_zns_takes(raw, expected):
    assert phone_84(raw) == expected


def plan(arg: str, template: ZnsTemplate | None = APPROVED, phone: str = "0912345678") -> TemplateSend | Problem:
    request = parse_request(arg)
    assert isinstance(request, TemplateRequest)
    return plan_send(request, CHOICES, template, "Lan {customer.phone}", phone)


def test_values_come_from_the_command_then_the_defaults_with_the_customers_facts():
    sent = plan('don order_id=A1 shop="Chi nhánh 2"')
    assert sent == TemplateSend(
        ORDER,
        "84912345678",
        (("order_id", "A1"), ("customer_name", "Lan {customer.phone}"), ("shop", "Chi nhánh 2")),
    )  # a customer's name that looks like a placeholder stays their name


@pytest.mark.parametrize(
    ("arg", "template", "phone", "code", "names"),
    [
        ("nope order_id=1", APPROVED, "0912345678", "template_unknown", ("don", "hen")),
        ("don order_id=1", ZnsTemplate("231001", "x", "PENDING_REVIEW"), "0912345678", "template_not_approved", ()),
        ("don order_id=1", APPROVED, "", "no_phone", ()),
        ("don order_id=1", APPROVED, "0", "no_phone", ()),
        ("don", APPROVED, "0912345678", "template_param_missing", ("order_id",)),
        ("don order_id=   ", APPROVED, "0912345678", "template_param_missing", ("order_id",)),
        ("don order_id=12345678901", APPROVED, "0912345678", "template_param_too_long", ("order_id",)),
        ("don order_id=1 colour=red", APPROVED, "0912345678", "template_param_unknown", ("colour",)),
    ],
)
def test_each_problem_is_named(arg, template, phone, code, names):
    found = plan(arg, template, phone)
    assert isinstance(found, Problem) and found.code == code
    assert found.names[: len(names)] == names


def test_a_wrong_name_is_found_before_zalo_is_asked():
    assert plan("don order_id=1", template=None) == TemplateSend(ORDER, "", ())


CONFIG = {"zalo": {"app_id": "a"}, "freshchat": {"api_url": "https://x.freshchat.com", "channel_id": "c"}}
SECRETS = {"ZFSYNC_ZALO_APP_SECRET": "s", "ZFSYNC_FRESHCHAT_API_KEY": "k"}


def test_the_config_names_templates_with_their_defaults():
    settings = from_mapping(
        {**CONFIG, "template": [{"name": "don", "template_id": 231001, "params": {"n": "{customer.name}"}}]}, SECRETS
    )
    assert settings.templates == (TemplateChoice("don", "231001", (("n", "{customer.name}"),)),)


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"name": "Đơn hàng", "template_id": "1"}, "name must be"),
        ({"name": "don"}, "template_id must be"),
        ({"name": "don", "template_id": "1; rm"}, "template_id must be"),
        ({"name": "don", "template_id": "1", "params": {"a": 1}}, "params must be a table of text values"),
        ({"name": "don", "template_id": "1", "params": {"a": "{0.__class__}"}}, "{0.__class__} is unknown"),
        ({"name": "don", "template_id": "1", "colour": "red"}, "colour is unknown"),
    ],
)
def test_a_wrong_template_table_is_one_line_that_says_what_to_fix(table, says):
    with pytest.raises(ConfigError) as caught:
        from_mapping({**CONFIG, "template": [table]}, SECRETS)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_two_templates_of_one_name_are_refused():
    twice = [{"name": "don", "template_id": "1"}, {"name": "don", "template_id": "2"}]
    with pytest.raises(ConfigError, match="taken by an earlier"):
        from_mapping({**CONFIG, "template": twice}, SECRETS)


def test_a_conversation_property_fills_a_default_and_a_missing_one_names_the_parameter():
    choice = TemplateChoice(
        "don", "231001", (("order_id", "{conversation.cf_order_id}"), ("customer_name", "{customer.name}"))
    )
    request = parse_request("don")
    assert isinstance(request, TemplateRequest)
    sent = plan_send(request, (choice,), APPROVED, "Lan", "0912345678", {"cf_order_id": "A77"})
    assert isinstance(sent, TemplateSend) and ("order_id", "A77") in sent.data
    missing = plan_send(request, (choice,), APPROVED, "Lan", "0912345678", {})
    assert isinstance(missing, Problem) and missing.names == ("order_id",)


def test_the_config_takes_a_conversation_property_placeholder():
    table = {"name": "don", "template_id": "1", "params": {"order_id": "{conversation.cf_order_id}"}}
    settings = from_mapping({**CONFIG, "template": [table]}, SECRETS)
    assert settings.templates[0].defaults == (("order_id", "{conversation.cf_order_id}"),)
