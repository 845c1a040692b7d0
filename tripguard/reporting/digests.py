"""Weekly and monthly digests: when a week or a month has ended, its figures are computed once, kept,
and e-mailed through the notifier to the staff who subscribed (each message once, by its key)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit import service as audit
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.i18n import LOCALES
from tripguard.core.ids import new_id
from tripguard.core.settings import Settings
from tripguard.notify import service as notify
from tripguard.privacy import access
from tripguard.reporting import kpis, periods
from tripguard.reporting.models import Digest, DigestSubscription
from tripguard.security.principal import Principal
from tripguard.vault.service import Vault

KINDS = ("weekly", "monthly")


def _subscription(session: Session, staff_id: str, kind: str) -> DigestSubscription | None:
    return session.scalar(select(DigestSubscription).where(DigestSubscription.staff_id == staff_id,
                                                           DigestSubscription.kind == kind))


def subscribe(session: Session, *, vault: Vault, principal: Principal, kind: str, email: str,
              locale: str) -> DigestSubscription:
    row = _subscription(session, principal.id, kind)
    if row is None:
        row = DigestSubscription(id=new_id("dsub"), staff_id=principal.id, kind=kind, locale=locale,
                                 created_at=utcnow())
        session.add(row)
    row.locale = locale if locale in LOCALES else "zh_CN"
    access.write_field(vault, session, row, "email", email)
    audit.record(session, actor=principal.actor, action="digest.subscribe", target_type="reporting_subscriptions",
                 target_id=kind)
    return row


def unsubscribe(session: Session, *, principal: Principal, kind: str) -> None:
    row = _subscription(session, principal.id, kind)
    if row is not None:
        session.delete(row)
        audit.record(session, actor=principal.actor, action="digest.unsubscribe",
                     target_type="reporting_subscriptions", target_id=kind)


def subscriptions(session: Session, *, staff_id: str) -> list[DigestSubscription]:
    return list(session.scalars(select(DigestSubscription).where(DigestSubscription.staff_id == staff_id)))


def last_finished(kind: str, now: datetime, timezone: str) -> str:
    """The label of the week or month that ended most recently."""
    local = now.astimezone(ZoneInfo(timezone))
    if kind == "weekly":
        iso = (local - timedelta(days=7)).isocalendar()
        return f"{iso.year}W{iso.week:02d}"
    previous = local.replace(day=1) - timedelta(days=1)
    return f"{previous.year}-{previous.month:02d}"


def recent(session: Session, *, limit: int = 12) -> list[Digest]:
    return list(session.scalars(select(Digest).order_by(Digest.created_at.desc()).limit(limit)))


def run(factory: sessionmaker[Session], *, vault: Vault, settings: Settings, now: datetime | None = None) -> int:
    """Make each digest whose period has ended and is not made yet; returns how many were made."""
    now = now or utcnow()
    made = 0
    for kind in KINDS:
        label = last_finished(kind, now, settings.timezone)
        with unit_of_work(factory) as session:
            if session.scalar(select(Digest.id).where(Digest.kind == kind, Digest.period == label)) is not None:
                continue
            period = periods.parse(label, settings.timezone)
            results = kpis.compute(session, period=period, now=now,
                                   ack_seconds=settings.incident_ack_seconds,
                                   timezone=settings.timezone)
            figures = [{"key": r.kpi.key, "title": r.kpi.title, "value": r.value.value, "unit": r.kpi.unit,
                        "status": r.status} for r in results]
            readers = list(session.scalars(select(DigestSubscription).where(DigestSubscription.kind == kind)))
            digest = Digest(id=new_id("dig"), kind=kind, period=label, figures=figures, recipients=len(readers),
                            created_at=now)
            try:
                with session.begin_nested():
                    session.add(digest)
            except IntegrityError:  # another scheduler made it meanwhile
                continue
            for reader in readers:
                email = access.open_field(vault, session, reader, "email")
                if email:
                    notify.enqueue_to_person(
                        session, vault=vault, subject_id=reader.staff_id, channel="email", to=email, template="digest",
                        locale=reader.locale, params={"kind": kind, "period": label, "figures": figures},
                        idempotency_key=f"digest:{digest.id}:{reader.staff_id}", fresh_key=True)
            made += 1
    return made
