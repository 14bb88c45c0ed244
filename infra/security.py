"""Password hashing, credential encryption at rest, session and API tokens."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A valid hash to verify against when the e-mail is unknown, so timing does not reveal accounts.
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """Sessions and API tokens are stored by digest: a database leak does not leak live ones."""
    return hashlib.sha256(token.encode()).digest()


# API tokens carry a prefix so a leaked one is easy to find (in logs, repositories, scanners).
API_TOKEN_PREFIX = "sb_"


def new_api_token() -> str:
    """A random 32-byte secret behind the recognisable prefix."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


class CredentialBox:
    """Encrypts inbox credentials (bot tokens, webhook secrets) with a key from settings."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def seal(self, credentials: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(credentials, sort_keys=True).encode())

    def open(self, sealed: bytes | None) -> dict[str, Any]:
        if not sealed:
            return {}
        try:
            return json.loads(self._fernet.decrypt(sealed))
        except InvalidToken as exc:
            raise ValueError("inbox credentials cannot be decrypted with CREDENTIALS_KEY") from exc


def generate_credentials_key() -> str:
    return Fernet.generate_key().decode()
