"""FreshChat's API: the client (`client.py`) and every JSON shape it reads or writes (`wire.py`)."""
