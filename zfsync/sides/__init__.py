"""The two API sides and their transport: HTTP (`http.py`), each side's request budget (`quota.py`,
`priority.py`), request counters (`telemetry.py`), and the clients `zalo/` and `freshchat/`, which turn
HTTP into domain objects and classify every failure. They may import the domain, errors, log, i18n and
the config's settings; never the store, the sync core or anything above."""
