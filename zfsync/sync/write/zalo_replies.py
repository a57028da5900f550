"""Write to Zalo: agents' replies, resolve notices and "/zalo ..." commands, through ``message/cs`` and the
OA's user APIs.

Zalo accepts customer-service messages only within 7 days of the customer's last interaction (research
§7). A reply zfsync thinks is outside the window is first checked against Zalo's own view
(`quota/message`, at most once an hour a customer): another interaction may have opened it. Only when
Zalo agrees is it held back, and the agent told. Each send answer says what the reply was paid from:
zfsync keeps the customer's free replies from it, and tells the agent once when they are spent. Every
failure that ends a row becomes one private note in the FreshChat conversation it came from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from zfsync.domain import F2Z, Contact, Kind, Media, OutboxRow, ZaloMessage, ZaloSent, outbound
from zfsync.domain.outbound import ReplyAttachment
from zfsync.errors import ParameterRefused, PermanentError, RemoteError, TransientError
from zfsync.i18n import N_, _
from zfsync.sync.decide import echo, notes, pages, plan, retries, zalo_clocks
from zfsync.sync.desk.profiles import TAG_LIMIT
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


class ZaloWriter:
    def __init__(
        self,
        zalo: ZaloSide,
        store: WriterStore,
        clock: Callable[[], float],
        download: Callable[[str, int], Media],
        rules: ZaloRules | None = None,
        package_seen: Callable[[int, int, str], None] | None = None,
    ):
        self.zalo = zalo
        self.store = store
        self.clock = clock
        self.download = download  # FreshChat attachments, fetched with the API key where needed
        self.rules = rules or ZaloRules()
        # told what a send's answer said is left of the OA package's free messages (`Reminders`)
        self.package_seen = package_seen or (lambda remain, total, expires: None)

    def action(self, row: OutboxRow) -> Reply:
        contact = self.store.contact_by_id(row.contact_id)
        now = self.clock()
        planned = plan.plan_to_zalo(
            outbound.decode(row.kind, row.payload),
            self.rules.notice_only_when_free,
            zalo_clocks.reply_is_free(contact, now),
        )
        reply: Reply
        if isinstance(planned, plan.SkipNotice):
            return SkippedReply(self, row, contact, planned.reason)
        if isinstance(planned, plan.RunCommand):
            return CommandReply(self, row, contact, planned.name, planned.arg)  # no message: no window
        if isinstance(planned, plan.SendText):
            reply = TextReply(self, row, contact, planned.text, (planned.quote, planned.quote_alias))
        elif isinstance(planned, plan.SendDocument):
            reply = DocumentReply(self, row, contact, planned.text)
        else:
            reply = AttachmentReply(self, row, contact, planned.attachment)
        return reply if zalo_clocks.window_open(contact, now) else OutsideWindowReply(reply)

    def heavy(self, row: OutboxRow) -> bool:
        """An agent's image or file (a download and an upload), or a long text sent as a document."""
        return row.kind in (Kind.IMAGE, Kind.FILE, Kind.TEXT_FILE)

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

    def learned(self, contact: Contact, row: OutboxRow, sent: ZaloSent) -> None:
        """What the answer said the send was paid from: the customer's free replies, the OA's package."""
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
                outbound.decode(row.kind, row.payload).agent_id,
                self.clock(),
            )
            self.store.insert_rows(contact.id, [note], self.clock())
            log.info("free_replies_spent", contact=contact.zalo_user_id)


class Reply(ABC):
    """An agent's reply on its way to the customer. However it is sent, an earlier attempt is found the
    same way, and a failure reaches the agent as one private note in the conversation it came from."""

    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact):
        self.writer = writer
        self.row = row
        self.contact = contact
        self.content = outbound.decode(row.kind, row.payload)  # what the agent's reply carries

    @abstractmethod
    def _send(self) -> ZaloSent:
        """Send to the customer; returns what Zalo answered."""

    def send(self) -> Outcome:
        sent = self._send()
        self.writer.learned(self.contact, self.row, sent)
        return Sent(sent.message_id)

    def reconcile(self) -> Sent | None:
        """Our earlier attempt landed if the user's conversation shows an OA message with this content
        since shortly before the attempt that none of our other sends explains (`echo.landed`)."""
        row, zalo = self.row, self.writer.zalo
        since = (row.claimed_at or self.writer.clock()) - RECONCILE_SLACK_MS / 1000
        listing = (
            zalo.conversation(self.contact.zalo_user_id, offset=number * 10, count=10)
            for number in range(RECONCILE_PAGES)
        )

        def older(message: ZaloMessage) -> bool:
            return 0 <= message.time_ms < since * 1000

        read = pages.walk(listing, pages.from_first(older), RECONCILE_PAGES, full_page=10)
        listed = [(m.message_id, m.type, m.text) for m in read.items if m.from_oa]
        sends = self.writer.store.own_sends(self.contact.id, since - echo.WINDOW)
        found = echo.landed(self.content, row.id, listed, sends)
        return Sent(found) if found else None

    def gave_up(self, failure: Failure, now: float) -> None:
        """Tell the agent, once per failed message, in the conversation the reply came from."""
        row, preview = self.row, outbound.preview(self.content)
        if failure.final:
            text = notes.failure_note(failure.code, failure.reason, preview, failure.advice)
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
        self.writer.store.insert_rows(row.contact_id, [note], now)


class TextReply(Reply):
    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact, text: str, quotes: tuple[str, ...] = ()):
        super().__init__(writer, row, contact)
        self.text = text
        self.quotes = tuple(q for q in quotes if q)  # the quoted message's ids, in the order Zalo is offered them

    def _send(self) -> ZaloSent:
        zalo, user = self.writer.zalo, self.contact.zalo_user_id
        for quote in self.quotes:
            try:
                return zalo.send_text(user, self.text, quote=quote)
            except ParameterRefused as exc:  # any other refusal holds without the quote: no doomed resend
                # Zalo may know the message under its other listing's id, or no longer at all.
                log.info("zalo_quote_refused", row=self.row.id, quote=quote, error=str(exc))
        return zalo.send_text(user, self.text)


class DocumentReply(Reply):
    """A reply too long for Zalo's texts, as a document."""

    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact, text: str):
        super().__init__(writer, row, contact)
        self.text = text

    def _send(self) -> ZaloSent:
        zalo = self.writer.zalo
        document = media.text_document(self.text, DOCUMENT_NAME)
        return zalo.send_file(self.contact.zalo_user_id, zalo.upload_file(document))


class AttachmentReply(Reply):
    """An agent's image or file: uploaded to Zalo, or sent as a link when Zalo will not take it."""

    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact, attachment: ReplyAttachment):
        super().__init__(writer, row, contact)
        self.attachment = attachment

    def _send(self) -> ZaloSent:
        row, writer, attachment = self.row, self.writer, self.attachment

        def tell_agent(problem: str) -> None:
            # Queued before the link goes out, so a crash right after the send cannot lose the note.
            label = attachment.name or attachment.kind
            # The attachment itself did not reach the customer (a link did): told as a failure is.
            self._note(f"fallback:{row.source_id}", notes.fallback_note(label, problem), writer.clock(), notes.FAILURE)

        return media.send_to_zalo(
            attachment,
            self.contact.zalo_user_id,
            writer.zalo,
            writer.download,
            row.attempts,
            tell_agent,
        )


class OutsideWindowReply(Reply):
    """A reply zfsync thinks is past the 7-day window: Zalo's own view decides (an interaction other than a
    message may have opened it), and only when it agrees is the reply held back, with no doomed send."""

    def __init__(self, reply: Reply):
        super().__init__(reply.writer, reply.row, reply.contact)
        self.reply = reply

    def send(self) -> Outcome:
        if self.writer.window_per_zalo(self.contact) is False:
            return Refused("the customer's last interaction is over 7 days old", notes.WINDOW_CODE)
        return self.reply.send()  # open, or not known: Zalo decides, at worst it refuses and the agent is told

    def _send(self) -> ZaloSent:
        raise AssertionError("sent through the reply it holds")


class SkippedReply(Reply):
    """Not to be sent: a resolve notice that would be paid."""

    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact, reason: str):
        super().__init__(writer, row, contact)
        self.reason = reason

    def send(self) -> Outcome:
        log.info("resolve_notice_skipped", contact=self.contact.zalo_user_id, reason=self.reason)
        return Skipped(self.reason)

    def _send(self) -> ZaloSent:
        raise AssertionError("a skipped reply sends nothing")


class CommandReply(Reply):
    """An agent's "/zalo ..." private note, done on Zalo; the agent gets a note saying it was done."""

    def __init__(self, writer: ZaloWriter, row: OutboxRow, contact: Contact, name: str, arg: str):
        super().__init__(writer, row, contact)
        self.name = name
        self.arg = arg

    def send(self) -> Outcome:
        writer, user = self.writer, self.contact.zalo_user_id
        done = f"command:{self.row.source_id}"  # no message on Zalo: an id of its own
        if self.name == "info":
            if (
                not zalo_clocks.window_open(self.contact, writer.clock())
                and writer.window_per_zalo(self.contact) is False
            ):
                return Refused(
                    "the customer's last interaction is over 7 days old", notes.WINDOW_CODE, notes.WINDOW_ADVICE
                )
            rules, image = writer.rules, self._card_image()
            if not image:
                advice = N_(
                    "The card needs an image and the OA has no avatar: the operator must set sync.info_card_image."
                )
                return Refused("the OA has no avatar for the card", "config", advice)
            sent = writer.zalo.send_info_request(user, rules.card_title, rules.card_subtitle, image)
            writer.learned(self.contact, self.row, sent)
            done = sent.message_id
        elif self.name in ("tag", "untag") and self.arg:
            if len(self.arg) > TAG_LIMIT:
                advice = N_("A Zalo tag here is one line of at most 64 characters: write a shorter one.")
                return Refused(f"the tag is {len(self.arg)} characters long", "tag_too_long", advice)
            (writer.zalo.tag_follower if self.name == "tag" else writer.zalo.untag_follower)(user, self.arg)
            writer.store.check_profile_soon(self.contact.id)  # zalo_tags on the FreshChat user, within a minute
        if self.name == "status":
            text = notes.status_note(self._status())
        elif self.name == "retry":
            failed = writer.store.failed_replies(self.contact.id)
            chosen, left = retries.on_command(failed, self.row.conversation_id or "", self.arg.lower() == "last")
            writer.store.retry_replies(chosen)
            log.info("failed_replies_retried", contact=user, count=len(chosen), left=left)
            text = notes.retry_note(len(chosen), left, writer.rules.command_prefix)
        else:
            text = notes.command_note(self.name, self.arg, writer.rules.command_prefix)
        self._note(f"done:{self.row.source_id}", text, writer.clock(), notes.ANSWER)
        log.info("zalo_command_done", contact=user, command=self.name)
        return Sent(done)

    def _status(self) -> notes.CustomerStatus:
        """What Zalo and the store know of this customer now: the profile asked of Zalo (an answer it cannot
        give is said in the note, not a failure), the clocks and failed replies from the store."""
        writer, contact = self.writer, self.writer.store.contact_by_id(self.contact.id)
        tags: tuple[str, ...] | None = None
        shared: tuple[tuple[str, str], ...] | None = None
        unreadable = ""
        try:
            profile = writer.zalo.user_profile(contact.zalo_user_id)
            tags, shared = profile.tags, profile.shared
        except (PermanentError, TransientError) as exc:
            unreadable = _(exc.advice) if exc.advice else str(exc)
        return notes.CustomerStatus(
            now_ms=int(writer.clock() * 1000),
            window_closes_ms=zalo_clocks.window_closes_ms(contact),
            free_until_ms=zalo_clocks.free_until_ms(contact),
            free_left=contact.free_replies_left,
            tags=tags,
            shared=shared,
            failed_replies=writer.store.failed_count(contact.id, F2Z),
            unreadable=unreadable,
        )

    def _card_image(self) -> str:
        return self.writer.rules.card_image or self.writer.zalo.oa_avatar()

    def _send(self) -> ZaloSent:
        raise AssertionError("a command is carried out by send")

    def reconcile(self) -> Sent | None:
        # A card is looked for in the conversation, as any send; a tag set twice is the same tag.
        return super().reconcile() if self.name == "info" else None

    def gave_up(self, failure: Failure, now: float) -> None:
        text = notes.command_failed_note(
            self.name, self.arg, failure.reason, self.writer.rules.command_prefix, failure.advice
        )
        self._note(f"note:{self.row.source_id}", text, now, notes.ANSWER)
