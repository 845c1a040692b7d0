"""May this person open personal data at all? Asked by the one gate (`privacy.access`) before any read.

Staff, and drivers and couriers, must have signed the confidentiality agreement now in force for
them, and must not be suspended or dismissed. The answer is kept for the rest of the transaction (one
request), so a page that opens fifty records asks once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.privacy.access import audience_of
from tripguard.security.principal import Principal
from tripguard.workforce.models import Agreement, Sanction, Signature

BUILT_IN_VERSION = "tripguard-1"
IN_FORCE_KINDS = ("suspension", "dismissal")  # sanctions that shut a person out while in force


@dataclass(frozen=True)
class AgreementText:
    audience: str
    version: str
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    sha256: str
    published_at: datetime | None  # None: the text TripGuard ships, in force until the operator publishes one


def text_hash(title_zh: str, title_en: str, body_zh: str, body_en: str) -> str:
    digest = hashlib.sha256()
    for part in (title_zh, title_en, body_zh, body_en):
        digest.update(part.encode())
        digest.update(b"\x00")
    return digest.hexdigest()


@lru_cache
def built_in(audience: str) -> AgreementText:
    folder = resources.files("tripguard.workforce") / "texts"
    body_zh = (folder / f"agreement-{audience}.zh.md").read_text(encoding="utf-8")
    body_en = (folder / f"agreement-{audience}.en.md").read_text(encoding="utf-8")
    title_zh, title_en = body_zh.splitlines()[0].lstrip("# "), body_en.splitlines()[0].lstrip("# ")
    return AgreementText(audience, BUILT_IN_VERSION, title_zh, title_en, body_zh, body_en,
                         text_hash(title_zh, title_en, body_zh, body_en), None)


def in_force(session: Session, *, audience: str) -> AgreementText:
    """The newest version the operator published, or the text TripGuard ships until they do."""
    row = session.scalar(select(Agreement).where(Agreement.audience == audience)
                         .order_by(Agreement.published_at.desc()).limit(1))
    if row is None:
        return built_in(audience)
    return AgreementText(row.audience, row.version, row.title_zh, row.title_en, row.body_zh, row.body_en,
                         row.sha256, row.published_at)


def has_signed(session: Session, *, signer_id: str, agreement: AgreementText) -> bool:
    return session.scalar(select(Signature.id).where(Signature.signer_id == signer_id,
                                                     Signature.sha256 == agreement.sha256).limit(1)) is not None


def shut_out_since(session: Session, *, person_id: str, now: datetime) -> datetime | None:
    """When the suspension or dismissal in force against this person began, if one is."""
    return session.scalar(select(Sanction.starts_at).where(
        Sanction.offender_id == person_id, Sanction.status == "active", Sanction.kind.in_(IN_FORCE_KINDS),
        Sanction.starts_at <= now, or_(Sanction.ends_at.is_(None), Sanction.ends_at > now))
        .order_by(Sanction.starts_at).limit(1))


def problem(session: Session, *, principal: Principal) -> str | None:
    """None when the person may read; else `access.suspended` or `agreement.unsigned`."""
    audience = audience_of(principal)
    return None if audience is None else problem_of(session, person_id=principal.id,
                                                    audience=audience)


def problem_of(session: Session, *, person_id: str, audience: str) -> str | None:
    """`problem` for a person named by id, of a known audience (a courier whose call the telephony
    provider asks about is no principal of the request)."""
    cache: dict[str, str | None] = session.info.setdefault("tripguard.clearance", {})
    if person_id not in cache:
        if shut_out_since(session, person_id=person_id, now=utcnow()) is not None:
            cache[person_id] = "access.suspended"
        elif not has_signed(session, signer_id=person_id,
                            agreement=in_force(session, audience=audience)):
            cache[person_id] = "agreement.unsigned"
        else:
            cache[person_id] = None
    return cache[person_id]


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction: object) -> None:
    forget(session)


def forget(session: Session) -> None:
    """A signature or a sanction written in this transaction changes the answer."""
    session.info.pop("tripguard.clearance", None)
