"""The audit log's typed dependencies: its signing key (loaded once by `tripguard.app.create_app`), and the
gate its routes and pages stand behind.

Who may read the log or sign a head is security's to check, and security sits above audit (it records into
the log), so audit never imports it: security builds the gate (`security.auth.AUDIT_GATE`, from its
permission table) and the app factory hands it to the routers (`audit.api.router`, `audit.console.router`).
Each route still names the check it needs (`gate.read`, `gate.sign`), so the permission is declared on the
route, carried into the OpenAPI document, and checked by `tests/security/test_permissions.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request

from tripguard.audit.actor import Actor


async def _audit_key(request: Request) -> Ed25519PrivateKey:
    key: Ed25519PrivateKey = request.app.state.audit_key
    return key


AuditKey = Annotated[Ed25519PrivateKey, Depends(_audit_key)]


class Caller(Protocol):
    """The principal a check of the gate lets in, as the audit log's routes use it."""

    @property
    def actor(self) -> Actor: ...


@dataclass(frozen=True)
class Gate:
    """Security's checks, each a dependency (`fastapi.Depends`) that refuses a caller without the permission
    and gives the route the principal it let in."""

    read: Any  # the audit log read: its entries, heads, proofs, key and verification (audit.read)
    sign: Any  # a tree head signed on demand (audit.sign)
