"""Secrets at rest in a fleet's store: each tenant's FreshChat key and Zalo app secret, and its OAuth tokens.

They are sealed with Fernet (`cryptography`: AES-128-CBC with an HMAC, so a changed byte is refused, not
misread) under the key in ``ZFSYNC_SECRETS_KEY``, which lives in the fleet's env file and never in the
database: a dump of the store holds no secret in clear. The variable may list several keys, newest first
(`zfsync tenant rekey` writes them so): the first seals, every one opens.

A sealed value starts with `SEALED`; a value without it is read as written (a single-OA store, which keeps
its tokens as it always did, under the file's 0600 mode).
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from zfsync.domain.errors import ConfigError, StoreError

KEY_NAME = "ZFSYNC_SECRETS_KEY"  # where the key comes from, as errors name it (zfsync.config reads it)
SEALED = "fernet:"


def new_key() -> str:
    return Fernet.generate_key().decode()


class Sealer:
    """Seals and opens secrets with the keys given (none: values are kept as written)."""

    def __init__(self, keys: str = ""):
        self.keys = [k.strip() for k in keys.split(",") if k.strip()]
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in self.keys]) if self.keys else None
        except ValueError:
            raise ConfigError(
                f"{KEY_NAME} is not a Fernet key (32 bytes, url-safe base64, 44 characters): "
                "make one with `zfsync tenant rekey --new-key`"
            ) from None

    @property
    def active(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None or not value:
            return value
        return SEALED + self._fernet.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        if not value.startswith(SEALED):
            return value
        if self._fernet is None:
            raise StoreError(f"the store holds encrypted secrets: set {KEY_NAME} in the fleet's env file")
        try:
            return self._fernet.decrypt(value[len(SEALED) :].encode()).decode()
        except InvalidToken:
            raise StoreError(
                f"a secret in the store does not open with {KEY_NAME}: "
                "set the key it was sealed with (during `zfsync tenant rekey`, list both, new first)"
            ) from None

    def reseal(self, value: str) -> str:
        """``value`` sealed again with the first key (after `rekey`); a plain one is sealed."""
        return self.seal(self.open(value))
