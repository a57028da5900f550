"""FreshChat's API: the client (`client.py`) and every JSON shape it reads or writes (`wire.py`). It may
import the domain, errors, log and the transport beside it (`zfsync.sides.http`, the budget)."""
