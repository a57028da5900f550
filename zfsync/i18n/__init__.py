"""The desk's language (``sync.language``): every note an agent reads, every default text a customer can
receive, and `zfsync status`'s problems come from one gettext catalogue per language,
``zfsync/i18n/<language>/LC_MESSAGES/zfsync.po``, compiled to ``.mo`` by ``scripts/i18n`` (the test suite
checks that both catalogues hold every message and that the ``.mo`` files are current).

Message ids are the English texts, with ``{named}`` placeholders filled after translation. A single-OA
daemon serves one desk, so the language is chosen once, at start (`use`); a fleet's daemon serves desks
in several languages, each in threads of its own, which speak their desk's (`use_here`). It imports
nothing of zfsync: every layer may use it.
"""

from __future__ import annotations

import gettext
import threading
from functools import cache
from pathlib import Path

LANGUAGES = ("vi", "en")
DEFAULT = "vi"
DOMAIN = "zfsync"
HERE = Path(__file__).parent


# The texts a customer can receive when the config names none: each language's own (see `defaults`).
CUSTOMER_DEFAULTS = {
    "resolve_notice": "The conversation is closed. Thank you for contacting us!",
    "info_card_title": "Share your contact details",
    "info_card_subtitle": "So that we can help you faster, please share your phone number and address.",
}


@cache
def catalogue(language: str) -> gettext.NullTranslations:
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for language {language!r}: expected one of {', '.join(LANGUAGES)}")
    return gettext.translation(DOMAIN, localedir=HERE, languages=[language])


_active = [DEFAULT]
_here = threading.local()


def use(language: str) -> None:
    """Speak ``language`` from now on (the daemon and the CLI call it once they read the config)."""
    catalogue(language)  # an unknown language fails here, not at the first note
    _active[0] = language
    _here.language = None  # this thread too, whatever it spoke before


def use_here(language: str) -> None:
    """Speak ``language`` in this thread, whatever the process speaks (a fleet's desk's threads)."""
    catalogue(language)
    _here.language = language


def current() -> str:
    """The language this thread speaks."""
    return str(getattr(_here, "language", None) or _active[0])


def _(message: str) -> str:
    """``message`` in the desk's language."""
    return text(current(), message)


def N_(message: str) -> str:
    """Marks a text for the catalogues where it is defined; it is translated where it is used (`_`)."""
    return message


def defaults(language: str) -> dict[str, str]:
    """The ``[sync]`` texts a customer can receive, in ``language``, for the keys the config leaves out."""
    return {key: text(language, message) for key, message in CUSTOMER_DEFAULTS.items()}


def text(language: str, message: str) -> str:
    """``message`` in ``language``, whatever the desk speaks (the config's defaults per language)."""
    return catalogue(language).gettext(message)
