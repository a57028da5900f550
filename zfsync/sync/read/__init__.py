"""The readers: each side's listings walked, diffed against the store and queued as rows
(`zalo_reader.py`, `freshchat_reader.py`, with `interacted.py` for who wrote while the feed was not read),
and the history import. They use the ports, the store's seams and the deciders."""
