"""`zfsync setup`: a new desk's first run, from nothing to a checked config, stored Zalo tokens and a
running unit, without reading the config reference.

It asks for FreshChat's API URL and key and checks them at once, lets the person pick the channel (and a
group) from the account's own lists, asks for the Zalo app, explains the callback URL, prints the OAuth v4
link with PKCE and takes back the address the browser landed on (or the bare code, or a refresh token),
shows which OA was authorised and asks to confirm (asking Zalo with the new tokens from a scratch store);
asks before replacing any file and once more before writing; only then writes ``config.toml`` (only what
differs from the defaults), ``zfsync.env`` (the two secrets), each atomically with its owner and mode,
keeping a backup under a name of its own, and last the Zalo tokens into the store. A run that stops at any
point before that leaves a live desk exactly as it was. Then it runs the probes of `zfsync check` and,
under systemd, offers to start the unit. A bad answer gets one line saying why, and the question again;
secrets are read without echo and never printed.

``--non-interactive`` takes every answer from flags or environment variables instead (for Ansible): the
secrets only from the environment (a flag would show in ``ps``), the Zalo grant as a refresh token.

Part of the `cli` layer: it may import every layer below it.
"""

from zfsync.cli.setup.answers import Asker, Given, Prompter, Refused, given_answers
from zfsync.cli.setup.wizard import Setup

__all__ = ["Asker", "Given", "Prompter", "Refused", "Setup", "given_answers"]
