"""What a page of a FreshChat conversation means, decided with no I/O: which messages become rows for Zalo
(agents' replies split or turned into a document, their attachments, the resolve notice), which notes
the agent gets (characters replaced, an attachment that never got its link), and how far the position
moves (not past a reply whose attachment FreshChat is still scanning). Table-tested in
tests/unit/test_replies.py; `zfsync.sync.read.freshchat_reader` reads the page and records the plan.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from zfsync.domain import F2Z, REOPENED, REPLACEMENT, RESOLVED, FcMessage, NewRow
from zfsync.domain.outbound import (
    Command,
    Reply,
    ReplyAttachment,
    ReplyDocument,
    ReplyText,
    ResolveNotice,
)
from zfsync.sync.decide import notes, plan, render

ATTACHMENT_WAIT = 300.0  # seconds an agent's attachment may stay without a url before it goes without it
RATING_SOURCE = "rating:"  # the source id of the rating template a resolve queues: "rating:<marker id>"


@dataclass(frozen=True)
class Rules:
    """The settings a page is read by."""

    resolve_notice: str = ""  # sync.resolve_notice: sent once per resolve; "" sends none
    long_text: str = "split"  # sync.long_text: "split" or "file"
    forward_bots: bool = False  # freshchat.forward_bot_messages
    command_prefix: str = ""  # sync.command_prefix: an agent's private note starting with it is a command
    signature_position: str = "suffix"  # sync.agent_signature_position: the line after the reply, or before
    rating_template: str = ""  # sync.rating_template: sent once after a resolve in a conversation agents replied in


@dataclass(frozen=True)
class Known:
    """What the reader looked up for a page (the planner does no I/O): each agent's signature line, and
    the Zalo message each quoted FreshChat message was copied from."""

    signatures: Mapping[str, str] = field(default_factory=dict)  # agent id -> "— Lan" ("" : none)
    quotes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # FreshChat message id -> its Zalo ids
    agent_replied: bool = False  # an agent's reply from this conversation was queued before the page


@dataclass(frozen=True)
class PagePlan:
    rows: list[NewRow]  # to queue, in order
    read: list[FcMessage]  # the messages handled, oldest first: the position moves past the last one
    resolved: bool | None  # whether the conversation is resolved after the page (None: no marker said)
    agent_activity: bool  # an agent (or bot) replied: the conversation stays hot
    waiting: bool  # a reply's attachment is still being scanned: read again soon, from before it
    answered_at: float | None = None  # the last agent reply or resolve read: the customer was answered
    resolved_at: float | None = None  # when the last resolve read was made


def plan_page(new: list[FcMessage], now: float, rules: Rules, known: Known | None = None) -> PagePlan:
    """``new``: the messages after the conversation's position, oldest first."""
    known = known or Known()
    rows: list[NewRow] = []
    read: list[FcMessage] = []
    resolved: bool | None = None
    agent_activity = False
    answered: float | None = None
    resolved_at: float | None = None
    for message in new:
        if message.event:  # a marker FreshChat wrote, whoever it names as its actor: never sent on
            if message.event == RESOLVED:
                resolved = True
                answered = resolved_at = message.created_time.timestamp()
                if rules.resolve_notice.strip():
                    rows.append(_resolve_notice_row(message, rules.resolve_notice))
                if rules.rating_template and (agent_activity or known.agent_replied):
                    # The rating template once per resolve, as the command an agent would write for it.
                    rating = Command("template", rules.rating_template, message.actor_id)
                    rows.append(reply_row(rating, f"{RATING_SOURCE}{message.id}", message))
            elif message.event == REOPENED:
                resolved = False
        elif _is_reply(message, rules.forward_bots):
            waiting = render.attachments_without_url(message)
            if waiting and now - message.created_time.timestamp() < ATTACHMENT_WAIT:
                # FreshChat attaches the file after scanning it: read this message again later, and keep
                # the position before it so nothing after it overtakes it either.
                return PagePlan(rows, read, resolved, agent_activity, True, answered, resolved_at)
            signature = known.signatures.get(message.actor_id, "") if message.actor_type == "agent" else ""
            quote = known.quotes.get(message.in_reply_to, ()) if message.in_reply_to else ()
            rows.extend(rows_for_reply(message, rules.long_text, Signed(signature, rules.signature_position), quote))
            at = message.created_time.timestamp()
            agent_id = message.actor_id if message.actor_type == "agent" else ""
            if REPLACEMENT in message.text():
                note = notes.altered_note()
                rows.append(notes.note_row(f"altered:{message.id}", note, message.conversation_id, agent_id, at))
            if waiting:
                note = notes.missing_attachment_note(waiting)
                missing = notes.note_row(
                    f"missing:{message.id}", note, message.conversation_id, agent_id, at, level=notes.FAILURE
                )
                rows.append(missing)
            agent_activity = True
            answered = message.created_time.timestamp()
        elif command := _command(message, rules.command_prefix):
            rows.append(command)
        read.append(message)
    return PagePlan(rows, read, resolved, agent_activity, False, answered, resolved_at)


def _is_reply(message: FcMessage, forward_bots: bool) -> bool:
    if message.message_type != "normal":
        return False
    return message.actor_type == "agent" or (forward_bots and message.actor_type == "bot")


def _command(message: FcMessage, prefix: str) -> NewRow | None:
    """An agent's private note that is a "/zalo ..." command: a row done on Zalo, never sent as text."""
    if message.message_type != "private" or message.actor_type != "agent":
        return None
    parsed = plan.parse_command(message.text(), prefix)
    if parsed is None:
        return None
    name, arg = parsed
    return reply_row(Command(name, arg, message.actor_id), f"command:{message.id}", message)


def _resolve_notice_row(message: FcMessage, notice: str) -> NewRow:
    return reply_row(ResolveNotice(notice, message.actor_id), f"resolve:{message.id}", message)


def reply_row(reply: Reply, source_id: str, message: FcMessage, part: int = 0) -> NewRow:
    """The outbox row that carries ``reply``, made from the FreshChat ``message``, to the customer."""
    at = message.created_time.timestamp()
    return NewRow(F2Z, source_id, reply.kind, reply, at, part=part, conversation_id=message.conversation_id)


NAME_LIMIT = 64  # an agent's name in a signature
SIGNATURE_LIMIT = 200  # the whole line: every reply keeps at least 1,799 of Zalo's 2,000 characters
PLACEHOLDER = re.compile(r"\{(agent_first_name|agent_name)\}")


@dataclass(frozen=True)
class Signed:
    """The agent's signature line (``sync.agent_signature``), and where it goes."""

    line: str = ""
    position: str = "suffix"  # or "prefix"

    def room(self) -> int:
        """Characters the line takes of a message (with its line break)."""
        return len(unicodedata.normalize("NFC", self.line)) + 1 if self.line else 0

    def apply(self, chunks: list[str]) -> list[str]:
        """The line before the first chunk, or after the last: a reply split in several messages is signed once."""
        if not self.line or not chunks:
            return chunks
        if self.position == "prefix":
            return [f"{self.line}\n{chunks[0]}", *chunks[1:]]
        return [*chunks[:-1], f"{chunks[-1]}\n{self.line}"]


def signature_line(template: str, first_name: str, last_name: str) -> str:
    """``sync.agent_signature`` for one agent; "" when it needs a name FreshChat did not give. The names
    are data: one plain line each, at most `NAME_LIMIT` characters, put in one pass (a name that reads
    "{agent_name}" stays those words), and the whole line is at most `SIGNATURE_LIMIT` characters."""
    first = render.one_line(first_name, NAME_LIMIT)
    name = render.one_line(" ".join(part for part in (first_name, last_name) if part.strip()), NAME_LIMIT)
    if not template or (("{agent" in template) and not name):
        return ""
    fields = {"agent_first_name": first or name, "agent_name": name}
    line = PLACEHOLDER.sub(lambda found: fields[found.group(1)], template)
    return render.cut_on_word(line, SIGNATURE_LIMIT)


def rows_for_reply(
    message: FcMessage, long_text: str, signed: Signed | None = None, quote: tuple[str, ...] = ()
) -> list[NewRow]:
    """One row per Zalo message the reply becomes, in order: text (split, or one document when
    ``sync.long_text = "file"``), then each image and file as its own row. The agent's signature line is
    counted in Zalo's 2,000 characters; the first text quotes ``quote`` (a Zalo message's ids: the feed's,
    and the conversation listing's where it differs) if given."""
    signed = signed or Signed()
    agent = message.actor_id
    replies: list[Reply] = []
    limit = render.ZALO_TEXT_LIMIT - signed.room()
    for piece in render.agent_pieces(message):
        if isinstance(piece, ReplyAttachment):
            replies.append(dataclasses.replace(piece, agent_id=agent))
            continue
        text = unicodedata.normalize("NFC", piece.text)
        if long_text == "file" and len(text) > limit:
            replies.append(ReplyText(signed.apply([render.long_text_preview(text)])[0], agent))
            replies.append(ReplyDocument(text, agent))
            continue
        replies.extend(ReplyText(chunk, agent) for chunk in signed.apply(render.split_text(text, limit)))
    first_text = next((reply for reply in replies if isinstance(reply, ReplyText)), None)
    if quote and first_text is not None:
        quoted = dataclasses.replace(first_text, quote=quote[0], quote_alias=quote[1] if quote[1:] else "")
        replies[replies.index(first_text)] = quoted
    if not replies and (message.parts or message.reply_parts):
        # Content with nothing Zalo can carry (an unknown part type): tell the agent, never drop it silently.
        agent_id = message.actor_id if message.actor_type == "agent" else ""
        text = notes.unsendable_note(render.part_kinds((*message.parts, *message.reply_parts)))
        at = message.created_time.timestamp()
        return [notes.note_row(f"note:{message.id}", text, message.conversation_id, agent_id, at, level=notes.FAILURE)]
    return [reply_row(reply, message.id, message, part=index) for index, reply in enumerate(replies)]
