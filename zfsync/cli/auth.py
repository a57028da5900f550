"""`zfsync auth zalo`: store the OA's tokens, from a refresh token pasted from the API Explorer, or through
the OA permission link (PKCE) and the code its callback receives."""

from __future__ import annotations

import argparse
import secrets
import time

from zfsync import log
from zfsync.cli.store import forget_permission_refusals, settings_of, store_of
from zfsync.domain.errors import ConfigError


def cmd_auth(args: argparse.Namespace) -> int:
    from zfsync.sides.zalo import oauth

    settings = settings_of(args)
    store = store_of(settings)
    try:
        client = oauth.ZaloOAuth(settings.zalo.oauth_url, settings.zalo.app_id, settings.zalo.app_secret)
        if args.refresh_token is not None:
            if not args.refresh_token.strip():
                raise ConfigError("zfsync auth zalo: --refresh-token is empty: paste the token from the API Explorer")
            log.remember_secret(args.refresh_token.strip())
            tokens = client.redeem_refresh_token(args.refresh_token.strip())
            store.save_tokens(tokens, time.time())
            forget_permission_refusals(store)
            print(
                f"zalo: refresh token redeemed; access token valid for {tokens.expires_in / 3600:.0f} h, "
                "stored. A running daemon picks it up by itself."
            )
            return 0
        if args.code is not None:
            if not args.code.strip():
                raise ConfigError("zfsync auth zalo: --code is empty: pass the code= value of the callback URL")
            verifier = store.get_state("zalo.pkce_verifier") or ""
            tokens = client.exchange_code(args.code.strip(), verifier)
            store.save_tokens(tokens, time.time())
            forget_permission_refusals(store)
            store.delete_state("zalo.pkce_verifier")
            print("zalo: authorization code exchanged; tokens stored. A running daemon picks them up by itself.")
            return 0
        if not settings.zalo.redirect_uri:
            raise ConfigError(
                "config key zalo.redirect_uri is missing: set it to the app's registered "
                "Official Account callback URL to build the permission link"
            )
        verifier, challenge = oauth.new_pkce_pair()
        store.set_state("zalo.pkce_verifier", verifier)
        url = oauth.permission_url(
            settings.zalo.oauth_url,
            settings.zalo.app_id,
            settings.zalo.redirect_uri,
            challenge,
            secrets.token_urlsafe(8),
        )
        print("Open this link as an admin of the OA, choose the OA and accept:")
        print(f"  {url}")
        print("You land on the callback URL with ?code=...; then run:\n  zfsync auth zalo --code CODE")
        return 0
    finally:
        store.close()
