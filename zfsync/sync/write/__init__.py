"""The writers: each queued row becomes an action that sends it, finds an earlier attempt's send, or gives up
and tells the agent (`freshchat_writer.py` makes `freshchat_posts.py`'s posts, which post through
`freshchat_poster.py` and open where `freshchat_routes.py` says; `zalo_writer.py` makes
`zalo_replies.py`'s and `zalo_commands.py`'s replies); each action gets a small context, never its
writer. The delivery lanes that run them and the retry policy (`lanes.py`, `delivery.py`); copying media
between the sides (`media.py`). May import the domain, errors, i18n and `zfsync.sync`'s deciders, ports and
seams; never the store, the clients or the runtime."""
