"""`zfsync setup`'s Zalo part: the app's id and secret, its callback URL, the grant (the OA permission link
and the code pasted back, or a refresh token from the API Explorer), and the OA the tokens were granted
for, read from a scratch store and confirmed by the person before anything is written."""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zfsync import config
from zfsync.cli.setup.answers import Asker, Refused, https_address, required, until, zalo_grant
from zfsync.config import keys as config_keys
from zfsync.domain import ZaloTokens
from zfsync.domain.errors import AuthError, ConfigError, ZfsyncError
from zfsync.sides.zalo import oauth
from zfsync.store import Store

ZALO_APPS = "https://developers.zalo.me/apps"


@dataclass
class ZaloGrant:
    asker: Asker
    insecure: bool = False  # plain http allowed (the simulators, in tests)
    zalo_api_url: str = ""
    zalo_oauth_url: str = ""

    def run(self) -> tuple[str, str, str, str, ZaloTokens]:
        """The app id and secret, the callback URL, and the OA the person confirms with its tokens."""
        asker = self.asker
        asker.say(f"Zalo: the app's id and secret are on {ZALO_APPS} (your app > Settings).")
        app_id = until(asker, lambda: required(asker.ask("zalo_app_id", "Zalo app id"), "the app id"))
        app_secret = until(
            asker,
            lambda: required(asker.ask("zalo_app_secret", "Zalo app secret (hidden)", secret=True), "the secret"),
        )
        asker.say(
            '\nThe app needs an "Official Account Callback Url" (app > Official Account > Settings). zfsync has\n'
            "no public endpoint: any HTTPS address you own will do, even one that shows nothing, since you copy the\n"
            "code from your browser's address bar after accepting."
        )
        redirect_uri = until(
            asker, lambda: https_address(asker.ask("redirect_uri", "Callback URL registered for the app"))
        )
        oauth_url = self.zalo_oauth_url or str(config_keys.SCHEMA["zalo"]["oauth_url"][0])
        client = oauth.ZaloOAuth(oauth_url, app_id, app_secret)
        while True:
            granted = until(asker, lambda: self._grant(client, oauth_url, app_id, redirect_uri))
            oa, tokens = self._oa(granted, app_id, app_secret)
            name, oa_id = str(oa.get("name", "?")), str(oa.get("oa_id") or oa.get("oaid") or "")
            if asker.confirm("yes", f"Zalo authorised the OA {name!r} (id {oa_id}). Is this the right OA?", True):
                return app_id, app_secret, redirect_uri, oa_id, tokens
            if not asker.interactive:
                raise ConfigError("zfsync setup: the OA was not confirmed")
            asker.say("Then open the link again, choose the right OA and accept.")

    def _grant(self, client: oauth.ZaloOAuth, oauth_url: str, app_id: str, redirect_uri: str) -> ZaloTokens:
        asker = self.asker
        verifier = ""
        if not asker.interactive:
            # No browser to come back from: a refresh token from Zalo's API Explorer.
            kind, value = "refresh_token", asker.ask("zalo_refresh_token", "A refresh token from Zalo's API Explorer")
        else:
            verifier, challenge = oauth.new_pkce_pair()
            link = oauth.permission_url(oauth_url, app_id, redirect_uri, challenge, secrets.token_urlsafe(8))
            asker.say("\nOpen this link as an admin of the OA, choose the OA and accept:")
            asker.say(f"  {link}")
            pasted = asker.ask(
                "zalo_grant", "Paste the address you landed on (or the code; or refresh:TOKEN from the API Explorer)"
            )
            kind, value = zalo_grant(pasted)
        try:
            if kind == "refresh_token":
                return client.redeem_refresh_token(value)
            return client.exchange_code(value, verifier)
        except AuthError as exc:
            what = "refresh token" if kind == "refresh_token" else "code (each works once, for a few minutes)"
            raise Refused(f"Zalo refused the {what}: {exc}") from None
        except ZfsyncError as exc:
            raise Refused(f"Zalo's token endpoint did not answer as expected: {exc}") from None

    def _oa(self, granted: ZaloTokens, app_id: str, app_secret: str) -> tuple[dict[str, Any], ZaloTokens]:
        """The OA the tokens were granted for, asked with them from a scratch store (the real one is not
        touched before the person has said yes), and the tokens as they stand after (a refresh spends the
        refresh token)."""
        with tempfile.TemporaryDirectory(prefix="zfsync-setup-") as scratch:
            store = Store.open(Path(scratch) / "setup.db")
            try:
                now = time.time()
                store.save_tokens(granted, now)
                oa = self._getoa(store, app_id, app_secret)
                held = store.load_tokens()
            finally:
                store.close()
        if held is None:
            return oa, granted
        return oa, ZaloTokens(held.access_token, held.refresh_token, max(0.0, held.expires_at - time.time()))

    def _getoa(self, store: Store, app_id: str, app_secret: str) -> dict[str, Any]:
        from zfsync.runtime.app import build_clients

        raw = {
            "zalo": {
                "app_id": app_id,
                "api_url": self.zalo_api_url or config_keys.SCHEMA["zalo"]["api_url"][0],
                "oauth_url": self.zalo_oauth_url or config_keys.SCHEMA["zalo"]["oauth_url"][0],
                "allow_insecure_http": self.insecure,
            },
            "freshchat": {"api_url": "https://api.freshchat.com", "channel_id": "-"},
            "store": {"path": store.where},
        }
        settings = config.from_mapping(raw, {"ZFSYNC_ZALO_APP_SECRET": app_secret, "ZFSYNC_FRESHCHAT_API_KEY": "-"})
        try:
            return build_clients(settings, store).zalo.oa_profile()
        except ZfsyncError as exc:
            raise ConfigError(
                f"zfsync setup: Zalo's getoa failed with the new tokens (nothing was written): {exc}"
            ) from None
