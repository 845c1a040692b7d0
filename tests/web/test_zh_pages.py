"""Every console page, as each role reaches it from its navigation (and one link further), read in
Chinese: no English a person would read, no Python reprs. Seeded with a trip, an alert case, an SOS,
a subject request and a breach, so the detail pages have something to show."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import PASSWORD, sign_in_with_enrolment, staff
from tests.safety.test_case_page import sos_with_contact
from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
from tests.web.untranslated import english_words
from tripguard.security.permissions import STAFF_ROLES, TOTP_REQUIRED_ROLES, Role

LINK = re.compile(r'href="(/console[^"#]*)"')
NOT_PAGES = ("/console/sign-out", "/console/reports/quarterly", "/console/lang/", "/stream", "/snapshot", ".csv",
             "format=csv", "/rows", "/verify")


def seed(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    sos_with_contact(client, db, act_as)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation("T2")))
    db.commit()
    seed_screening(client, db, act_as)
    from tests.delivery.conftest import place_order

    place_order(client, db, act_as, "O_ZH", "C_ZH", courier_id="R_ZH")  # an order for support's pages
    seed_workforce(client, db, act_as)


def seed_workforce(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """A course, a finding turned into a violation with an appealed suspension, a checklist and an
    inspection: the trainers', supervisors' and HR's pages with something on them."""
    from datetime import timedelta

    from tests.workforce.conftest import put_course
    from tests.workforce.test_inspections import CHECKLIST
    from tripguard.core.clock import utcnow
    from tripguard.workforce.models import Finding

    put_course(client, act_as)
    now = utcnow()
    db.add(Finding(id="fnd_ZH", rule="after_hours", actor_type="staff", actor_id="stf_ZH",
                   window_start=now - timedelta(hours=1), window_end=now, count=3, evidence=[1], status="open",
                   created_at=now))
    db.commit()
    act_as(Role.SUPERVISOR, id="stf_SUP_ZH")
    assert client.put("/api/v1/inspection-checklists/monthly", json=CHECKLIST).status_code == 201
    assert client.post("/api/v1/inspections", json={"checklist_id": "monthly", "period": "2026-11", "results": {
        "findings_reviewed": "pass", "exports_justified": "fail"}}).status_code == 201
    violation = client.post("/api/v1/violations", json={
        "offender_type": "worker", "offender_id": "R_ZH", "kind": "privacy", "summary": "送达后联系顾客",
        "evidence": {"complaints": ["cmp_ZH"]}}).json()
    act_as(Role.HR_OFFICER, id="stf_HR_ZH")
    sanction = client.post(f"/api/v1/violations/{violation['id']}/sanctions", json={"kind": "suspension", "days": 3})
    act_as(Role.COURIER, kind="subject", id="R_ZH")
    assert client.post(f"/api/v1/me/sanctions/{sanction.json()['id']}/appeal",
                       json={"text": "我没有联系"}).status_code == 200


def seed_screening(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """An applicant under review (a record to judge) for the screening officer's pages."""
    from tests.builders import TEST_ACTOR
    from tests.screening.conftest import SENSITIVE, apply
    from tripguard.privacy import service as privacy
    from tripguard.screening import agency
    from tripguard.screening.service import rules_from as screening_rules

    privacy.publish_notice(db, actor=TEST_ACTOR, version="scr-1", purposes=["screening"],
                           categories=["user.name", *SENSITIVE],
                           retention_zh="三年", retention_en="3 years", text_zh="告知", text_en="notice")
    db.commit()
    assert apply(client, act_as, "drv_zh", "006").status_code == 201
    app = client.app
    agency.dispatch_reports(app.state.sessionmaker, vault=app.state.vault, agency=app.state.screening_agency,  # type: ignore[attr-defined]
                            rules=screening_rules(app.state.settings))  # type: ignore[attr-defined]


def crawl(client: TestClient, limit: int = 40) -> dict[str, str]:
    """The pages reachable from the home page, two links deep: {path: html}."""
    pages: dict[str, str] = {}
    queue = ["/console"]
    while queue and len(pages) < limit:
        path = queue.pop(0)
        if path in pages or any(part in path for part in NOT_PAGES):
            continue
        answer = client.get(path, headers={"accept-language": "zh-CN"})
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        pages[path] = answer.text
        if path.count("/") <= 3:
            queue.extend(link.replace("&amp;", "&") for link in LINK.findall(answer.text))
    return pages


@pytest.mark.parametrize("role", sorted(STAFF_ROLES - {Role.MERCHANT}, key=str))
def test_every_page_a_role_reaches_reads_in_chinese(client: TestClient, db: Session, act_as, role: Role) -> None:  # type: ignore[no-untyped-def]
    seed(client, db, act_as)
    act_as_cleared = client.app.dependency_overrides  # type: ignore[attr-defined]
    act_as_cleared.clear()
    staff(db, "person.zh", role)
    if role in TOTP_REQUIRED_ROLES:
        sign_in_with_enrolment(client, "person.zh")
    else:
        client.post("/api/v1/auth/sign-in", json={"username": "person.zh", "password": PASSWORD})
    pages = crawl(client)
    assert len(pages) >= 1
    found = {path: sorted(set(words)) for path, html in pages.items() if (words := english_words(html))}
    assert found == {}, "\n".join(f"{path}: {' '.join(words)}" for path, words in found.items())
    assert not any("<Role." in html or "Purpose." in html for html in pages.values())
    titles = {path: html.split("<title>")[1].split("</title>")[0] for path, html in pages.items() if "<title>" in html}
    assert not [path for path, title in titles.items() if "<" in title], "a page's title block holds markup"
