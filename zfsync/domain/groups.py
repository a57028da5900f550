"""Zalo group chats (the OA's GMF groups) in zfsync's words. A group stands where a customer stands: its
contact's Zalo id is the group's id under `GROUP_PREFIX` (never a Zalo user id, which is all digits), so
the outbox, the lanes and the conversations carry groups unchanged, and each step that differs asks
`is_group`."""

from __future__ import annotations

from dataclasses import dataclass

from zfsync.domain.zalo import Baseline

GROUP_PREFIX = "group:"


def group_key(group_id: str) -> str:
    """The contact id a group stands under."""
    return f"{GROUP_PREFIX}{group_id}"


def is_group(zalo_id: str) -> bool:
    return zalo_id.startswith(GROUP_PREFIX)


def group_id_of(zalo_id: str) -> str:
    """Zalo's group id of a group's contact id."""
    return zalo_id[len(GROUP_PREFIX) :]


@dataclass(frozen=True)
class ZaloGroup:
    """One of the OA's groups, as ``group/getgroupsofoa`` lists it."""

    group_id: str
    name: str
    avatar: str = ""
    enabled: bool = True  # "disabled": the OA can neither manage it nor send to it
    link: str = ""
    members: int | None = None


@dataclass(frozen=True)
class ZaloGroupAsset:
    """One of the OA's GMF assets (``quota/group``): the package a group runs on, and until when."""

    product: str  # gmf10, gmf50, gmf100
    valid_through: str  # dd/MM/yyyy, as Zalo wrote it ("" : not a day)
    group_id: str  # the group a used asset serves ("" : not used)
    status: str = ""  # available, used


@dataclass(frozen=True)
class KnownGroup:
    """What zfsync keeps of a group between polls: its listing, its package's end, when its own messages
    were last read, the end a note was queued for, and the members seen writing (user id -> name, for
    mentions both ways)."""

    group_id: str
    name: str = ""
    avatar: str = ""
    enabled: bool = True
    valid_through: str = ""  # dd/MM/yyyy ("" : not known)
    swept_at: float = 0.0
    warned_through: str = ""  # the valid_through the agent was warned of
    members: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GroupBook:
    """Where reading the OA's groups stands: what their feed held when groups were first read (history,
    never bridged; None before), the groups known, and when the list and the packages were last read."""

    baseline: Baseline | None = None
    groups: tuple[KnownGroup, ...] = ()
    listed_at: float = 0.0
    assets_at: float = 0.0
    refused: str = ""  # why Zalo last refused the group chats as a whole ("" : it did not)
    refused_at: float = 0.0

    def group(self, group_id: str) -> KnownGroup | None:
        return next((g for g in self.groups if g.group_id == group_id), None)
