"""The readers: each side's listings walked, diffed against the store and queued as rows
(`zalo_reader.py`, `freshchat_reader.py`), and the history import. They use the ports, the store's seams
and the deciders."""
