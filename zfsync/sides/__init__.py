"""The two API sides and their transport: HTTP (`http.py`), each side's request budget (`quota.py`, with
`admission.py`, who may go now, and `priority.py`), request counters (`telemetry.py`), and the clients
`zalo/` and `freshchat/`, which turn HTTP into domain objects and classify every failure. They import only
the domain, errors, log and i18n: never the store, the config, the sync core or anything above."""
