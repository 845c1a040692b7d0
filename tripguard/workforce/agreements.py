"""Confidentiality agreements: the trainer publishes versions; staff, drivers and couriers sign the one in
force. A new version is signed again before its signer opens personal data or is dispatched."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, InvalidInput
from tripguard.core.ids import new_id
from tripguard.privacy import access
from tripguard.security.principal import Principal
from tripguard.workforce import clearance
from tripguard.workforce.clearance import AgreementText
from tripguard.workforce.models import Agreement, Signature


def publish(session: Session, *, actor: Actor, audience: str, version: str, title_zh: str, title_en: str,
            body_zh: str, body_en: str) -> tuple[Agreement, bool]:
    """Publish a version; returns (agreement, created). The same version with the same text again is the
    same version (a retry); with another text it is refused: a published text never changes."""
    digest = clearance.text_hash(title_zh, title_en, body_zh, body_en)
    existing = session.scalar(select(Agreement).where(Agreement.audience == audience, Agreement.version == version))
    if existing is not None:
        if existing.sha256 != digest:
            raise Conflict("this version was published with another text; publish a new version")
        return existing, False
    if version == clearance.BUILT_IN_VERSION:
        raise InvalidInput("this version name is the text TripGuard ships; choose another")
    agreement = Agreement(id=new_id("agr"), audience=audience, version=version, title_zh=title_zh,
                          title_en=title_en, body_zh=body_zh, body_en=body_en, sha256=digest,
                          published_at=utcnow(), published_by=f"{actor.type}:{actor.id}")
    session.add(agreement)
    audit.record(session, actor=actor, action="agreement.publish", target_type="workforce_agreements",
                 target_id=agreement.id, details={"audience": audience, "version": version, "sha256": digest})
    return agreement, True


def versions(session: Session) -> list[Agreement]:
    return list(session.scalars(select(Agreement).order_by(Agreement.published_at.desc())))


def in_force_for(session: Session, *, principal: Principal) -> tuple[AgreementText, Signature | None]:
    audience = access.audience_of(principal)
    if audience is None:
        raise Conflict("only staff, drivers and couriers sign a confidentiality agreement")
    text = clearance.in_force(session, audience=audience)
    signature = session.scalar(select(Signature).where(Signature.signer_id == principal.id,
                                                       Signature.sha256 == text.sha256))
    return text, signature


def sign(session: Session, *, principal: Principal, sha256: str, ip: str | None,
         user_agent: str | None) -> Signature:
    """Sign the version in force, named by the hash of its text (what the person read): a hash of an
    older version is refused, and signing twice is the same signature."""
    text, signature = in_force_for(session, principal=principal)
    if sha256 != text.sha256:
        raise Conflict("the agreement in force has changed: read it again and sign the version shown")
    if signature is not None:
        return signature
    signature = Signature(id=new_id("sig"), signer_type="staff" if principal.kind == "staff" else "subject",
                          signer_id=principal.id, audience=text.audience, version=text.version, sha256=text.sha256,
                          signed_at=utcnow(), ip=(ip or "")[:64] or None, user_agent=(user_agent or "")[:200] or None)
    try:
        with session.begin_nested():
            session.add(signature)
    except IntegrityError:  # the same person signing twice at once: the first signature stands
        found = session.scalar(select(Signature).where(Signature.signer_id == principal.id,
                                                       Signature.sha256 == text.sha256))
        assert found is not None
        return found
    audit.record(session, actor=principal.actor, action="agreement.sign", target_type="workforce_agreements",
                 target_id=text.version, details={"audience": text.audience, "sha256": text.sha256})
    clearance.forget(session)
    return signature

