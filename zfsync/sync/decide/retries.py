"""Which failed replies go again, decided with no I/O: when the customer comes back (once, for the failures
their coming back can mend: the window, the follow, the quota), or when an agent asks (`/zalo retry`).

Only a reply the side refused for good is sent again from here: one given up after transient errors may have
landed (its last answer never came), so it stays for the operator's `zfsync retry`, whose outbox rules look
for it on Zalo first."""

from __future__ import annotations

from zfsync.domain import FailedReply

WINDOW = "window"  # zfsync's own code for a reply held back past the 7-day window
# What a customer's writing again can mend: the window (-230, -232 and zfsync's own), not following the OA
# (-213), and the quotas that a new interaction renews (-211 the OA's for the feature, -218 the user's).
MENDED_BY_RETURN = frozenset({WINDOW, "-230", "-232", "-213", "-211", "-218"})


def refused_for_good(code: str) -> bool:
    """The side refused the reply (a Zalo error code, or zfsync's window): it did not land."""
    return code == WINDOW or code.startswith("-")


def on_return(failed: list[FailedReply]) -> list[int]:
    """The customer wrote again: the replies their coming back can mend, not sent again before."""
    return [f.row_id for f in failed if f.code in MENDED_BY_RETURN and not f.retried]


def on_command(failed: list[FailedReply], conversation_id: str, latest_only: bool) -> tuple[list[int], int]:
    """``/zalo retry`` (or ``/zalo retry last``) in ``conversation_id``: the replies sent again, oldest first,
    and how many failed replies of that conversation are left to the operator (outcome not known)."""
    here = [f for f in failed if f.conversation_id == conversation_id]
    refused = [f.row_id for f in here if refused_for_good(f.code)]
    chosen = refused[-1:] if latest_only else refused
    return chosen, len(here) - len(refused)
