"""The trip page shows its times in the operator's zone, labelled (it once showed UTC, unlabelled, eight
hours off the rest of the console)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tripguard.security.permissions import Role


def test_the_trip_page_reads_in_the_operators_zone(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation("T-ZONE")))  # started 2026-03-01T08:00:00Z: 16:00 in Shanghai
    db.commit()
    act_as(Role.SAFETY_AGENT)
    page = client.get("/console/trips/T-ZONE", headers={"accept-language": "en"}).text
    assert "2026-03-01 16:00:00" in page and "2026-03-01 08:00:00" not in page
    assert "Times in UTC+08:00." in page
    alerts = page.split('data-testid="trip-alerts"')[1].split("</ul>")[0]
    assert re.search(r'<span class="mono">16:0\d:\d\d</span>', alerts), alerts  # the deviation, raised past 08:01Z
