"""The audit log's signing key as a typed dependency (loaded once by `tripguard.app.create_app`)."""

from __future__ import annotations

from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request


async def _audit_key(request: Request) -> Ed25519PrivateKey:
    key: Ed25519PrivateKey = request.app.state.audit_key
    return key


AuditKey = Annotated[Ed25519PrivateKey, Depends(_audit_key)]
