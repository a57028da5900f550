"""Odd content, odd payloads and odd config: clear errors, nothing lost, no crash loop."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SIMS_IN_PROCESS, on
from zfsync import config
from zfsync.domain.errors import ConfigError
from zfsync.sim.zalo import OA_ID

EDGE_TEXTS = [
    "",
    "   \n\t  ",
    "x" * 100_000,
    "مرحبا بالعالم — שלום",  # right-to-left
    "a\u200bb\u200cc\u200dd\ufeff",  # zero-width characters
    "👨‍👩‍👧‍👦🏳️‍🌈🇻🇳👍🏽",  # emoji sequences
    "<script>alert(1)</script><b>bold</b> &amp; &lt;",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \U0001f600 \U000e0041 \U0010fffd",  # astral planes, tags, private use
    "Tiếng Việt có dấu: ắ ằ ẳ ẵ ặ",
    "line\r\nbreaks\rand\x00nul",
]
contents = st.one_of(st.sampled_from(EDGE_TEXTS), st.text(st.characters(codec="utf-8"), max_size=300))
ids = itertools.count(1)


def customer_texts(b, user: str) -> list[str]:
    return [p["text"]["content"] for m in b.customer_messages(user) for p in m["message_parts"] if "text" in p]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=contents)
def test_any_customer_text_arrives_once_and_any_agent_text_goes_out_whole(bridge, text):
    b = bridge
    user = f"77{next(ids):017d}"
    b.zalo.add_customer_message(user, "Khách", text=text)
    b.cycle()
    (arrived,) = customer_texts(b, user)
    assert arrived == text if text.strip() else arrived == "(empty message)"
    b.fc.add_agent_message(b.conversation_of(user), text)
    b.settle(rounds=3)
    sent = b.sent_to(user)
    assert all(0 < len(chunk) <= 2000 for chunk in sent)
    assert "".join("".join(sent).split()) == "".join(unicodedata.normalize("NFC", text).split())


@on(SIMS_IN_PROCESS)
def test_odd_zalo_rows_never_stop_the_good_ones(bridge):
    b = bridge
    user = "2512007384617209999"
    odd_rows = [
        {"message_id": "", "src": 1, "time": 1, "type": "text", "message": "no id", "from_id": user, "to_id": OA_ID},
        {"message_id": "n1", "src": 1, "time": None, "type": None, "message": None, "from_id": user, "to_id": OA_ID},
        {"message_id": "n2", "src": 1, "time": "soon", "type": "hologram", "from_id": user, "to_id": OA_ID},
        {
            "message_id": "n3",
            "src": "1",
            "type": "text",
            "message": "id above 2^53",
            "from_id": int(user),
            "to_id": OA_ID,
        },
        {"message_id": "n4", "type": "text", "message": "no src at all", "from_id": user, "to_id": OA_ID},
        "not even an object",
        {
            "message_id": "n5",
            "src": 1,
            "time": 5,
            "type": "location",
            "location": None,
            "from_id": user,
            "to_id": OA_ID,
        },
    ]
    with b.zalo.lock:
        b.zalo.messages.extend(odd_rows)  # type: ignore[arg-type]
    b.zalo.add_customer_message(user, "Khách", text="a normal one")
    b.cycle()
    got = customer_texts(b, user)
    assert got[-1] == "a normal one"
    assert "id above 2^53" in got and "no src at all" in got
    assert any("hologram" in t for t in got)  # unknown type: a placeholder with the raw fields
    assert b.store.health()["zalo"]["state"] == "OK"


@on(SIMS_IN_PROCESS)
def test_a_row_that_cannot_be_identified_is_warned_about_once_in_a_minute_of_polls(bridge):
    import io
    import json

    from zfsync import log

    b = bridge
    out = io.StringIO()
    log.setup("info", "json", out)
    user = "2512007384617209999"
    with b.zalo.lock:  # stays on the feed's first page, read at every poll
        b.zalo.messages.append({"message_id": None, "src": 1, "time": 5, "from_id": user, "to_id": OA_ID})
    for n in range(30):  # a minute of polls, two seconds apart
        if n % 10 == 0:
            b.zalo.add_customer_message(user, "Khách", text=f"tin {n}")
        b.drive.zalo()
        b.clock.advance(2)
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events.count("zalo_row_malformed") == 1
    assert customer_texts(b, user) == ["tin 0", "tin 10", "tin 20"]


def test_agent_content_zalo_cannot_carry_becomes_a_note_not_silence(bridge):
    b = bridge
    user = "2512007384617208888"
    b.zalo.add_customer_message(user, "Khách", text="hi")
    b.cycle()
    b.fc.add_agent_message(b.conversation_of(user), parts=[{"collection": {"sub_parts": []}}])
    b.settle()
    assert b.sent_to(user) == []
    (note,) = b.notes()
    assert "could not send this message to Zalo" in note["message_parts"][0]["text"]["content"]


@on(SIMS_IN_PROCESS)
def test_odd_freshchat_messages_are_read_without_crashing(bridge):
    b = bridge
    user = "2512007384617207777"
    b.zalo.add_customer_message(user, "Khách", text="hi")
    b.cycle()
    conversation = b.conversation_of(user)
    with b.fc.lock:
        b.fc.messages[conversation] += [
            {"id": "odd-1", "actor_type": "agent", "message_type": "normal", "message_parts": None},
            {"id": None, "actor_type": "agent", "message_parts": [{"text": {"content": "no id"}}]},
            {
                "id": "odd-2",
                "actor_type": "agent",
                "message_type": "normal",
                "created_time": "yesterday",
                "message_parts": [{"text": {"content": "odd time"}}, "not a part"],
            },
        ]
    b.fc.add_agent_message(conversation, "normal reply")
    b.settle()
    assert b.sent_to(user) == ["odd time", "normal reply"]
    assert b.store.health()["freshchat"]["state"] == "OK"


VALUES = st.one_of(
    st.none().map(lambda _: ""),
    st.text(max_size=20),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
KEYS = [(section, key) for section, keys in config.SCHEMA.items() for key in keys]


@settings(max_examples=300, deadline=None)
@given(target=st.sampled_from(KEYS), value=VALUES)
def test_any_config_value_is_accepted_or_refused_in_one_line_naming_the_key(target, value):
    section, key = target
    raw = {"zalo": {"app_id": "1"}, "freshchat": {"api_url": "https://api.freshchat.com", "channel_id": "c"}}
    raw.setdefault(section, {})[key] = value
    try:
        config.from_mapping(raw, {"ZFSYNC_ZALO_APP_SECRET": "s", "ZFSYNC_FRESHCHAT_API_KEY": "k"})
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and f"{section}." in message


@pytest.mark.parametrize("argv", [["retry"], ["skip", "abc"], ["status", "--bogus"], ["auth", "slack"]])
def test_bad_cli_arguments_are_one_clear_line(argv, capsys, tmp_path, monkeypatch):
    from zfsync import cli

    monkeypatch.setenv("ZFSYNC_CONFIG", str(tmp_path / "missing.toml"))
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err and "Traceback" not in err
    assert err.splitlines()[-1].startswith(("zfsync: ", "zfsync ")), err
