"""The Ed25519 key that signs tree heads, and the signed-head format a supervisor keeps."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tripguard.core.settings import Settings, SettingsError

KEY_FILE = "audit-signing.key"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def create_key_file(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    if settings.audit_signing_key is not None:
        seed = base64.b64decode(settings.audit_signing_key.get_secret_value())
        return Ed25519PrivateKey.from_private_bytes(seed)
    path = settings.key_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise SettingsError(f"{path} is not an Ed25519 key")
        return key
    if settings.env == "production":
        raise SettingsError(f"no audit signing key at {path}; run `tripguard keys init`")
    try:
        return create_key_file(path)
    except FileExistsError:  # another process created it first
        return load_signing_key(settings)


def head_message(tree_size: int, root_hash: bytes, signed_at: datetime) -> bytes:
    timestamp_ms = int(signed_at.timestamp() * 1000)
    return f"tripguard-tree-head-v1\n{tree_size}\n{timestamp_ms}\n{root_hash.hex()}\n".encode()


def sign_head(key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, signed_at: datetime) -> bytes:
    return key.sign(head_message(tree_size, root_hash, signed_at))


def head_signature_valid(
    public_key: Ed25519PublicKey, tree_size: int, root_hash: bytes, signed_at: datetime,
    signature: bytes,
) -> bool:
    try:
        public_key.verify(signature, head_message(tree_size, root_hash, signed_at))
    except InvalidSignature:
        return False
    return True


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
