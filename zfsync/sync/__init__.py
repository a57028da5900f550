"""The sync core: what crosses between Zalo and FreshChat and when, decided as plain values (`plan.py`,
`feed.py`, `replies.py`, `routing.py`, `clock.py`, ...) and carried out by the readers, writers and lanes
through ports (`ports.py` for the two sides, `seams.py` for the store). It imports the domain, errors, log,
i18n and the sides' budget helpers (`zfsync.sides.quota`, `priority`); never HTTP, SQL, the store's
models, the runtime or the commands."""
