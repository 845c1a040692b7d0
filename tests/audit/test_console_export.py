"""The audit explorer exports what its filters select, as CSV, and the export is itself audited."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR
from tripguard.audit import service as audit
from tripguard.audit.models import AuditEntry
from tripguard.security.permissions import Role


def test_the_filtered_log_exports_as_csv(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        audit.record(db, actor=TEST_ACTOR, action="demo.thing", target_type="trip", target_id=f"T{n}")
    audit.record(db, actor=TEST_ACTOR, action="other.thing", target_type="trip", target_id="T9")
    db.flush()
    act_as(Role.AUDIT_ADMIN)
    answer = client.get("/console/audit?action=demo.&format=csv", headers={"accept-language": "en"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert sorted(r["Target id"] for r in rows) == ["T0", "T1", "T2"]
    export = db.scalars(select(AuditEntry).where(AuditEntry.action == "console.export")).one()
    assert export.target_id == "audit" and '"rows":3' in export.details.replace(" ", "")
    act_as(Role.SAFETY_AGENT)
    assert client.get("/console/audit?format=csv").status_code == 403
