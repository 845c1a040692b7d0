"""The regulator feed's reads of personal data: through the vault's one gate, for the legal obligation.

An exporter opens every sealed field it sends with `ExportReads.open` (`privacy.access.open_field`) and
names every other record it sends from with `ExportReads.touch` (a trip's positions, a vehicle). When it is
done, `close` writes one audit entry per record read: action `regulator.export`, the machine actor
`system:regulator`, purpose `legal_obligation`, the fields opened and sent in plaintext, the upload type.
Breach investigations count these entries as reads (`privacy.breaches.READ_ACTIONS`): the records' people
are affected when the window covers the export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.db import Base
from tripguard.privacy import access
from tripguard.security.permissions import Purpose
from tripguard.vault.crypto import DecryptionFailed
from tripguard.vault.service import SubjectErased, Vault

REGULATOR = Actor("system", "regulator")
ACTION = "regulator.export"
PURPOSE = Purpose.LEGAL_OBLIGATION


class Unreadable(Exception):
    """A field the message needs no longer opens (its person erased, its key shredded): the record is not
    sent, and nothing is made up in its place."""


@dataclass
class ExportReads:
    session: Session
    vault: Vault
    kind: str
    _read: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def open(self, row: Base, column: str) -> str | None:
        """The plaintext of `row.column`, for sending; recorded for the audit entry. Raises `Unreadable`."""
        self.touch(row.__tablename__, str(row.id), column)  # type: ignore[attr-defined]
        try:
            return access.open_field(self.vault, self.session, row, column)
        except (SubjectErased, DecryptionFailed) as error:
            raise Unreadable(f"{row.__tablename__}.{column}") from error

    def touch(self, target_type: str, target_id: str, *columns: str) -> None:
        """A record the upload is built from (with the personal columns it sends, if any)."""
        self._read.setdefault((target_type, target_id), set()).update(columns)

    def close(self) -> int:
        """One audit entry per record read since the last close; how many."""
        for (target_type, target_id), columns in self._read.items():
            fields = ",".join(sorted(columns))
            audit.record(self.session, actor=REGULATOR, action=ACTION, target_type=target_type,
                         target_id=target_id, purpose=PURPOSE.value,
                         details={"kind": self.kind, "fields": fields, "plaintext": fields,
                                  "use": f"regulator.{self.kind}"})
        count = len(self._read)
        self._read.clear()
        return count
