"""An agent's "/zalo ..." private note, carried out on Zalo: the details card (``info``), a tag set or
removed, the customer's status, failed replies sent again, a ZNS template (``template``), the help. The
agent gets a note saying what was done, or why not."""

from __future__ import annotations

import structlog

from zfsync.domain import F2Z, Contact, OutboxRow, ZaloSent
from zfsync.domain.errors import PermanentError, TransientError
from zfsync.domain.outbound import Command
from zfsync.i18n import N_, _
from zfsync.sync.decide import notes, retries, templates, zalo_clocks
from zfsync.sync.desk.profiles import TAG_LIMIT
from zfsync.sync.write.delivery import Failure, Held, Outcome, Refused, Sent
from zfsync.sync.write.zalo_replies import Reply, ReplyContext

log = structlog.get_logger("zfsync.sync")

NOT_IN_GROUPS = ("info", "tag", "untag", "status", "template")  # a customer's: a group chat has none of them
TEMPLATE_RETRY = 60.0  # seconds before a template whose lookups Zalo did not answer is tried again


class CommandReply(Reply):
    """An agent's "/zalo ..." private note, done on Zalo; the agent gets a note saying it was done."""

    def __init__(self, context: ReplyContext, row: OutboxRow, contact: Contact, command: Command, name: str):
        """``name``: the command as planned (one zfsync knows, else help)."""
        super().__init__(context, row, contact, command)
        self.name = name
        self.arg = command.arg
        self._unanswered = False  # a template's earlier attempt ended without an answer (`reconcile`)

    def send(self) -> Outcome:
        if self.contact.is_group and self.name in NOT_IN_GROUPS:
            # A group has no profile, tags, window or phone: said to the agent, nothing done on Zalo.
            text = notes.group_command_note(self.name, self.context.rules.command_prefix)
            self._note(f"done:{self.row.source_id}", text, self.context.clock(), notes.ANSWER)
            return Sent(f"command:{self.row.source_id}")
        if self.name == "template":
            return self._template()
        context, user = self.context, self.contact.zalo_user_id
        done = f"command:{self.row.source_id}"  # no message on Zalo: an id of its own
        if self.name == "info":
            if (
                not zalo_clocks.window_open(self.contact, context.clock())
                and context.clocks.window_per_zalo(self.contact) is False
            ):
                return Refused(
                    "the customer's last interaction is over 7 days old", notes.WINDOW_CODE, notes.WINDOW_ADVICE
                )
            rules, image = context.rules, self._card_image()
            if not image:
                advice = N_(
                    "The card needs an image and the OA has no avatar: the operator must set sync.info_card_image."
                )
                return Refused("the OA has no avatar for the card", "config", advice)
            sent = context.zalo.send_info_request(user, rules.card_title, rules.card_subtitle, image)
            context.clocks.learned(self.contact, self.row, sent, self.content.agent_id)
            done = sent.message_id
        elif self.name in ("tag", "untag") and self.arg:
            if len(self.arg) > TAG_LIMIT:
                advice = N_("A Zalo tag here is one line of at most 64 characters: write a shorter one.")
                return Refused(f"the tag is {len(self.arg)} characters long", "tag_too_long", advice)
            (context.zalo.tag_follower if self.name == "tag" else context.zalo.untag_follower)(user, self.arg)
            context.store.check_profile_soon(self.contact.id)  # zalo_tags on the FreshChat user, within a minute
        if self.name == "status":
            text = notes.status_note(self._status())
        elif self.name == "retry":
            failed = context.store.failed_replies(self.contact.id)
            chosen, left = retries.on_command(failed, self.row.conversation_id or "", self.arg.lower() == "last")
            context.store.retry_replies(chosen)
            log.info("failed_replies_retried", contact=user, count=len(chosen), left=left)
            text = notes.retry_note(len(chosen), left, context.rules.command_prefix)
        else:
            text = notes.command_note(self.name, self.arg, context.rules.command_prefix)
        self._note(f"done:{self.row.source_id}", text, context.clock(), notes.ANSWER)
        log.info("zalo_command_done", contact=user, command=self.name)
        return Sent(done)

    def _status(self) -> notes.CustomerStatus:
        """What Zalo and the store know of this customer now: the profile asked of Zalo (an answer it cannot
        give is said in the note, not a failure), the clocks and failed replies from the store."""
        context, contact = self.context, self.context.store.contact_by_id(self.contact.id)
        tags: tuple[str, ...] | None = None
        shared: tuple[tuple[str, str], ...] | None = None
        unreadable = ""
        try:
            profile = context.zalo.user_profile(contact.zalo_user_id)
            tags, shared = profile.tags, profile.shared
        except (PermanentError, TransientError) as exc:
            unreadable = _(exc.advice) if exc.advice else str(exc)
        return notes.CustomerStatus(
            now_ms=int(context.clock() * 1000),
            window_closes_ms=zalo_clocks.window_closes_ms(contact),
            free_until_ms=zalo_clocks.free_until_ms(contact),
            free_left=contact.free_replies_left,
            tags=tags,
            shared=shared,
            failed_replies=context.store.failed_count(contact.id, F2Z),
            unreadable=unreadable,
        )

    def _card_image(self) -> str:
        return self.context.rules.card_image or self.context.zalo.oa_avatar()

    def _send(self) -> ZaloSent:
        raise AssertionError("a command is carried out by send")

    def reconcile(self) -> Sent | None:
        # A card is looked for in the conversation, as any send; a tag set twice is the same tag. A ZNS
        # message cannot be looked up without the id its answer carries: it is not sent again (`_template`).
        self._unanswered = self.name == "template"
        return super().reconcile() if self.name == "info" else None

    def _template(self) -> Outcome:
        """A ZNS template to the customer's phone: what the command asks, checked against the config and
        Zalo's own detail of the template before anything that costs money is sent, and sent once."""
        context, rules, contact = self.context, self.context.rules, self.contact
        if self._unanswered:
            return Refused("an earlier attempt got no answer", "zns_outcome_unknown", notes.ZNS_UNKNOWN_ADVICE)
        request = templates.parse_request(self.arg)
        if isinstance(request, templates.Problem):
            return self._problem(request)
        chosen = templates.plan_send(request, rules.templates, None, "", "")
        if isinstance(chosen, templates.Problem):
            return self._problem(chosen)  # a wrong name costs no request
        try:
            template = context.zalo.zns_template(chosen.choice.template_id)
            profile = context.zalo.user_profile(contact.zalo_user_id)
            reads = templates.needs_conversation(chosen.choice) and self.row.conversation_id
            properties = context.conversation_properties(self.row.conversation_id or "") if reads else {}
        except TransientError as exc:  # nothing was sent: the row keeps its state and is tried again
            return Held(f"Zalo did not answer before the template could be sent: {exc}", TEMPLATE_RETRY)
        name, phone = profile.display_name or contact.display_name, dict(profile.shared).get("phone", "")
        planned = templates.plan_send(request, rules.templates, template, name, phone, properties)
        if isinstance(planned, templates.Problem):
            return self._problem(planned)
        tracking = templates.tracking_id(self.row.id)
        sent = context.zalo.send_template(planned.phone, template.template_id, dict(planned.data), tracking)
        left = sent.quota.remaining if sent.quota is not None else None
        if sent.quota is not None:
            context.store.save_zns_quota(sent.quota, context.clock())
        text = notes.template_sent_note(
            planned.choice.name, template.name, planned.phone, list(planned.data), left, template.preview_url
        )
        self._note(f"done:{self.row.source_id}", text, context.clock(), notes.ANSWER)
        log.info("zns_template_sent", contact=contact.zalo_user_id, template=template.template_id, left=left)
        return Sent(f"zns:{sent.message_id}")

    def _problem(self, problem: templates.Problem) -> Refused:
        advice = notes.template_problem(problem.code, problem.reason, problem.names, self.context.rules.command_prefix)
        return Refused(problem.reason, problem.code, advice)

    def gave_up(self, failure: Failure, now: float) -> None:
        text = notes.command_failed_note(
            self.name, self.arg, failure.reason, self.context.rules.command_prefix, failure.advice
        )
        self._note(f"note:{self.row.source_id}", text, now, notes.ANSWER)
