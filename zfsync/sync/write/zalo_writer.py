"""Write to Zalo: agents' replies, resolve notices and "/zalo ..." commands, through ``message/cs`` and the
OA's user APIs. The writer turns a queued row into its reply (`zalo_replies`, `zalo_commands`), with
no request made yet; a reply zfsync thinks is past the 7-day window asks Zalo before it is held back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from zfsync.domain import Contact, Kind, Media, OutboxRow, ZaloContent, group_id_of, outbound
from zfsync.domain.outbound import AgentNote, Command, ReplyDocument, ReplyText, ResolveNotice
from zfsync.sync.decide import groups, plan, render, replies, zalo_clocks
from zfsync.sync.ports import ZaloSide
from zfsync.sync.seams import WriterStore
from zfsync.sync.write.zalo_commands import CommandReply
from zfsync.sync.write.zalo_replies import (
    AttachmentReply,
    CustomerClocks,
    DocumentReply,
    GroupTextReply,
    OutsideWindowReply,
    Reply,
    ReplyContext,
    SkippedReply,
    TextReply,
    ZaloRules,
)

__all__ = ["ZaloRules", "ZaloWriter"]


class ZaloWriter:
    def __init__(
        self,
        zalo: ZaloSide,
        store: WriterStore,
        clock: Callable[[], float],
        download: Callable[[str, int], Media],
        rules: ZaloRules | None = None,
        package_seen: Callable[[int, int, str], None] | None = None,
        conversation_properties: Callable[[str], dict[str, str]] | None = None,
    ):
        self.store = store
        self.clock = clock
        self.rules = rules or ZaloRules()
        clocks = CustomerClocks(zalo, store, clock, package_seen)
        self.context = ReplyContext(
            zalo, store, clock, download, self.rules, clocks, conversation_properties or (lambda conversation_id: {})
        )

    def action(self, row: OutboxRow) -> Reply:
        contact = self.store.contact_by_id(row.contact_id)
        now = self.clock()
        content = row.content
        assert not isinstance(content, ZaloContent | AgentNote), row.kind  # a row to Zalo: an agent's reply
        if contact.is_group:
            return self._to_group(row, contact, content)
        planned = plan.plan_to_zalo(content, self.rules.notice_only_when_free, zalo_clocks.reply_is_free(contact, now))
        reply: Reply
        if isinstance(planned, plan.SkipNotice):
            return SkippedReply(self.context, row, contact, content, planned.reason)
        if isinstance(planned, plan.RunCommand):
            assert isinstance(content, Command)  # only a command row plans as one
            return CommandReply(self.context, row, contact, content, planned.name)  # no message: no window
        if isinstance(planned, ReplyText):
            reply = TextReply(self.context, row, contact, planned)
        elif isinstance(planned, ReplyDocument):
            reply = DocumentReply(self.context, row, contact, planned)
        else:
            reply = AttachmentReply(self.context, row, contact, planned)
        return reply if zalo_clocks.window_open(contact, now) else OutsideWindowReply(reply)

    def _to_group(self, row: OutboxRow, contact: Contact, content: outbound.Reply) -> Reply:
        """A reply to a group chat: no 7-day window and no free replies (a group runs on its own package),
        no resolve notice, and each ``@Name`` of a member who wrote there as Zalo's mention."""
        planned = plan.plan_to_zalo(content)
        if isinstance(content, ResolveNotice) or row.source_id.startswith(replies.RATING_SOURCE):
            # A notice or a rating template (to one customer's phone) is no message for a whole group.
            return SkippedReply(self.context, row, contact, content, "a group chat gets no resolve notice or rating")
        if isinstance(planned, plan.RunCommand):
            assert isinstance(content, Command)
            return CommandReply(self.context, row, contact, content, planned.name)
        if isinstance(planned, ReplyText):
            known = self.store.group_book().group(group_id_of(contact.zalo_user_id))
            members = dict(known.members) if known else {}
            text = groups.outgoing_mentions(planned.text, members)
            mentioned = replace(planned, text=text if len(text) <= render.ZALO_TEXT_LIMIT else planned.text)
            return GroupTextReply(self.context, row, contact, mentioned, members)
        if isinstance(planned, ReplyDocument):
            return DocumentReply(self.context, row, contact, planned)
        assert not isinstance(planned, plan.SkipNotice)
        return AttachmentReply(self.context, row, contact, planned)

    def heavy(self, row: OutboxRow) -> bool:
        """An agent's image or file (a download and an upload), or a long text sent as a document."""
        return row.kind in (Kind.IMAGE, Kind.FILE, Kind.TEXT_FILE)
