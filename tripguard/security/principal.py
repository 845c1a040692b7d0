"""Who is asking: a staff member, an integration (API key) or an app user (subject token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tripguard.audit.service import Actor
from tripguard.security.permissions import Permission, Role, permissions_for

PrincipalKind = Literal["staff", "api_key", "subject"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    id: str
    roles: frozenset[Role]
    permissions: frozenset[Permission]
    name: str = ""
    session_id: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(self.kind, self.id)

    def can(self, permission: Permission) -> bool:
        return permission is Permission.PUBLIC or permission in self.permissions

    @classmethod
    def for_roles(cls, kind: PrincipalKind, id: str, roles: frozenset[Role], **kw: object) -> Principal:
        return cls(kind=kind, id=id, roles=roles, permissions=permissions_for(roles), **kw)  # type: ignore[arg-type]
