"""What safety gives the platform at start-up (`tripguard.wiring`): its retention rules, the people retention
must leave be while their case is live, its part of an erasure and of a person's export."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from tripguard.audit.actor import Actor
from tripguard.core.i18n import N_
from tripguard.core.settings import Settings
from tripguard.privacy import breaches, retention, service
from tripguard.privacy.models import DataSubject
from tripguard.safety import contact_rights, contacts, recordings, shares, sos
from tripguard.safety.models import Incident, Recording
from tripguard.safety.retention import expired_cases
from tripguard.safety.service import people_with_live_cases
from tripguard.vault.service import Vault


def _case_positions(settings: Settings) -> retention.Rule:
    keep = timedelta(days=settings.retention_trip_data_days)
    return retention.Rule("case_positions", N_("where SOS callers were, and cases' own keys, past the trip-data "
                                               "period after the case ended"),
                          keep, expired_cases(keep, retention.held_subjects))


def _recordings(settings: Settings) -> retention.Rule:
    return retention.Rule("recordings", "in-car recordings past their period, unless a case about the trip is open",
                          timedelta(days=settings.retention_recording_days), recordings.expired())


def _busy(active_since: datetime | None) -> list[Select[Any]]:
    return people_with_live_cases()


def _erase(session: Session, erasing: service.Erasing) -> dict[str, int]:
    """Links to their trips die, their emergency contacts go; where they are someone's contact they leave
    every owner's list (in a live erasure the owners are told)."""
    done = {"shares": shares.revoke_for_person(session, actor=erasing.actor, subject_id=erasing.subject_id),
            "contacts": contacts.forget_person(session, subject_id=erasing.subject_id)}
    named = contact_rights.forget_contact(session, subject_id=erasing.subject_id)
    done["named_as_contact"] = len(named)
    if erasing.vault is not None and named:
        done["owners_told"] = contact_rights.tell_owners(session, vault=erasing.vault, removed=named,
                                                         actor=erasing.actor)
    return done


def _keep_case_positions(session: Session, vault: Vault, subject_id: str) -> None:
    sos.keep_positions_of(session, vault=vault, caller_id=subject_id)


def _named_as_contact(session: Session, vault: Vault, actor: Actor, subject: DataSubject,
                      ) -> tuple[dict[str, Any], set[str]]:
    named = contact_rights.held_for(session, vault=vault, subject_id=subject.id, actor=actor)
    part = {"named_as_emergency_contact": named} if named or subject.kind == contact_rights.KIND else {}
    return part, {"safety_contacts.name", "safety_contacts.phone"} if named else set()


def _people_of_recording(session: Session, recording_id: str) -> list[str | None]:
    recording = session.get(Recording, recording_id)
    return breaches.people_of(session, target_type="trip", target_id=recording.trip_id) if recording is not None else []


def _people_of_case(session: Session, incident_id: str) -> list[str | None]:
    """A case's page is about the caller (whatever key seals it) and names the driver."""
    incident = session.get(Incident, incident_id)
    return [incident.caller_id, incident.driver_id] if incident is not None else []


def register() -> None:
    service.register_erasure("safety", order=20, step=_erase, before_shred=_keep_case_positions)
    service.register_export("named_as_contact", order=20, part=_named_as_contact)
    breaches.register_people_of("recording", _people_of_recording)
    breaches.register_people_of(Incident.__tablename__, _people_of_case)
    retention.register_rule("case_positions", order=50, rule=_case_positions)
    retention.register_rule("recordings", order=60, rule=_recordings)
    retention.register_busy("safety", _busy)
