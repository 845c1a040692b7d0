"""Cipher suites: AES-256-GCM with HMAC-SHA-256 (default), or SM4-GCM with HMAC-SM3 (商用密码, GB/T 39786).

Every ciphertext starts with a one-byte format version and a one-byte suite id, so a database may
hold both suites and each value says how to open it.
"""

from __future__ import annotations

import hmac as std_hmac
import os
from dataclasses import dataclass
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT_V1 = 1
NONCE_BYTES = 12
TAG_BYTES = 16


class Suite(StrEnum):
    AES = "aes256gcm"
    SM4 = "sm4gcm"


_SUITE_IDS = {Suite.AES: 1, Suite.SM4: 2}
_SUITE_BY_ID = {value: key for key, value in _SUITE_IDS.items()}


class DecryptionFailed(Exception):
    """Wrong key, wrong context (the ciphertext was moved), or a tampered value."""


@dataclass(frozen=True)
class _Parts:
    suite: Suite
    nonce: bytes
    body: bytes


def key_length(suite: Suite) -> int:
    return 32 if suite is Suite.AES else 16


def new_key(suite: Suite) -> bytes:
    return os.urandom(key_length(suite))


def _hash(suite: Suite) -> hashes.HashAlgorithm:
    return hashes.SHA256() if suite is Suite.AES else hashes.SM3()


def derive(key: bytes, *, info: str, suite: Suite, length: int | None = None) -> bytes:
    return HKDF(algorithm=_hash(suite), length=length or key_length(suite), salt=None,
                info=info.encode()).derive(key)


def encrypt(suite: Suite, key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    if suite is Suite.AES:
        body = AESGCM(key).encrypt(nonce, plaintext, aad)
    else:
        encryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(aad)
        body = encryptor.update(plaintext) + encryptor.finalize() + encryptor.tag
    return bytes([FORMAT_V1, _SUITE_IDS[suite]]) + nonce + body


# What every ciphertext starts with (format version, suite id) and its least length: a scan of the stored
# bytes (the security check's, in SQL) can tell a value the vault wrote from anything else without a key.
HEADERS = tuple(bytes([FORMAT_V1, suite_id]) for suite_id in _SUITE_BY_ID)
MIN_LENGTH = 2 + NONCE_BYTES + TAG_BYTES


def _split(blob: bytes) -> _Parts:
    if len(blob) < MIN_LENGTH or blob[:2] not in HEADERS:
        raise DecryptionFailed("not a TripGuard ciphertext")
    return _Parts(_SUITE_BY_ID[blob[1]], blob[2:2 + NONCE_BYTES], blob[2 + NONCE_BYTES:])


def suite_of(blob: bytes) -> Suite:
    return _split(blob).suite


def decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    parts = _split(blob)
    try:
        if parts.suite is Suite.AES:
            return AESGCM(key).decrypt(parts.nonce, parts.body, aad)
        decryptor = Cipher(algorithms.SM4(key), modes.GCM(parts.nonce, parts.body[-TAG_BYTES:])).decryptor()
        decryptor.authenticate_additional_data(aad)
        return decryptor.update(parts.body[:-TAG_BYTES]) + decryptor.finalize()
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed("the value does not open with this key and context") from exc


def blind_index(suite: Suite, key: bytes, value: str) -> str:
    """Keyed HMAC of a normalised value: equality search without decrypting."""
    mac = hmac.HMAC(key, _hash(suite))
    mac.update(value.encode())
    return mac.finalize().hex()


def constant_time_equal(a: str, b: str) -> bool:
    return std_hmac.compare_digest(a, b)


def suite_of_key(key: bytes) -> Suite:
    """Data keys carry their suite in their length (32 bytes AES-256, 16 bytes SM4)."""
    return Suite.AES if len(key) == 32 else Suite.SM4
