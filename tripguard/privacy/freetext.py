"""Free text people type (a reason for opening evidence, a note on a case) is personal data: sealed here,
under the key of the person it is about, and referred to elsewhere by id.

The audit log keeps only the reference and a keyed MAC of the text (proof of what was typed, for
whoever may open the text; not a dictionary-attackable hash). The log is never deleted, the text
is: it dies with the person's (or the trip's) key, and so does the MAC, whose key derives from that
same data key (`Vault.subject_mac`): after the shred, nobody, keyring or not, can confirm a guess
against it. MACs written before (32 hex digits, no `dk1:` prefix) were keyed by the keyring's index
key; they stay in the hash-chained audit log as written and are never computed again.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.privacy import access
from tripguard.privacy.models import FreeText
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.vault.service import Vault


def keep(session: Session, *, vault: Vault, subject_id: str, text: str, label: str = "reason") -> dict[str, str]:
    """Seal `text` under `subject_id`'s key; returns what may go into a log: {label_ref, label_mac}."""
    row = FreeText(id=new_id("txt"), subject_id=subject_id, created_at=utcnow())
    access.write_field(vault, session, row, "text", text)
    session.add(row)
    return {f"{label}_ref": row.id, f"{label}_mac": vault.subject_mac(session, subject_id, text=text)}


def read(session: Session, *, vault: Vault, principal: Principal, refs: list[str],
         purpose: Purpose) -> dict[str, str | None]:
    """The texts behind these references, through the gate (masked without the purpose; each read audited)."""
    if not refs:
        return {}
    rows = session.scalars(select(FreeText).where(FreeText.id.in_(refs)))
    return {row.id: access.read_fields(vault, session, principal, row, ["text"], purpose=purpose)["text"].value
            for row in rows}
