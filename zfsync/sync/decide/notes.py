"""What the agent reads when a reply could not reach the customer: plain words and the fix."""

from __future__ import annotations

from dataclasses import dataclass

from zfsync.domain import Z2F, NewRow
from zfsync.domain.outbound import AgentNote
from zfsync.i18n import N_, _
from zfsync.sync.decide import zalo_clocks

WINDOW_CODE = "window"

WINDOW_ADVICE = N_(
    "The customer's last message is over 7 days old, so Zalo allows no reply and zfsync did not try. "
    "The customer must write first."
)


def _quoted(preview: str) -> str:
    return preview if len(preview) <= 200 else preview[:200] + "…"


def failure_note(code: str, reason: str, preview: str, advice: str = "") -> str:
    """One private note for a reply that will not be delivered: the advice Zalo's code comes with
    (`zfsync.sides.zalo.codes`), else Zalo's own words."""
    if advice:
        explanation = _(advice)
    elif code == WINDOW_CODE:
        explanation = _(WINDOW_ADVICE)
    else:
        explanation = _("Zalo refused the message: {reason} (code {code}).").format(reason=reason, code=code)
    return _('⚠️ zfsync could not deliver this reply to Zalo: "{quoted}"\n{explanation}').format(
        quoted=_quoted(preview), explanation=explanation
    )


def gave_up_note(reason: str, attempts: int, preview: str) -> str:
    return _(
        '⚠️ zfsync could not deliver this reply to Zalo after {attempts} attempts: "{quoted}"\n'
        "Last error: {reason}. It is listed by `zfsync failed`; an operator can resend it with `zfsync retry`."
    ).format(attempts=attempts, quoted=_quoted(preview), reason=reason)


def fallback_note(label: str, problem: str) -> str:
    """An attachment that Zalo could not take as a file went to the customer as a link instead."""
    return _(
        "⚠️ zfsync could not send {label} to Zalo as an attachment: {problem}. "
        "The customer received a link to it instead; if they cannot open it, send a JPG/PNG image or a "
        "PDF/DOC/DOCX file under Zalo's limits."
    ).format(label=repr(label), problem=problem)


def unsendable_note(part_kinds: list[str]) -> str:
    return _(
        "⚠️ zfsync could not send this message to Zalo: it has no text, image or file Zalo can carry "
        "(content: {content}). Send it as text, an image or a PDF/DOC/DOCX file."
    ).format(content=", ".join(part_kinds) or "-")


def missing_attachment_note(names: list[str]) -> str:
    return _(
        "⚠️ zfsync could not send {names} to Zalo: FreshChat still lists it without a link to download "
        "(it may have failed its virus scan). The rest of the reply was sent; attach the file again."
    ).format(names=", ".join(repr(n) for n in names))


def altered_note() -> str:
    return _(
        "⚠️ zfsync sent this reply with characters replaced by \ufffd: FreshChat gave them in a form no text "
        "can hold (an emoji cut in half, for example). Check the reply on Zalo and send a corrected one if needed."
    )


def recreated_note(replaced: str) -> str:
    return _(
        "ℹ️ zfsync opened this conversation for the customer's new Zalo messages: FreshChat no longer has "
        "the one they were in ({replaced}). Earlier messages are in Zalo OA Manager."
    ).format(replaced=replaced)


def route_refused_note(route: int, where: str, error: str) -> str:
    return _(
        "⚠️ This customer matched [[route]] {route} ({where}), but FreshChat refused to open the conversation "
        "there ({error}), so it opened in the default channel. The operator should correct that route in the "
        "config (`zfsync check` lists the channels and groups)."
    ).format(route=route, where=where, error=error)


def free_replies_spent_note() -> str:
    return _(
        "ℹ️ The free replies to this customer are spent: Zalo bills further replies to the OA's package "
        "until the customer writes again (then 48 hours of free replies start over)."
    )


def window_closing_note(closes_at: str, hours_left: float) -> str:
    return _(
        "⏳ Zalo's reply window for this customer closes at {closes_at} (in {hours} h): after that no "
        "reply reaches them until they write, call or follow the OA again."
    ).format(closes_at=closes_at, hours=f"{hours_left:.0f}")


def command_help(prefix: str) -> str:
    return _(
        "zfsync commands, written as a private note: {prefix} info (send the customer the card that asks "
        "them to share their phone and address), {prefix} tag NAME and {prefix} untag NAME (the OA's tags "
        "on the customer), {prefix} status (this customer's reply window, free replies, tags, shared details "
        "and failed replies), {prefix} retry (send this conversation's failed replies again; {prefix} retry "
        "last: the latest only), {prefix} template NAME key=value (a ZNS template to the customer's phone, "
        "inside or outside the reply window), {prefix} help. They never reach the customer as text."
    ).format(prefix=prefix)


def group_command_note(name: str, prefix: str) -> str:
    return _(
        "ℹ️ {prefix} {name} is for a customer's own chat: a Zalo group chat has no profile, tags, reply window "
        "or phone. In a group, {prefix} retry and {prefix} help work, and a reply reaches every member."
    ).format(prefix=prefix, name=name)


def group_expiry_note(name: str, valid_through: str, days: int) -> str:
    return _(
        "⏳ The Zalo group chat package (GMF) of «{name}» ends after {valid_through} (in {days} days): after that "
        "Zalo disables the group and no reply reaches it. The OA admin renews it in Zalo OA Manager."
    ).format(name=name, valid_through=valid_through, days=days)


def follows_note(previous: str) -> str:
    return _(
        "ℹ️ The customer wrote again after their conversation was resolved: this new conversation follows "
        "FreshChat conversation {previous}, where the earlier messages are."
    ).format(previous=previous)


def retried_on_return_note(count: int) -> str:
    return _(
        "↻ The customer wrote again: zfsync sends the {count} earlier replies that had not reached them once "
        "more, in order, before the new ones."
    ).format(count=count)


def retry_note(count: int, left: int, prefix: str) -> str:
    if count:
        text = _("↻ {count} failed replies to this customer are sent again, in order.").format(count=count)
    else:
        text = _("ℹ️ No failed reply in this conversation can be sent again from here.")
    if left:
        text += " " + _(
            "{left} more failed after repeated errors whose outcome is not known: the operator sends them "
            "again with `zfsync retry` (`zfsync failed` lists them)."
        ).format(left=left)
    elif not count:
        text += " " + _("({prefix} status counts this customer's failed replies.)").format(prefix=prefix)
    return text


@dataclass(frozen=True)
class CustomerStatus:
    """What `/zalo status` tells of one customer (``now_ms`` and the clocks in epoch ms; 0: not known)."""

    now_ms: int
    window_closes_ms: int
    free_until_ms: int
    free_left: int | None  # None: Zalo does not count them
    tags: tuple[str, ...] | None  # None: Zalo's profile could not be read
    shared: tuple[tuple[str, str], ...] | None
    failed_replies: int
    unreadable: str = ""  # why the profile could not be read


SHARED_LABELS = {
    "name": N_("name"),
    "phone": N_("phone"),
    "address": N_("address"),
    "city": N_("city"),
    "district": N_("district"),
    "dob": N_("date of birth"),
}


def status_note(seen: CustomerStatus) -> str:
    """The note `/zalo status` answers with, one fact a line."""
    lines = ["ℹ️ " + _("This customer on Zalo:")]
    if not seen.window_closes_ms:
        lines.append(_("- reply window: not known yet (Zalo decides at the next reply)"))
    elif seen.now_ms < seen.window_closes_ms:
        lines.append(_("- reply window: open until {at}").format(at=zalo_clocks.local_time(seen.window_closes_ms)))
    else:
        lines.append(
            _("- reply window: closed since {at}; the customer must write, call or follow the OA again").format(
                at=zalo_clocks.local_time(seen.window_closes_ms)
            )
        )
    if seen.free_until_ms and seen.now_ms < seen.free_until_ms and seen.free_left != 0:
        left = _("{count} left").format(count=seen.free_left) if seen.free_left is not None else _("not counted")
        lines.append(
            _("- free replies: until {at} ({left})").format(at=zalo_clocks.local_time(seen.free_until_ms), left=left)
        )
    elif seen.free_until_ms:
        lines.append(_("- free replies: spent or over; further replies are paid from the OA's package"))
    if seen.tags is None or seen.shared is None:
        lines.append(_("- tags and shared details: not readable now ({why})").format(why=seen.unreadable))
    else:
        lines.append(_("- tags: {tags}").format(tags=", ".join(seen.tags) if seen.tags else _("none")))
        shared = "; ".join(f"{_(SHARED_LABELS.get(key, key))}: {value}" for key, value in seen.shared)
        lines.append(_("- shared details: {details}").format(details=shared or _("none")))
    lines.append(_("- failed replies to this customer: {count}").format(count=seen.failed_replies))
    return "\n".join(lines)


def command_note(name: str, arg: str, prefix: str) -> str:
    if name == "info":
        return _(
            "✅ The customer was sent the card that asks them to share their details; what they share "
            "appears on their FreshChat profile."
        )
    if name == "tag" and arg:
        return _("✅ The customer is tagged {tag} on Zalo.").format(tag=repr(arg))
    if name == "untag" and arg:
        return _("✅ The tag {tag} is removed from the customer on Zalo.").format(tag=repr(arg))
    return f"ℹ️ {command_help(prefix)}"


def command_failed_note(name: str, arg: str, reason: str, prefix: str, advice: str = "") -> str:
    shown = f"{prefix} {name} {arg}".strip()
    return _("⚠️ zfsync could not do {command} on Zalo: {why}").format(
        command=repr(shown), why=_(advice) if advice else reason
    )


# What a note is, for `sync.agent_notes`: it tells of a message that did not reach the customer; it answers an
# agent's command; or it is the bridge's information (a warning, a fallback, a routing note).
FAILURE, ANSWER, INFO = "failure", "answer", "info"
SHOWN = {"all": {FAILURE, ANSWER, INFO}, "failures": {FAILURE, ANSWER}, "off": {ANSWER}}


def shown(level: str, setting: str) -> bool:
    """Whether a note of ``level`` is posted under ``sync.agent_notes = setting``. A command's answer is
    always posted (the agent asked for it); a note of no known level (queued by an older zfsync) counts as
    a failure's, so a failure is never kept from the desk by a setting that shows failures."""
    return (level if level in (FAILURE, ANSWER, INFO) else FAILURE) in SHOWN.get(setting, SHOWN["all"])


def note_row(
    source_id: str, text: str, conversation_id: str, agent_id: str, at: float, part: int = 0, level: str = INFO
) -> NewRow:
    """The outbox row of a private note in ``conversation_id``, posted as the agent who wrote the reply
    (as a bot when the reply came from one); ``level``: `FAILURE`, `ANSWER` or `INFO`."""
    note = AgentNote(text, conversation_id, agent_id, "agent" if agent_id else "bot", level)
    return NewRow(Z2F, source_id, note.kind, note, at, part=part)


# --- ZNS templates (`/zalo template`) ------------------------------------------------------------------

ZNS_UNKNOWN_ADVICE = N_(
    "An earlier attempt to send this template got no answer, so zfsync does not send it again: a ZNS message "
    "costs money and may have arrived. Ask the customer; if it did not arrive, write the command again."
)


def window_templates_hint(names: list[str], prefix: str) -> str:
    """What the agent can still do past the window: a ZNS template, by the names the config gives."""
    return _(
        "Past the window a ZNS template still reaches the customer's phone: {command} (templates: {names})."
    ).format(command=f"{prefix} template NAME key=value", names=", ".join(names))


def template_sent_note(
    name: str, title: str, phone: str, values: list[tuple[str, str]], left: int | None, preview: str = ""
) -> str:
    shown = "; ".join(f"{key}: {value}" for key, value in values) or _("no values")
    text = _("✅ Template {name} ({title}) was sent by ZNS to the customer's phone ending {tail}: {values}.").format(
        name=name, title=title, tail=phone[-4:], values=shown
    )
    if left is not None:
        text += " " + _("ZNS sends left today: {left}.").format(left=left)
    if preview.startswith("https://"):
        text += " " + _("What the template looks like: {url}").format(url=preview)
    return text


def template_problem(code: str, reason: str, names: tuple[str, ...], prefix: str) -> str:
    """Why a template was not sent, and what to do; ``names``: what the problem is about."""
    first, rest = (names[0], ", ".join(names[1:])) if names else ("", "")
    if code == "template_usage":
        return _("Write it as {usage} ({why}).").format(usage=f"{prefix} template NAME key=value", why=reason)
    if code == "template_unknown" and names:
        return _("No template is called that here. The ones configured: {names}.").format(names=", ".join(names))
    if code == "template_unknown":
        return _(
            "No template is configured: the operator adds [[template]] tables to the config (see zfsync templates)."
        )
    if code == "template_not_approved":
        return _("Zalo has not approved this template ({why}), so it cannot be sent.").format(why=reason)
    if code == "no_phone":
        return _(
            "The customer has not shared a phone number with the OA, and a ZNS template goes to a phone. "
            "{command} sends them the card that asks for it, while their reply window is open."
        ).format(command=f"{prefix} info")
    if code == "template_param_missing":
        return _("The template needs a value for {param}: add {param}=... to the command.").format(param=first)
    if code == "template_param_too_long":
        return _("The value of {param} is too long for the template ({why}).").format(param=first, why=reason)
    if code == "template_param_unknown":
        return _("The template has no parameter {param}; its parameters: {names}.").format(param=first, names=rest)
    return reason


def rating_note(stars: int, feedbacks: list[str], note: str) -> str:
    text = _("⭐ The customer rated the service {stars} of 5 on Zalo.").format(stars=stars)
    if feedbacks:
        text += " " + _("What they ticked: {feedbacks}.").format(feedbacks="; ".join(feedbacks))
    if note:
        text += " " + _("Their note: {note}").format(note=_quoted(note))
    return text
