"""zfsync: answer Zalo Official Account customers from FreshChat, by polling both APIs.

The folders are its layers, each importing only from those below it (tests/unit/test_layers.py): `cli`
(the commands), `runtime` (the running process), `sim` (the simulators and fakes), `sync` (the core),
`sides`, `store` and `config`, and at the bottom `domain` (values and errors), `log` and `i18n`."""

__version__ = "0.1.0"
