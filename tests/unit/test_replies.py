"""The page planner: what a page of a FreshChat conversation becomes, as a table of messages and plans."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from zfsync.domain import (
    OTHER_EVENT,
    REOPENED,
    RESOLVED,
    ButtonPart,
    FcMessage,
    ImagePart,
    Kind,
    OtherPart,
    TextPart,
)
from zfsync.domain.outbound import row_payload
from zfsync.sync.decide.replies import ATTACHMENT_WAIT, Known, Rules, plan_page, signature_line

NOW = 1_800_000_000.0
AT = datetime.fromtimestamp(NOW - 10, UTC)
LONG_AGO = datetime.fromtimestamp(NOW - ATTACHMENT_WAIT - 1, UTC)  # an attachment still without its link


def message(n: int, *parts, actor="agent", kind="normal", event="", reply_parts=(), at=AT) -> FcMessage:
    parts = parts or (TextPart(f"đáp {n}"),)
    return FcMessage(f"m{n}", "c1", actor, "ag-1", kind, at, tuple(parts), event=event, reply_parts=reply_parts)


def payload(row) -> dict:
    """What the row's payload column keeps of its content."""
    return row_payload(row.content)


def starts(plan, expected: list[tuple[str, str]]) -> bool:
    """Each row of the plan is of the kind expected, and its text (or url) begins as expected."""
    got = [(row.kind, str(payload(row).get("text", payload(row).get("url", "")))) for row in plan.rows]
    return len(got) == len(expected) and all(
        k == ek and t.startswith(et) for (k, t), (ek, et) in zip(got, expected, strict=True)
    )


NOTICE = Rules(resolve_notice="Cảm ơn anh chị")
COMMANDS = Rules(command_prefix="/zalo")


@pytest.mark.parametrize(
    ("name", "page", "rules", "rows", "read", "resolved", "activity", "waiting"),
    [
        ("an agent's text", [message(1)], Rules(), [(Kind.TEXT, "đáp 1")], 1, None, True, False),
        ("a private note", [message(1, kind="private")], Rules(), [], 1, None, False, False),
        # An agent's "/zalo ..." note is a command row, done on Zalo; with no prefix it is a note like any.
        (
            "a command note",
            [message(1, TextPart("/zalo tag VIP"), kind="private")],
            COMMANDS,
            [(Kind.COMMAND, "")],
            1,
            None,
            False,
            False,
        ),
        (
            "a command, commands off",
            [message(1, TextPart("/zalo info"), kind="private")],
            Rules(),
            [],
            1,
            None,
            False,
            False,
        ),
        (
            "a command as a reply",
            [message(1, TextPart("/zalo info"))],
            COMMANDS,
            [(Kind.TEXT, "/zalo info")],
            1,
            None,
            True,
            False,
        ),
        ("our own post, as the user", [message(1, actor="user")], Rules(), [], 1, None, False, False),
        ("a bot's message, not forwarded", [message(1, actor="bot")], Rules(), [], 1, None, False, False),
        (
            "a bot's message, forwarded",
            [message(1, actor="bot")],
            Rules(forward_bots=True),
            [(Kind.TEXT, "đáp 1")],
            1,
            None,
            True,
            False,
        ),
        (
            "a resolve, with a notice",
            [message(1, event=RESOLVED)],
            NOTICE,
            [(Kind.RESOLVE_NOTICE, "Cảm ơn anh chị")],
            1,
            True,
            False,
            False,
        ),
        ("a resolve, notice off", [message(1, event=RESOLVED)], Rules(), [], 1, True, False, False),
        ("a reopen", [message(1, event=REOPENED)], NOTICE, [], 1, False, False, False),
        ("an assignment", [message(1, event=OTHER_EVENT)], NOTICE, [], 1, None, False, False),
        # An attachment FreshChat still scans: stop before it, so nothing after it overtakes it either.
        (
            "an attachment being scanned",
            [message(1), message(2, ImagePart(""), TextPart("báo giá")), message(3)],
            Rules(),
            [(Kind.TEXT, "đáp 1")],
            1,
            None,
            True,
            True,
        ),
        # ... until it has waited too long: the rest goes, and the agent is told.
        (
            "an attachment that never got its link",
            [
                message(
                    2,
                    ImagePart("", "bao-gia.png"),
                    TextPart("báo giá"),
                    at=datetime.fromtimestamp(NOW - ATTACHMENT_WAIT - 1, UTC),
                )
            ],
            Rules(),
            [(Kind.TEXT, "báo giá"), (Kind.FAILURE_NOTE, "⚠️ zfsync could not send 'bao-gia.png' to Za")],
            1,
            None,
            True,
            False,
        ),
        (
            "characters no text can hold",
            [message(1, TextPart("a\ufffdb"))],
            Rules(),
            [(Kind.TEXT, "a\ufffdb"), (Kind.FAILURE_NOTE, "⚠️ zfsync sent this reply with characters r")],
            1,
            None,
            True,
            False,
        ),
        (
            "an image, then its caption",
            [message(1, ImagePart("https://fc/i.png"), TextPart("đây ạ"))],
            Rules(),
            [(Kind.IMAGE, "https://fc/i.png"), (Kind.TEXT, "đây ạ")],
            1,
            None,
            True,
            False,
        ),
        (
            "buttons offered with the reply",
            [message(1, TextPart("Chọn:"), reply_parts=(ButtonPart("Có"), ButtonPart("Web", "https://shop.vn")))],
            Rules(),
            [(Kind.TEXT, "Chọn:\n• Có\nWeb: https://shop.vn")],
            1,
            None,
            True,
            False,
        ),
        (
            "nothing Zalo can carry",
            [message(1, OtherPart("poll"))],
            Rules(),
            [(Kind.FAILURE_NOTE, "⚠️ zfsync could not send this message to Za")],
            1,
            None,
            True,
            False,
        ),
        (
            "a long reply, split",
            [message(1, TextPart("Câu một. " * 300))],
            Rules(),
            [(Kind.TEXT, "Câu một."), (Kind.TEXT, "Câu một.")],
            1,
            None,
            True,
            False,
        ),
        (
            "a long reply, as a document",
            [message(1, TextPart("Câu một. " * 300))],
            Rules(long_text="file"),
            [(Kind.TEXT, "Câu một."), (Kind.TEXT_FILE, "Câu một.")],
            1,
            None,
            True,
            False,
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_plan_page(name, page, rules, rows, read, resolved, activity, waiting):
    plan = plan_page(page, NOW, rules)
    assert starts(plan, rows), [(r.kind, payload(r)) for r in plan.rows]
    assert [m.id for m in plan.read] == [m.id for m in page[:read]]
    assert (plan.resolved, plan.agent_activity, plan.waiting) == (resolved, activity, waiting)


def test_each_row_of_a_reply_keeps_the_message_and_its_part_number():
    plan = plan_page([message(1, ImagePart("https://fc/i.png"), TextPart("đây ạ"))], NOW, Rules())
    assert [(r.source_id, r.part, r.conversation_id) for r in plan.rows] == [("m1", 0, "c1"), ("m1", 1, "c1")]


def test_a_command_row_carries_the_command_and_who_wrote_it():
    (row,) = plan_page([message(1, TextPart("/ZALO tag Khách VIP"), kind="private")], NOW, COMMANDS).rows
    assert (row.source_id, row.conversation_id) == ("command:m1", "c1")
    assert payload(row) == {"command": "tag", "arg": "Khách VIP", "agent_id": "ag-1"}


SIGNED = Known(signatures={"ag-1": "— Lan, CSKH"}, quotes={"fm-customer": ("zalo-7", "zalo-7-listed")})


def test_a_reply_is_signed_once_and_the_signature_counts_in_zalos_2000_characters():
    text = "Dạ. " * 600  # 2,400 characters: two messages
    suffix = plan_page([message(1, TextPart(text))], NOW, Rules(), SIGNED).rows
    assert [len(payload(r)["text"]) <= 2000 for r in suffix] == [True, True]
    assert payload(suffix[-1])["text"].endswith("\n— Lan, CSKH") and "— Lan" not in payload(suffix[0])["text"]
    prefix = plan_page([message(1, TextPart(text))], NOW, Rules(signature_position="prefix"), SIGNED).rows
    assert payload(prefix[0])["text"].startswith("— Lan, CSKH\n") and len(prefix) == 2
    exact = "a" * (2000 - len("\n— Lan, CSKH"))  # fits with its signature: one message
    assert len(plan_page([message(1, TextPart(exact))], NOW, Rules(), SIGNED).rows) == 1
    assert len(plan_page([message(1, TextPart(exact + "a"))], NOW, Rules(), SIGNED).rows) == 2


def test_a_bot_a_resolve_notice_and_a_note_are_never_signed():
    bot = plan_page([message(1, actor="bot")], NOW, Rules(forward_bots=True), SIGNED).rows
    notice = plan_page([message(2, event=RESOLVED)], NOW, NOTICE, SIGNED).rows
    assert payload(bot[0])["text"] == "đáp 1" and payload(notice[0])["text"] == "Cảm ơn anh chị"


def test_a_quoted_reply_quotes_the_zalo_message_on_its_first_text_only():
    quoted = FcMessage(
        "m1",
        "c1",
        "agent",
        "ag-1",
        "normal",
        AT,
        (TextPart("Dạ có ạ"), ImagePart("https://x/a.png")),
        in_reply_to="fm-customer",
    )
    rows = plan_page([quoted], NOW, Rules(), SIGNED).rows
    assert [(r.kind, payload(r).get("quote")) for r in rows] == [(Kind.TEXT, "zalo-7"), (Kind.IMAGE, None)]
    assert payload(rows[0])["quote_alias"] == "zalo-7-listed"  # offered if Zalo refuses the feed's id
    elsewhere = FcMessage("m2", "c1", "agent", "ag-1", "normal", AT, (TextPart("ok"),), in_reply_to="fm-agent")
    assert "quote" not in payload(plan_page([elsewhere], NOW, Rules(), SIGNED).rows[0])  # not a customer's


@pytest.mark.parametrize(
    ("template", "first", "last", "line"),
    [
        ("— {agent_first_name}", "Lan", "Nguyễn", "— Lan"),
        ("{agent_name} (CSKH)", "Lan", "Nguyễn Thị", "Lan Nguyễn Thị (CSKH)"),
        ("— {agent_first_name}", "", "Nguyễn", "— Nguyễn"),
        ("— {agent_name}", "", "", ""),  # no name: unsigned, never "— "
        ("— Đội CSKH", "", "", "— Đội CSKH"),
        # Names are data: substituted once, one plain line, at most 64 characters each.
        ("— {agent_name}", "{agent_first_name}", "{agent_name}", "— {agent_first_name} {agent_name}"),
        ("— {agent_first_name}", "Lan\nGọi 0901", "", "— Lan Gọi 0901"),
        ("— {agent_first_name}", "Lan\u202e", "\x00", "— Lan"),
        ("— {agent_first_name}", "Thảo " * 40, "", "— " + ("Thảo " * 12).strip() + "…"),
    ],
)
def test_the_signature_line(template, first, last, line):
    assert signature_line(template, first, last) == line


def test_a_very_long_agent_name_cannot_multiply_the_sends():
    line = signature_line("— {agent_name} ({agent_first_name}), {agent_name}", "T" * 1990, "Trần")
    assert len(line) <= 200
    signed = Known(signatures={"ag-1": line})
    rows = plan_page([message(1, TextPart("Dạ. " * 500))], NOW, Rules(), signed).rows  # 2,000 characters
    assert len(rows) <= 2 and all(len(payload(r)["text"]) <= 2000 for r in rows)


@pytest.mark.parametrize(
    ("page", "replied_before", "rated"),
    [
        ([message(1), message(2, event=RESOLVED)], False, True),  # an agent replied on this page
        ([message(2, event=RESOLVED)], True, True),  # ... or earlier
        ([message(2, event=RESOLVED)], False, False),  # no agent ever replied: no rating
    ],
)
def test_a_resolve_sends_the_rating_template_once_where_an_agent_replied(page, replied_before, rated):
    rules = Rules(rating_template="danh-gia")
    plan = plan_page(page, NOW, rules, Known(agent_replied=replied_before))
    ratings = [row for row in plan.rows if row.source_id.startswith("rating:")]
    assert [(r.source_id, payload(r)) for r in ratings] == (
        [("rating:m2", {"command": "template", "arg": "danh-gia", "agent_id": "ag-1"})] if rated else []
    )
    assert not [
        row for row in plan_page(page, NOW, Rules(), Known(agent_replied=True)).rows if "rating" in row.source_id
    ]
