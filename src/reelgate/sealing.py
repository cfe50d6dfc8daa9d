"""Secrets at rest: webhook signing secrets are stored sealed (Fernet: AES-128-CBC + HMAC-SHA256), never in clear.

The sealing key comes from ``REELGATE_SECRET_KEY`` or, on a single machine, from ``<data dir>/secret.key``
(created 0600 on first use). Every process of one deployment must use the same key.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from reelgate.config import ConfigError, Settings

PREFIX = "sealed:v1:"


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise ConfigError("REELGATE_SECRET_KEY must be 32 url-safe base64-encoded bytes "
                              "(make one with: python -c 'from cryptography.fernet import Fernet; "
                              "print(Fernet.generate_key().decode())')") from None  # fmt: skip

    @classmethod
    def ephemeral(cls) -> SecretBox:
        """A box whose key lives only in this process (tests, throwaway stores)."""
        return cls(Fernet.generate_key())

    def seal(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before sealing existed; sealed again on the next rotation
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be opened: REELGATE_SECRET_KEY differs from the key "
                              "it was sealed with") from None  # fmt: skip


def _key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write the key to a private temp file, then publish it with link(): the name appears only with its full
    # content, and when two processes start at once exactly one link wins and the other reads the winner's key.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(Fernet.generate_key())
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_bytes().strip()


def load_box(settings: Settings) -> SecretBox:
    if settings.secret_key:
        return SecretBox(settings.secret_key.encode())
    return SecretBox(_key_file(settings.data_dir / "secret.key"))
