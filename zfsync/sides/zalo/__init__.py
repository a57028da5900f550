"""Zalo's Official Account API: the client (`client.py`: the requests and their errors), every JSON shape
both ways (`wire.py`), the OAuth v4 tokens (`oauth.py`), every error code once (`codes.py`) and the
permission groups an OA grants an app (`permissions.py`). It may import the domain, errors, log and the
transport beside it (`zfsync.sides.http`, the budget)."""
