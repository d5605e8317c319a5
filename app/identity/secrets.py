"""Passwords (Argon2id through pwdlib) and random tokens (kept as SHA-256 only)."""

from __future__ import annotations

import hashlib
import secrets

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# Argon2id with the library's current parameters (RFC 9106's recommended profile).
_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the username is unknown, so a miss costs as much time as a hit.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256


def hash_password(password: str) -> str:
    """The Argon2id PHC string for a password (salted; the password is not recoverable)."""
    return _hasher.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """Whether the password matches; constant work also when there is no stored hash."""
    if stored is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    try:
        return _hasher.verify(password, stored)
    except Exception:  # a malformed stored hash is a failed sign-in, not a 500
        return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"the password needs at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"the password may have at most {MAX_PASSWORD_CHARS} characters"
    if "\x00" in password:
        return "the password may not contain NUL"
    return None


def new_token() -> str:
    """A random URL-safe token (32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The stored form of a random token: its SHA-256 (a fast hash suffices for 256 bits)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
