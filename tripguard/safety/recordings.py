"""In-car recordings: chunked, resumable uploads, sealed under the trip's key; opened only by an
investigator working an open case about that trip, with a reason, audited.

Retention (DESIGN.md §5): 7 days (`TRIPGUARD_RETENTION_RECORDING_DAYS`); 16 when the trip has a
complaint or a low rating (`TRIPGUARD_RETENTION_RECORDING_COMPLAINT_DAYS`, counted from when the
recording was made); and while any case about the trip is not closed. The sealed chunks sit in the
database (a blob-store adapter is the next step for fleets that record video).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tripguard.core.ids import new_id
from tripguard.privacy import freetext
from tripguard.safety.models import Incident, IncidentEvent, Recording, RecordingChunk
from tripguard.telematics.service import trip_key
from tripguard.vault.service import Vault

MAX_CHUNK = 4 * 1024 * 1024
# What makes another domain keep a trip's recordings longer (feedback: a complaint about the trip), by name:
# registered at start-up (`app.create_app`), so safety never reads that domain's tables.
LONGER_HOLDS: dict[str, Callable[[Session, str], bool]] = {}


def register(session: Session, *, actor: Actor, trip_id: str, device_id: str, kind: str, content_type: str,
             started_at: datetime, duration_s: int, size: int, sha256: str, keep_days: int,
             complaint_keep_days: int) -> Recording:
    """Announce a segment (idempotent: the same device, trip and start find the first)."""
    known = session.scalar(select(Recording).where(Recording.device_id == device_id, Recording.trip_id == trip_id,
                                                   Recording.started_at == started_at))
    if known is not None:
        return known
    now = utcnow()
    if any(held(session, trip_id) for held in LONGER_HOLDS.values()):
        keep_days = max(keep_days, complaint_keep_days)  # uploaded after the complaint: held too
    recording = Recording(id=new_id("rec"), trip_id=trip_id, device_id=device_id, kind=kind,
                          content_type=content_type, started_at=started_at, duration_s=duration_s, size=size,
                          sha256=sha256.lower(), received=0, status="uploading", created_at=now,
                          keep_until=now + timedelta(days=keep_days))
    session.add(recording)
    session.flush()
    audit.record(session, actor=actor, action="recording.register", target_type="recording", target_id=recording.id)
    return recording


def hold_for_complaint(session: Session, *, trip_id: str, days: int) -> int:
    """A complaint about the trip: its recordings are kept `days` from when they were made; how many
    were extended."""
    extended = 0
    for recording in session.scalars(select(Recording).where(Recording.trip_id == trip_id)):
        until = recording.created_at + timedelta(days=days)
        if until > recording.keep_until:
            recording.keep_until = until
            extended += 1
    return extended


def of_trip(session: Session, *, trip_id: str) -> list[Recording]:
    """The trip's recordings, in the order they were made."""
    return list(session.scalars(select(Recording).where(Recording.trip_id == trip_id).order_by(Recording.started_at)))


def get(session: Session, *, recording_id: str) -> Recording:
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound("no such recording")
    return recording


def append(session: Session, *, vault: Vault, recording_id: str, start: int, data: bytes) -> Recording:
    """Take the bytes at `start`. A piece already taken is acknowledged again; a gap is 409 (resume
    from `received`). The last piece checks the whole against the declared SHA-256."""
    recording = get(session, recording_id=recording_id)
    if recording.status != "uploading":
        if start + len(data) <= recording.received:
            return recording
        raise Conflict(f"this recording is {recording.status}")
    if start < recording.received and start + len(data) <= recording.received:
        return recording  # a retry of a piece already stored
    if start != recording.received:
        raise Conflict(f"expected bytes from {recording.received}")
    if not data or len(data) > MAX_CHUNK or start + len(data) > recording.size:
        raise InvalidInput(f"a piece is 1 byte to {MAX_CHUNK // (1024 * 1024)} MiB, within the declared size")
    session.add(RecordingChunk(recording_id=recording.id, offset=start, sealed=vault.seal_bytes(
        session, subject_id=trip_key(recording.trip_id), table=RecordingChunk.__tablename__, column="sealed",
        row_id=f"{recording.id}:{start}", data=data)))
    recording.received = start + len(data)
    if recording.received == recording.size:
        digest = hashlib.sha256()
        for piece in content(session, vault=vault, recording=recording):
            digest.update(piece)
        recording.status = "complete" if digest.hexdigest() == recording.sha256 else "corrupt"
    session.flush()
    return recording


def content(session: Session, *, vault: Vault, recording: Recording) -> Iterator[bytes]:
    for chunk in session.scalars(select(RecordingChunk).where(RecordingChunk.recording_id == recording.id)
                                 .order_by(RecordingChunk.offset)):
        yield vault.open_bytes(session, subject_id=trip_key(recording.trip_id), table=RecordingChunk.__tablename__,
                               column="sealed", row_id=f"{recording.id}:{chunk.offset}", blob=chunk.sealed)


def open_for_case(session: Session, *, vault: Vault, actor: Actor, recording_id: str, incident_id: str,
                  reason: str) -> Recording:
    """An investigator opens a recording: only inside an open case about the same trip; audited."""
    recording = get(session, recording_id=recording_id)
    incident = session.get(Incident, incident_id)
    if incident is None or incident.status == "closed" or incident.trip_id != recording.trip_id:
        raise PermissionDenied("a recording opens only inside an open case about its trip")
    if recording.status != "complete":
        raise Conflict(f"this recording is {recording.status}")
    audit.record(session, actor=actor, action="recording.open", target_type="recording", target_id=recording.id,
                 purpose="investigation", details={"incident": incident_id, **freetext.keep(
                     session, vault=vault, subject_id=trip_key(recording.trip_id), text=reason[:200])})
    session.add(IncidentEvent(id=new_id("iev"), incident_id=incident.id, at=utcnow(), kind="evidence",
                              actor=f"{actor.type}:{actor.id}", details={"recording": recording.id}))
    return recording


def expired() -> Callable[[Session, Vault, datetime, bool], tuple[int, int]]:
    """Retention rule: past `keep_until` and no case about the trip still open."""
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        due = Recording.keep_until < now
        in_open_case = Recording.trip_id.in_(select(Incident.trip_id).where(
            Incident.status != "closed", Incident.trip_id.is_not(None)))
        held = session.scalar(select(func.count()).select_from(Recording).where(due, in_open_case)) or 0
        if dry_run:
            return session.scalar(select(func.count()).select_from(Recording).where(due, ~in_open_case)) or 0, held
        ids = list(session.scalars(select(Recording.id).where(due, ~in_open_case).limit(200)))
        if ids:
            session.execute(delete(RecordingChunk).where(RecordingChunk.recording_id.in_(ids)))
            session.execute(delete(Recording).where(Recording.id.in_(ids)))
        return len(ids), held
    return run
