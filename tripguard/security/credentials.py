"""Password hashing (argon2id), keyed hashes of bearer secrets, TOTP, and short-lived sign-in tickets."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import timedelta
from functools import lru_cache
from urllib.parse import parse_qs, urlparse

import jwt
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tripguard.core.clock import utcnow

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile defaults
TOTP_ISSUER = "TripGuard"
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A dummy hash so an unknown user name costs the same time as a wrong password.
DUMMY_PASSWORD_HASH = _hasher.hash(secrets.token_urlsafe(16))


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(set(password)) < 5:
        return "must not repeat so few characters"
    return None


def keyed_hash(secret_key: str, value: str, *, purpose: str) -> str:
    """HMAC-SHA256 for high-entropy bearer secrets (session tokens, API keys)."""
    key = _derive(secret_key, f"tripguard/{purpose}")
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=64)
def _derive(secret_key: str, info: str) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info.encode()).derive(
        secret_key.encode()
    )


def seal(secret_key: str, plaintext: str, *, context: str) -> bytes:
    """AES-256-GCM with a key derived for credentials; `context` binds the ciphertext to its row."""
    nonce = os.urandom(12)
    aead = AESGCM(_derive(secret_key, "tripguard/credential-seal"))
    return nonce + aead.encrypt(nonce, plaintext.encode(), context.encode())


def unseal(secret_key: str, sealed: bytes, *, context: str) -> str:
    aead = AESGCM(_derive(secret_key, "tripguard/credential-seal"))
    return aead.decrypt(sealed[:12], sealed[12:], context.encode()).decode()


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def totp_secret_from_uri(uri: str) -> str:
    return parse_qs(urlparse(uri).query)["secret"][0]


def totp_matching_step(secret: str, code: str, *, last_step: int) -> int | None:
    """The time step the code belongs to (±1 step of drift), or None. A step used before fails."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = utcnow()
    current = totp.timecode(now)
    for offset in (0, -1, 1):
        step = current + offset
        if step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def issue_ticket(secret_key: str, *, staff_id: str, purpose: str, minutes: int = 5) -> str:
    now = utcnow()
    claims = {"sub": staff_id, "purpose": purpose, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(claims, _derive(secret_key, "tripguard/ticket"), algorithm="HS256")


def read_ticket(secret_key: str, ticket: str, *, purpose: str) -> str | None:
    try:
        claims = jwt.decode(ticket, _derive(secret_key, "tripguard/ticket"), algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    if claims.get("purpose") != purpose or not isinstance(subject, str):
        return None
    return subject
