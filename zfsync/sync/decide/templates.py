"""An agent's ``/zalo template NAME key=value ...``: which configured template, with which values, to which
phone. Pure: the command's words, the config's `[[template]]`, what Zalo says of the template and what
the customer shared go in; a `TemplateSend` or the one problem to tell the agent comes out.

Values come from the command first, then the template's defaults in the config, where ``{customer.name}``
and ``{customer.phone}`` stand for what Zalo knows of the customer and ``{conversation.NAME}`` for the
FreshChat conversation's property NAME (``cf_order_id``...), replaced in one pass, never through a format
string. Each is checked as ZNS will check it (required, at most its length), so the
agent hears what is wrong before a message that costs money is tried.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from zfsync.domain import TemplateChoice, ZnsTemplate

PLACEHOLDER = re.compile(r"\{(?:customer\.(?:name|phone)|conversation\.[a-z0-9_]{1,64})\}")
VALUE_LIMIT = 500  # characters a value may have whatever the template says: a value is one short line


@dataclass(frozen=True)
class TemplateRequest:
    name: str
    given: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class TemplateSend:
    choice: TemplateChoice
    phone: str  # the 84 form ZNS takes
    data: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Problem:
    """Why not, in words for the agent (``code``: the failure's code in the outbox and the logs)."""

    code: str
    reason: str
    names: tuple[str, ...] = ()  # what the reason is about: parameters or templates


def parse_request(arg: str) -> TemplateRequest | Problem:
    """``NAME key=value key="two words" ...`` (quotes as a shell takes them)."""
    try:
        words = shlex.split(arg)
    except ValueError:
        return Problem("template_usage", "a quote is not closed")
    if not words:
        return Problem("template_usage", "no template named")
    given = []
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not key.strip():
            return Problem("template_usage", "a value is not written key=value", (word,))
        given.append((key.strip(), value.strip()))
    return TemplateRequest(words[0].lower(), tuple(given))


def phone_84(raw: str) -> str | None:
    """A Vietnamese mobile number as ZNS documents it (84...), from 84..., +84... or 0...; else None."""
    digits = re.sub(r"[\s.\-()]", "", raw).removeprefix("+")
    if digits.startswith("0"):
        digits = "84" + digits[1:]
    return digits if digits.isdigit() and digits.startswith("84") and 10 <= len(digits) <= 12 else None


def plan_send(
    request: TemplateRequest,
    choices: tuple[TemplateChoice, ...],
    template: ZnsTemplate | None,
    customer_name: str,
    shared_phone: str,
    conversation: dict[str, str] | None = None,
) -> TemplateSend | Problem:
    """What to send, or why not. ``template``: Zalo's detail of the chosen template (None: not read yet,
    only the choice is checked, so that a wrong name costs no request)."""
    choice = next((c for c in choices if c.name == request.name), None)
    if choice is None:
        return Problem("template_unknown", "no template of that name", tuple(c.name for c in choices))
    if template is None:
        return TemplateSend(choice, "", ())
    if not template.approved:
        return Problem("template_not_approved", f"Zalo lists it as {template.status or 'not approved'}")
    phone = phone_84(shared_phone)
    if phone is None:
        return Problem("no_phone", "the customer has not shared a phone number with the OA")
    facts = {"{customer.name}": customer_name, "{customer.phone}": phone}
    facts.update({f"{{conversation.{key}}}": value for key, value in (conversation or {}).items()})
    known = {p.name for p in template.params}
    unknown = [key for key, _ in request.given if key not in known]
    if unknown:
        return Problem("template_param_unknown", "the template has no such parameter", (unknown[0], *sorted(known)))
    values = {key: _filled(value, facts) for key, value in choice.defaults}
    values.update(dict(request.given))
    data = []
    for param in template.params:
        value = " ".join(values.get(param.name, "").split())
        if not value and param.required and not param.accept_null:
            return Problem("template_param_missing", "a required parameter has no value", (param.name,))
        limit = min(param.max_length or VALUE_LIMIT, VALUE_LIMIT)
        if len(value) > limit:
            return Problem("template_param_too_long", f"longer than its {limit} characters", (param.name,))
        if value:
            data.append((param.name, value))
    return TemplateSend(choice, phone, tuple(data))


def _filled(value: str, facts: dict[str, str]) -> str:
    # One pass: a fact that itself looks like a placeholder (a customer may be named so) stays as it is;
    # a conversation property the conversation lacks is empty (a required parameter is then named).
    return PLACEHOLDER.sub(lambda found: facts.get(found.group(0), ""), value)


def needs_conversation(choice: TemplateChoice) -> bool:
    """Whether the template's defaults read the FreshChat conversation's properties."""
    return any("{conversation." in value for _, value in choice.defaults)


def tracking_id(row_id: int) -> str:
    """What ZNS keeps with the message for its sender (at most 48 plain characters, as Zalo asks)."""
    return f"zfsync{row_id}"
