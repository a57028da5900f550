"""The running process: the composition root (`app.py`, clients and engine from the settings), the daemon's
loops and lanes (`daemon.py`; each loop's step in `steps.py`, its heartbeat and reports in `report.py`),
which of several daemons is active (`leader.py`), systemd's notify protocol, what the daemon reports
(`status.py`) and the Prometheus metrics. It may import every layer below it (sim excepted), never
`zfsync.cli`."""
