"""A token refresh on a store several daemons share: the single-use refresh token is spent once."""

from __future__ import annotations

import threading

from devtools import pgcluster
from tests.integration.test_daemon import until
from zfsync.domain import ZaloTokens
from zfsync.sides.zalo.oauth import TokenKeeper
from zfsync.store import Store
from zfsync.store.secrets import SEALED, Sealer, new_key
from zfsync.store.state import TOKEN_LOCK_CLASS

KEY = new_key()


def test_two_daemons_refreshing_one_tenants_token_spend_its_refresh_token_once(pg_url):
    """The refresh on PostgreSQL: a second daemon waits for the first's lock, then finds the new pair."""
    first, second = (Store.open(pg_url, pgcluster.PASSWORD, tenant=3, sealer=Sealer(KEY)) for _ in range(2))
    first.save_tokens(ZaloTokens("access-1", "refresh-1", 10), now=0.0)  # expired at 10
    redeemed: list[str] = []
    inside = threading.Event()

    class OAuth:
        def redeem_refresh_token(self, token: str) -> ZaloTokens:
            redeemed.append(token)
            inside.set()
            # Answer only once the other daemon is waiting for the lock, as a slow token endpoint would.
            assert until(lambda: _waiting_for_refresh_lock(first)), "the second refresh never waited"
            return ZaloTokens("access-2", "refresh-2", 86400)

    keepers = [TokenKeeper(OAuth(), store, lambda: 100.0) for store in (first, second)]  # type: ignore[arg-type]
    got: dict[int, str] = {}
    threads = [threading.Thread(target=lambda i=i: got.update({i: keepers[i].access_token()})) for i in (0, 1)]
    threads[0].start()
    assert inside.wait(30)
    threads[1].start()
    for thread in threads:
        thread.join(30)
    assert redeemed == ["refresh-1"] and got == {0: "access-2", 1: "access-2"}
    assert second.load_tokens().refresh_token == "refresh-2"  # type: ignore[union-attr]
    raw = first.db.execute_sql("SELECT refresh_token FROM token WHERE tenant = 3").fetchone()[0]
    assert raw.startswith(SEALED) and "refresh-2" not in raw
    for store in (first, second):
        store.close()


def _waiting_for_refresh_lock(store: Store) -> bool:
    row = store.db.execute_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND NOT granted",
        (TOKEN_LOCK_CLASS,),
    ).fetchone()
    return bool(row[0])
