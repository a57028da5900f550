"""The desk's language: every text zfsync shows an agent or a customer, or prints as a status problem,
is in both catalogues with the same placeholders, the .mo files are current, and sync.language switches
them (Vietnamese by default)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from devtools import catalogues
from zfsync import config, i18n
from zfsync.sides.zalo.codes import CODES
from zfsync.sync.decide import notes

ROOT = Path(__file__).parents[2]
MINIMAL = {"zalo": {"app_id": "1"}, "freshchat": {"api_url": "https://x.freshchat.com", "channel_id": "c"}}
SECRETS = {"ZFSYNC_ZALO_APP_SECRET": "s", "ZFSYNC_FRESHCHAT_API_KEY": "k"}


def marked_texts() -> set[str]:
    """Every literal given to `_` or `N_` in the package, and the customers' defaults."""
    found = set(i18n.CUSTOMER_DEFAULTS.values())
    for path in (ROOT / "zfsync").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "N_")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value)
    return found


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w*)\}", text))


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_text_is_in_the_catalogue_with_its_placeholders(language):
    po = i18n.HERE / language / "LC_MESSAGES" / "zfsync.po"
    with po.open("rb") as source:
        catalog = read_po(source)
    translated = {m.id: m.string for m in catalog if m.id}
    wanted = marked_texts()
    assert wanted - set(translated) == set(), "texts missing from the catalogue"
    assert set(translated) - wanted == set(), "catalogue texts nothing uses any more"
    for message, translation in translated.items():
        assert translation.strip(), f"{message!r} has no {language} text"
        assert placeholders(translation) == placeholders(message), f"{language}: {message!r}"


def test_the_compiled_catalogues_are_current():
    assert catalogues.main(["--check"]) == 0, "run scripts/i18n"


def test_every_advice_of_zalos_codes_is_marked():
    assert {c.advice for c in CODES.values() if c.advice} <= marked_texts()


def test_a_failure_note_for_minus_213_reads_in_vietnamese_by_default_and_in_english_when_asked():
    advice = CODES[-213].advice
    i18n.use(config.from_mapping(MINIMAL, SECRETS).sync.language)
    vietnamese = notes.failure_note("-213", "User has not followed OA", "Dạ còn ạ", advice)
    assert vietnamese.startswith("⚠️ zfsync không gửi được câu trả lời này sang Zalo") and "quan tâm OA" in vietnamese
    i18n.use(config.from_mapping({**MINIMAL, "sync": {"language": "en"}}, SECRETS).sync.language)
    english = notes.failure_note("-213", "User has not followed OA", "Dạ còn ạ", advice)
    assert english.startswith("⚠️ zfsync could not deliver this reply to Zalo") and "followed the OA" in english


def test_the_customers_defaults_follow_the_language_and_an_explicit_text_wins():
    vi = config.from_mapping(MINIMAL, SECRETS).sync
    en = config.from_mapping({**MINIMAL, "sync": {"language": "en"}}, SECRETS).sync
    assert vi.resolve_notice == "Cuộc trò chuyện đã được đóng. Cảm ơn bạn đã liên hệ!"
    assert en.resolve_notice == "The conversation is closed. Thank you for contacting us!"
    assert (vi.info_card_title, en.info_card_title) == ("Chia sẻ thông tin liên hệ", "Share your contact details")
    mine = config.from_mapping({**MINIMAL, "sync": {"language": "en", "resolve_notice": "Bye"}}, SECRETS).sync
    assert mine.resolve_notice == "Bye"


def test_an_unknown_language_is_one_line_naming_the_choices():
    with pytest.raises(config.ConfigError, match=r"sync\.language: expected one of"):
        config.from_mapping({**MINIMAL, "sync": {"language": "fr"}}, SECRETS)
