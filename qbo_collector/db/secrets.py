"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with the key from the settings."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from qbo_collector import errors


class Vault:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise errors.ConfigError(
                "Stored tokens cannot be decrypted with the current secret key: QBO_COLLECTOR_SECRET_KEY "
                "changed since they were saved. Restore the old key or reconnect the company.",
                variable="QBO_COLLECTOR_SECRET_KEY") from None
