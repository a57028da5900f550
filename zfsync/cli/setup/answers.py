"""Where setup's answers come from (a person at a terminal, or flags and the environment for
``--non-interactive``), and the checks of each answer: each refuses with the one line to show."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from zfsync.config import keys as config_keys
from zfsync.domain.errors import ConfigError

T = TypeVar("T")


class Refused(Exception):
    """An answer that cannot be used; its text is the one line the person reads."""


# --- where answers come from ----------------------------------------------------------------------------


class Prompter:
    """Questions on a terminal: secrets are read without echo; a refused answer is said and asked again."""

    interactive = True

    def ask(self, key: str, question: str, default: str = "", secret: bool = False) -> str:
        shown = f" [{default}]" if default and not secret else ""
        prompt = f"{question}{shown}: "
        answer = getpass.getpass(prompt) if secret else input(prompt)
        return answer.strip() or default

    def confirm(self, key: str, question: str, default: bool) -> bool:
        while True:
            answer = input(f"{question} [{'Y/n' if default else 'y/N'}]: ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes", "c", "có"):
                return True
            if answer in ("n", "no", "k", "không"):
                return False
            print("  answer y or n")

    def refused(self, reason: str) -> None:
        print(f"  {reason}")

    def say(self, text: str = "") -> None:
        print(text)


@dataclass
class Given:
    """Answers given up front (``--non-interactive``): flags, else environment variables; nothing is asked,
    and a refused answer ends the run with its one line."""

    values: dict[str, str]
    yes: bool = False
    interactive: bool = field(default=False, init=False)

    def ask(self, key: str, question: str, default: str = "", secret: bool = False) -> str:
        value = self.values.get(key, "").strip()
        if value:
            return value
        if default:
            return default
        raise ConfigError(f"zfsync setup --non-interactive: {_source(key)} is missing ({question.lower()})")

    def confirm(self, key: str, question: str, default: bool) -> bool:
        # The OA and the writing are confirmed by a flag (--yes); replacing a file takes --force, starting
        # takes --start.
        return self.yes if key in ("yes", "write") else False

    def refused(self, reason: str) -> None:
        raise ConfigError(f"zfsync setup: {reason}")

    def say(self, text: str = "") -> None:
        print(text)


Asker = Prompter | Given

SECRET_ENV = {"freshchat_api_key": "ZFSYNC_FRESHCHAT_API_KEY", "zalo_app_secret": "ZFSYNC_ZALO_APP_SECRET"}
ENV_PREFIX = "ZFSYNC_SETUP_"


def _source(key: str) -> str:
    if key in SECRET_ENV:
        return f"the environment variable {SECRET_ENV[key]}"
    return f"--{key.replace('_', '-')} (or {ENV_PREFIX}{key.upper()})"


def given_answers(args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """Flags first, then ``ZFSYNC_SETUP_*`` variables; the secrets from their usual variables only."""
    found: dict[str, str] = {}
    for key in FLAGS:
        value = getattr(args, key, None)
        found[key] = str(value) if value else env.get(ENV_PREFIX + key.upper(), "")
    for key, variable in SECRET_ENV.items():
        found[key] = env.get(variable, "")
    return found


def until(asker: Asker, attempt: Callable[[], T]) -> T:
    """``attempt`` again until it is not refused (a non-interactive run stops at the first refusal)."""
    while True:
        try:
            return attempt()
        except Refused as exc:
            asker.refused(str(exc))


# --- the answers' checks (each raises Refused with the line to show) -------------------------------------


def freshchat_url(answer: str, insecure: bool) -> str:
    try:
        url = config_keys.SCHEMA["freshchat"]["api_url"][1]("freshchat.api_url", answer)
        config_keys.require_https("freshchat", {"api_url": url, "allow_insecure_http": insecure})
    except ConfigError as exc:
        raise Refused(str(exc).replace("config key freshchat.api_url: ", "")) from None
    return str(url)


def zalo_grant(answer: str) -> tuple[str, str]:
    """What the person pasted: ("code", CODE) from the address the browser landed on or a bare code, or
    ("refresh_token", TOKEN) when they say so with a ``refresh:`` prefix."""
    text = answer.strip()
    if not text:
        raise Refused("paste the address your browser landed on (it holds code=...), the code, or refresh:TOKEN")
    if text.lower().startswith("refresh:"):
        return "refresh_token", text.split(":", 1)[1].strip()
    if "://" in text or text.startswith("?") or "code=" in text:
        query = parse_qs(urlparse(text).query if "://" in text else text.lstrip("?"))
        if query.get("error"):
            raise Refused(f"Zalo said {query['error'][0]!r}: open the link again and accept with an OA admin")
        codes = query.get("code")
        if not codes or not codes[0].strip():
            raise Refused("that address has no code=...: open the link, accept, then paste the address you land on")
        return "code", codes[0].strip()
    return "code", text


def choose(options: list[dict[str, Any]], answer: str, what: str) -> dict[str, Any]:
    """An option picked by its number in the list, or by its id."""
    for number, option in enumerate(options, start=1):
        if answer in (str(number), str(option.get("id"))):
            return option
    raise Refused(f"{answer!r} is not one of the {what} listed: type its number (1 to {len(options)})")


FLAGS = (
    "freshchat_api_url",
    "channel_id",
    "group_id",
    "zalo_app_id",
    "redirect_uri",
    "zalo_refresh_token",
    "store_path",
    "language",
    "after_resolve",
)


def required(answer: str, what: str) -> str:
    if not answer:
        raise Refused(f"{what} is empty")
    return answer


def https_address(answer: str) -> str:
    parsed = urlparse(answer)
    if parsed.scheme != "https" or not parsed.netloc:
        raise Refused("Zalo takes an https:// address here, such as https://example.com/zalo-callback")
    return answer


def after_resolve_choice(answer: str) -> str:
    """``sync.after_resolve``: reopen or new."""
    if answer not in ("reopen", "new"):
        raise Refused("answer reopen or new")
    return answer


def language_choice(answer: str) -> str:
    """``sync.language``: one the notes are written in."""
    from zfsync.i18n import LANGUAGES

    if answer not in LANGUAGES:
        raise Refused(f"choose one of {', '.join(LANGUAGES)}")
    return answer
