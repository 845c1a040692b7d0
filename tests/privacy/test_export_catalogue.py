"""The export is complete by construction: every personal column the data catalogue declares reaches the
export of the person it is about. Rows are built from the metadata alone, so a table added tomorrow is
tested the day it declares a personal column."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.core.db import Base
from tripguard.models import metadata
from tripguard.privacy import access, service, subjects
from tripguard.privacy.catalogue import Key, PersonalField, catalogue
from tripguard.privacy.models import DataSubject
from tripguard.telematics.models import Trip

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
# Keys no person owns: what they seal is no one's to ask for (a monitor's working state). Adding one is a
# decision, not an accident.
SYSTEM_KEYED = {"telematics_monitor_checkpoints.state"}


def _models() -> dict[str, type[Base]]:
    return {mapper.class_.__tablename__: mapper.class_ for mapper in Base.registry.mappers}


def _filler(column: Column[Any], n: int) -> object:
    """A value of the column's type that fits it: only what the row needs to be stored."""
    kind = column.type
    if isinstance(kind, (DateTime,)) or type(kind).__name__ == "UTCDateTime":
        return NOW
    if isinstance(kind, Date):
        return date(2026, 12, 1)
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, (Integer,)):
        return n
    if isinstance(kind, Float):
        return 0.0
    if isinstance(kind, JSON):
        return {}
    if isinstance(kind, LargeBinary):
        return b"x"
    if isinstance(kind, (String, Text)):
        length = getattr(kind, "length", None) or 64
        return f"v{n}"[:length]
    raise AssertionError(f"no filler for {column.table.name}.{column.name} ({kind!r}): add one")


def _row(model: type[Base], specs: list[PersonalField], person: str, n: int) -> Base:
    """A row of `model` about `person`: their id in the columns naming whom a field is about, a case's key
    where a field is sealed under one, something of the right type elsewhere; personal columns left empty."""
    table = model.__table__  # type: ignore[attr-defined]
    version = getattr(model.__mapper__, "version_id_col", None)  # type: ignore[attr-defined]
    about = {spec.about for spec in specs}
    case_keys = {spec.subject_column for spec in specs if spec.key is Key.CASE}
    values: dict[str, object] = {}
    for i, column in enumerate(table.columns):
        if column.info.get("tripguard.personal") or column is version:
            continue
        if column.name in about:
            values[column.key] = person
        elif column.name in case_keys:
            values[column.key] = f"case:{table.name}"[:64]
        elif column.primary_key:
            values[column.key] = f"{n}-{i}" if not isinstance(column.type, Integer) else n
        elif not column.nullable:
            values[column.key] = _filler(column, n)
    return model(**values)


def test_every_personal_column_reaches_the_export_of_its_subject(db: Session, app: FastAPI) -> None:
    vault = app.state.vault
    fields = catalogue(metadata)
    by_table: dict[str, list[PersonalField]] = {}
    for spec in fields:
        by_table.setdefault(spec.table, []).append(spec)
    assert {f"{f.table}.{f.column}" for f in fields if f.key is Key.SYSTEM} == SYSTEM_KEYED
    models = _models()
    expected: dict[str, dict[str, str]] = {}  # person -> {table.column: the value written}
    trips: dict[str, str] = {}  # person -> the trip that holds their trip-keyed data
    for n, (table, specs) in enumerate(sorted(by_table.items())):
        person = f"p{n}-{table}"[:64]
        # Everything not the trip's or the system's is about a person, and theirs to have.
        exported = [s for s in specs if s.key not in (Key.TRIP, Key.SYSTEM)]
        assert all(s.person_column for s in exported if s.key is Key.CASE), f"{table}: a case's field names no one"
        if table == DataSubject.__tablename__:
            service.upsert_subject(db, vault=vault, actor=TEST_ACTOR, subject_id=person, kind=None, notice_version=None,
                                   values={s.column: f"{table}.{s.column}" for s in exported})
            expected[person] = {f"{table}.{s.column}": f"{table}.{s.column}" for s in exported}
            continue
        if any(s.key is Key.TRIP for s in specs):  # the trip's own data: the export lists the trip
            trip_id = f"trip-{n}"
            db.add(Trip(id=trip_id, status="ended", crs="wgs84", points=0, driver_id=person, updated_at=NOW))
            trips[person] = trip_id
            subjects.register(db, subject_id=person, kind="driver", source="test")
        if not exported:
            continue
        row = _row(models[table], exported, person, n)
        db.add(row)
        db.flush()
        for spec in exported:
            access.write_field(vault, db, row, spec.column, f"{table}.{spec.column}")
        if any(s.key is Key.PERSON for s in exported):  # the first write made them a data subject
            assert db.get(DataSubject, person) is not None, f"writing {table} did not register {person}"
        subjects.register(db, subject_id=person, kind=None, source="test")  # the case-keyed: their SOS
        expected[person] = {f"{table}.{s.column}": f"{table}.{s.column}" for s in exported}
    db.flush()

    missing = []
    for person, values in expected.items():
        bundle = service.export_subject(db, vault=vault, actor=TEST_ACTOR, subject_id=person)
        found = {f"{DataSubject.__tablename__}.{c}": v for c, v in bundle["personal_data"].items()}
        for table, rows in bundle["held_with_other_records"].items():
            for row in rows:
                found.update({f"{table}.{c}": v for c, v in row.items() if c != "id"})
        missing += [name for name, value in values.items() if found.get(name) != value]
    for person, trip_id in trips.items():
        bundle = service.export_subject(db, vault=vault, actor=TEST_ACTOR, subject_id=person)
        if trip_id not in [t["id"] for t in bundle["trips"]]:
            missing.append(f"trip {trip_id}")
    assert not missing, f"personal columns missing from their subject's export: {missing}"
    # Every declared column was checked: the person's own, the case's (about a person) and the trip's.
    checked = {name for values in expected.values() for name in values}
    assert checked == {f"{f.table}.{f.column}" for f in fields if f.key not in (Key.TRIP, Key.SYSTEM)}
