"""The writers: each queued row becomes an action that sends it, finds an earlier attempt's send, or gives up
and tells the agent (`freshchat_writer.py`, `zalo_writer.py`); the delivery lanes that run them and the retry
policy (`lanes.py`, `delivery.py`); copying media between the sides (`media.py`)."""
