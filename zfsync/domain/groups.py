"""Zalo group chats (the OA's GMF groups) in zfsync's words. A group stands where a customer stands: its
contact's Zalo id is the group's id under `GROUP_PREFIX` (never a Zalo user id, which is all digits), so
the outbox, the lanes and the conversations carry groups unchanged, and each step that differs asks
`is_group`."""

from __future__ import annotations

from dataclasses import dataclass

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
