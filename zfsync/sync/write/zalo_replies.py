"""An agent's reply on its way to the customer through ``message/cs``: a text (with its quote), a long text as
a document, an image or file, a resolve notice. Each finds an earlier attempt the same way and gives up
with one private note in the conversation it came from.

Zalo accepts customer-service messages only within 7 days of the customer's last interaction (research
§7). A reply zfsync thinks is outside the window is first checked against Zalo's own view
(`quota/message`, at most once an hour a customer): another interaction may have opened it. Only when
Zalo agrees is it held back, and the agent told. Each send answer says what the reply was paid from:
zfsync keeps the customer's free replies from it, and tells the agent once when they are spent
(`CustomerClocks`). A reply gets the small context it needs (`ReplyContext`), not the writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from zfsync.domain import WINDOW_REFUSALS, Contact, Media, OutboxRow, TemplateChoice, ZaloMessage, ZaloSent, outbound
from zfsync.domain.errors import ParameterRefused, PermanentError, RemoteError, TransientError
from zfsync.domain.outbound import ReplyAttachment, ReplyDocument, ReplyText
from zfsync.sync.decide import echo, groups, notes, pages, zalo_clocks
from zfsync.sync.ports import ZaloSide
from zfsync.sync.seams import WriterStore
from zfsync.sync.write import media
from zfsync.sync.write.delivery import Failure, Outcome, Refused, Sent, Skipped

log = structlog.get_logger("zfsync.sync")

RECONCILE_SLACK_MS = 600_000
RECONCILE_PAGES = 5
DOCUMENT_NAME = "tin-nhan.docx"  # "message.docx": the long reply as a file, named in the customer's language


@dataclass(frozen=True)
class ZaloRules:
    """The settings a reply is sent by."""

    notice_only_when_free: bool = True  # sync.resolve_notice_when = "free_reply"
    card_title: str = "Chia sẻ thông tin liên hệ"
    card_subtitle: str = "Để chúng tôi hỗ trợ bạn nhanh hơn, xin bạn chia sẻ số điện thoại và địa chỉ."
    card_image: str = ""  # "" : the OA's own avatar
    command_prefix: str = "/zalo"  # how the agents' commands begin, as the notes show them
    templates: tuple[TemplateChoice, ...] = ()  # [[template]]: the ZNS templates agents send by name


class CustomerClocks:
    """What zfsync learns of a customer's two clocks around a send: Zalo's own view of the window (asked
    before a reply zfsync thinks is late is held back), and what each send answer says it was paid from."""

    def __init__(
        self,
        zalo: ZaloSide,
        store: WriterStore,
        clock: Callable[[], float],
        package_seen: Callable[[int, int, str], None] | None = None,
    ):
        self.zalo = zalo
        self.store = store
        self.clock = clock
        # told what a send's answer said is left of the OA package's free messages (`Reminders`)
        self.package_seen = package_seen or (lambda remain, total, expires: None)

    def window_per_zalo(self, contact: Contact) -> bool | None:
        """For a customer zfsync thinks is past the 7-day window: Zalo's own view (`quota/message`, at most
        hourly: an interaction other than a message may have opened it). None: Zalo could not be asked."""
        now = self.clock()
        if not zalo_clocks.should_ask_zalo(contact, now):  # asked within the hour: what was learned then stands
            return zalo_clocks.window_open(self.store.contact_by_id(contact.id), now)
        try:
            interacted, quota = self.zalo.message_quota(contact.zalo_user_id)
        except (PermanentError, TransientError) as exc:
            log.info("zalo_window_unknown", contact=contact.zalo_user_id, error=str(exc))
            return None
        free = quota.remain if quota is not None else None
        self.store.learn_clock(contact.id, interacted, free, quota is not None, quota_checked_at=now)
        return zalo_clocks.window_open(self.store.contact_by_id(contact.id), now)

    def learned(self, contact: Contact, row: OutboxRow, sent: ZaloSent, agent_id: str) -> None:
        """What the answer said the send was paid from: the customer's free replies, the OA's package; a
        note that they are spent goes to ``agent_id``, who wrote the reply."""
        quota = sent.quota
        if quota is None:
            return
        if quota.kind == "sub_quota" and quota.remain is not None:
            self.package_seen(quota.remain, quota.total or 0, quota.expires)
        now = self.clock()
        learned = zalo_clocks.after_send(quota, contact, now)
        if isinstance(learned, zalo_clocks.AskZalo):
            try:
                interacted, reply = self.zalo.message_quota(contact.zalo_user_id)
            except RemoteError as exc:  # not known: nothing is learned; the reply itself was sent
                log.info("zalo_free_replies_unknown", contact=contact.zalo_user_id, error=str(exc))
                return
            learned = zalo_clocks.after_quota_check(reply)
            self.store.learn_clock(contact.id, interacted, learned.free_left, True, quota_checked_at=now)
        elif learned is not None:
            self.store.learn_clock(contact.id, free_left=learned.free_left, free_known=True)
        if learned is None:
            return
        if learned.spent and row.conversation_id and self.store.mark_warned(contact.id, free_ms=contact.interacted_ms):
            note = notes.note_row(
                f"free-spent:{contact.id}:{contact.interacted_ms}",
                notes.free_replies_spent_note(),
                row.conversation_id,
                agent_id,
                self.clock(),
            )
            self.store.insert_rows(contact.id, [note], self.clock())
            log.info("free_replies_spent", contact=contact.zalo_user_id)


@dataclass(frozen=True)
class ReplyContext:
    """What a reply works with: Zalo, the store's seam, the clock, FreshChat's attachments, the settings
    and the customer's clocks."""

    zalo: ZaloSide
    store: WriterStore
    clock: Callable[[], float]
    download: Callable[[str, int], Media]  # FreshChat attachments, fetched with the API key where needed
    rules: ZaloRules
    clocks: CustomerClocks
    # a FreshChat conversation's properties, for a template's {conversation.NAME} values
    conversation_properties: Callable[[str], dict[str, str]] = lambda conversation_id: {}


class Reply(ABC):
    """An agent's reply on its way to the customer. However it is sent, an earlier attempt is found the
    same way, and a failure reaches the agent as one private note in the conversation it came from."""

    def __init__(self, context: ReplyContext, row: OutboxRow, contact: Contact, content: outbound.Reply):
        self.context = context
        self.row = row
        self.contact = contact
        self.content = content  # what the agent's reply carries, read from the row once by the writer

    @abstractmethod
    def _send(self) -> ZaloSent:
        """Send to the customer; returns what Zalo answered."""

    def send(self) -> Outcome:
        sent = self._send()
        self.context.clocks.learned(self.contact, self.row, sent, self.content.agent_id)
        return Sent(sent.message_id)

    def reconcile(self) -> Sent | None:
        """Our earlier attempt landed if the user's conversation shows an OA message with this content
        since shortly before the attempt that none of our other sends explains (`echo.landed`)."""
        row, zalo = self.row, self.context.zalo
        since = (row.claimed_at or self.context.clock()) - RECONCILE_SLACK_MS / 1000
        listing = (
            zalo.conversation(self.contact.zalo_user_id, offset=number * 10, count=10)
            for number in range(RECONCILE_PAGES)
        )

        def older(message: ZaloMessage) -> bool:
            return 0 <= message.time_ms < since * 1000

        read = pages.walk(listing, pages.from_first(older), RECONCILE_PAGES, full_page=10)
        listed = [(m.message_id, m.type, self._as_sent(m.text)) for m in read.items if m.from_oa]
        sends = self.context.store.own_sends(self.contact.id, since - echo.WINDOW)
        found = echo.landed(self.content, row.id, listed, sends)
        return Sent(found) if found else None

    def _as_sent(self, listed_text: str) -> str:
        """A listed text in the form this reply was sent in (a group's mentions may be listed by name)."""
        return listed_text

    def gave_up(self, failure: Failure, now: float) -> None:
        """Tell the agent, once per failed message, in the conversation the reply came from."""
        row, preview, rules = self.row, outbound.preview(self.content), self.context.rules
        if failure.final:
            text = notes.failure_note(failure.code, failure.reason, preview, failure.advice)
            if failure.code in WINDOW_REFUSALS and rules.templates:  # the dead end has a way out
                text += "\n" + notes.window_templates_hint([t.name for t in rules.templates], rules.command_prefix)
        else:
            text = notes.gave_up_note(failure.reason, failure.attempts, preview)
        self._note(f"note:{row.source_id}", text, now, notes.FAILURE)
        log.warning("agent_notified", row=row.id, code=failure.code, conversation=row.conversation_id)

    def _note(self, source_id: str, text: str, now: float, level: str = notes.INFO) -> None:
        """Queue a private note to the agent, in the conversation the reply came from."""
        row = self.row
        if not row.conversation_id:
            log.error("failure_note_without_conversation", row=row.id)
            return
        note = notes.note_row(
            source_id, text, row.conversation_id, self.content.agent_id, now, part=row.part, level=level
        )
        self.context.store.insert_rows(row.contact_id, [note], now)


class TextReply(Reply):
    def __init__(self, context: ReplyContext, row: OutboxRow, contact: Contact, reply: ReplyText):
        super().__init__(context, row, contact, reply)
        self.text = reply.text
        # the quoted message's ids, in the order Zalo is offered them
        self.quotes = tuple(q for q in (reply.quote, reply.quote_alias) if q)

    def _send(self) -> ZaloSent:
        zalo, user = self.context.zalo, self.contact.zalo_user_id
        for quote in self.quotes:
            try:
                return zalo.send_text(user, self.text, quote=quote)
            except ParameterRefused as exc:  # any other refusal holds without the quote: no doomed resend
                # Zalo may know the message under its other listing's id, or no longer at all.
                log.info("zalo_quote_refused", row=self.row.id, quote=quote, error=str(exc))
        return zalo.send_text(user, self.text)


class GroupTextReply(TextReply):
    """A text to a group chat, its mentions written as Zalo's ``[@user_id]``: a listing may show them by
    name, so an earlier attempt is looked for with the names turned back into ids."""

    def __init__(
        self, context: ReplyContext, row: OutboxRow, contact: Contact, reply: ReplyText, members: dict[str, str]
    ):
        super().__init__(context, row, contact, reply)
        self.members = members

    def _as_sent(self, listed_text: str) -> str:
        return groups.outgoing_mentions(listed_text, self.members)


class DocumentReply(Reply):
    """A reply too long for Zalo's texts, as a document."""

    def __init__(self, context: ReplyContext, row: OutboxRow, contact: Contact, reply: ReplyDocument):
        super().__init__(context, row, contact, reply)
        self.text = reply.text

    def _send(self) -> ZaloSent:
        zalo = self.context.zalo
        document = media.text_document(self.text, DOCUMENT_NAME)
        return zalo.send_file(self.contact.zalo_user_id, zalo.upload_file(document))


class AttachmentReply(Reply):
    """An agent's image or file: uploaded to Zalo, or sent as a link when Zalo will not take it."""

    def __init__(self, context: ReplyContext, row: OutboxRow, contact: Contact, attachment: ReplyAttachment):
        super().__init__(context, row, contact, attachment)
        self.attachment = attachment

    def _send(self) -> ZaloSent:
        row, context, attachment = self.row, self.context, self.attachment

        def tell_agent(problem: str) -> None:
            # Queued before the link goes out, so a crash right after the send cannot lose the note.
            label = attachment.name or attachment.kind
            # The attachment itself did not reach the customer (a link did): told as a failure is.
            self._note(f"fallback:{row.source_id}", notes.fallback_note(label, problem), context.clock(), notes.FAILURE)

        return media.send_to_zalo(
            attachment,
            self.contact.zalo_user_id,
            context.zalo,
            context.download,
            row.attempts,
            tell_agent,
        )


class OutsideWindowReply(Reply):
    """A reply zfsync thinks is past the 7-day window: Zalo's own view decides (an interaction other than a
    message may have opened it), and only when it agrees is the reply held back, with no doomed send."""

    def __init__(self, reply: Reply):
        super().__init__(reply.context, reply.row, reply.contact, reply.content)
        self.reply = reply

    def send(self) -> Outcome:
        if self.context.clocks.window_per_zalo(self.contact) is False:
            return Refused("the customer's last interaction is over 7 days old", notes.WINDOW_CODE)
        return self.reply.send()  # open, or not known: Zalo decides, at worst it refuses and the agent is told

    def _send(self) -> ZaloSent:
        raise AssertionError("sent through the reply it holds")


class SkippedReply(Reply):
    """Not to be sent: a resolve notice that would be paid."""

    def __init__(self, context: ReplyContext, row: OutboxRow, contact: Contact, content: outbound.Reply, reason: str):
        super().__init__(context, row, contact, content)
        self.reason = reason

    def send(self) -> Outcome:
        log.info("resolve_notice_skipped", contact=self.contact.zalo_user_id, reason=self.reason)
        return Skipped(self.reason)

    def _send(self) -> ZaloSent:
        raise AssertionError("a skipped reply sends nothing")
