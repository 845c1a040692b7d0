"""A breach's page shows when it was discovered and when the authority is due in the operator's zone,
labelled (it once showed UTC, unlabelled)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.privacy.models import Breach
from tripguard.security.permissions import Role


def test_the_breach_page_reads_in_the_operators_zone(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    now = utcnow()
    opened = client.post("/api/v1/privacy/breaches", json={
        "title": "泄露", "serious": True, "occurred_from": (now - timedelta(hours=1)).isoformat(),
        "occurred_to": now.isoformat(), "categories": ["user.contact.phone_number"], "cause": "c", "harm": "h",
        "measures": "m", "advice": "a", "contact": "privacy@example.com"}).json()
    breach = db.get(Breach, opened["id"])
    assert breach is not None
    breach.discovered_at = datetime(2026, 3, 1, 20, 30, tzinfo=UTC)  # 04:30 the next day in Shanghai
    breach.authority_due_at = breach.discovered_at + timedelta(hours=4)
    db.commit()
    page = client.get(f"/console/privacy/breaches/{opened['id']}", headers={"accept-language": "en"}).text
    assert "2026-03-02 04:30" in page and "2026-03-01 20:30" not in page
    assert "2026-03-02 08:30" in page and "(UTC+08:00)" in page
    assert 'data-category="user.contact.phone_number">Phone number</span>' in page  # the category named
