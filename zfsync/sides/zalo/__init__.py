"""Zalo's Official Account API: the client (`client.py`), its OAuth v4 tokens (`oauth.py`), every error
code once (`codes.py`) and the permission groups an OA grants an app (`permissions.py`)."""
