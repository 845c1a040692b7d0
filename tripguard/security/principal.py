"""Who is asking: a staff member, an integration (API key) or an app user (subject token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tripguard.audit.service import Actor
from tripguard.core.errors import OwnDecision
from tripguard.core.i18n import N_
from tripguard.security.permissions import Decision, Permission, Role, decides_own, permissions_for

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


OWN_DECISION = {
    Decision.SANCTION: N_("Nobody decides a sanction on themselves: another HR officer decides."),
    Decision.APPEAL: N_("Nobody decides their own appeal: another HR officer decides."),
    Decision.SCREENING: N_("Nobody handles their own screening: another screening officer decides."),
    Decision.SUBJECT_REQUEST: N_("Nobody handles their own data request or erasure: another privacy officer does."),
    Decision.FINDING: N_("Nobody reviews a finding about their own use of data: another supervisor does."),
}


def refuse_own(actor: Actor, decision: Decision, *person_ids: str | None) -> None:
    """The one check of separation of duties, asked by every service that takes a `Decision`: 403
    (`/problems/own-decision`) when the staff member acting is the person it is about."""
    if decides_own(actor.type, actor.id, person_ids):
        raise OwnDecision(OWN_DECISION[decision])
