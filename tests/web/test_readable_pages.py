"""Every console page each role reaches from its navigation and from the rows of its lists, read in
Chinese (and in English) by a signed-in person: no machine value a person would read (`tests/web/raw_tokens.py`: True,
None, [erased], keys such as support_agent or user.contact.phone_number, staff ids where a name exists),
and every time labelled with the operator's zone.

The seed touches every kind of page: a screened applicant with findings, an erased person, a breach with
categories, alerts, audit entries of many actions, and staff who acted (assigned, took, noted, decided)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import PASSWORD, TEST_ACTOR, sign_as_staff, sign_in_with_enrolment
from tests.web.raw_tokens import raw_tokens
from tests.web.untranslated import english_words
from tripguard.core.clock import utcnow
from tripguard.security import service as security
from tripguard.security.models import ApiKey, StaffAccount
from tripguard.security.permissions import STAFF_ROLES, TOTP_REQUIRED_ROLES, Role

LINK = re.compile(r'href="(/console[^"#]*)"')
# Not pages: downloads, streams, fragments, the language switch, sign-out, and a list's own sort, filter and
# page links (the same page again).
NOT_PAGES = ("/console/sign-out", "/console/lang/", "/stream", "/snapshot", "/label", "/documents/", "/certificate",
             "/console/reports/quarterly", "?")
# The ids of people the seed names (operator-given, any shape): shown only as refs.
PEOPLE = ("P1", "P9", "D1", "C_ZH", "R_ZH", "drv_zh", "drv_noselfie")
TIME = re.compile(r"\b\d{2}:\d{2}\b")
ZONE = "UTC+08:00"  # Asia/Shanghai, the settings' default


def named_staff(db: Session, staff_id: str, name: str, *roles: Role) -> StaffAccount:
    """A staff account with a given id: the shared builders act as `stf_TEST` and the like."""
    now = utcnow()
    account = StaffAccount(id=staff_id, username=staff_id.lower().replace("_", "."), display_name=name,
                           password_hash="x", roles=sorted(roles), totp_last_step=0, failed_sign_ins=0,
                           created_at=now, password_changed_at=now)
    db.add(account)
    db.flush()
    sign_as_staff(db, account)
    db.commit()
    return account


def person(db: Session, username: str, name: str, *roles: Role) -> StaffAccount:
    account = security.create_staff(db, actor=TEST_ACTOR, username=username, display_name=name, password=PASSWORD,
                                    roles=set(roles))
    sign_as_staff(db, account)
    db.commit()
    return account


def seed(client: TestClient, db: Session, act_as) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from tests.delivery.conftest import place_order
    from tests.safety.test_case_page import sos_with_contact
    from tests.screening.conftest import apply
    from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation
    from tests.web.test_zh_pages import seed_screening
    from tests.workforce.conftest import put_course
    from tests.workforce.test_inspections import CHECKLIST
    from tripguard.privacy import service as privacy
    from tripguard.screening import agency
    from tripguard.screening.service import rules_from as screening_rules
    from tripguard.workforce.models import Finding

    now = utcnow()
    db.add(ApiKey(id="key_TEST", name="调度系统", prefix="zhtest", secret_hash="0" * 64, scopes=["telematics.ingest"],
                  created_by="cli:test", created_at=now))
    db.commit()
    named_staff(db, "stf_TEST", "测试员", Role.TRAINER)
    agent = person(db, "li.na", "李娜", Role.SAFETY_AGENT)
    officer = person(db, "zhao.lei", "赵磊", Role.SCREENING_OFFICER)
    dpo = person(db, "chen.jing", "陈静", Role.PRIVACY_OFFICER)
    hr = person(db, "zhou.qiang", "周强", Role.HR_OFFICER)
    supervisor = person(db, "wu.min", "吴敏", Role.SUPERVISOR)
    support = person(db, "zheng.jie", "郑洁", Role.SUPPORT_AGENT)
    admin = person(db, "sun.hao", "孙浩", Role.SECURITY_ADMIN)

    # An SOS on a trip (alerts, a case with a caller and a contact), worked by a named agent.
    incident = sos_with_contact(client, db, act_as)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation("T2")))
    db.commit()
    act_as(Role.SAFETY_AGENT, id=agent.id)
    for form in ({"action": "acknowledge"}, {"action": "assign", "assignee": "me"},
                 {"action": "note", "note": "已联系乘客，情况稳定"}):
        assert client.post(f"/console/incidents/{incident}/action", data=form,
                           follow_redirects=False).status_code == 303

    # An applicant with findings, taken by a named officer; another who sent no selfie (liveness not checked).
    seed_screening(client, db, act_as)
    assert apply(client, act_as, "drv_noselfie", "005", selfie=None).status_code == 201
    agency.dispatch_reports(client.app.state.sessionmaker, vault=client.app.state.vault,  # type: ignore[attr-defined]
                            agency=client.app.state.screening_agency,  # type: ignore[attr-defined]
                            rules=screening_rules(client.app.state.settings))  # type: ignore[attr-defined]
    act_as(Role.SCREENING_OFFICER, id=officer.id)
    assert client.post("/console/screening/drv_zh/take", follow_redirects=False).status_code == 303

    # An order, a complaint taken by support, a course, a finding about a named agent, an inspection, a
    # violation about a worker and one about a staff member, a sanction and its appeal.
    place_order(client, db, act_as, "O_ZH", "C_ZH", courier_id="R_ZH")
    act_as(Role.PASSENGER, kind="subject", id="P1")
    complaint = client.post("/api/v1/complaints", json={"trip_id": "T1", "category": "conduct", "text": "司机态度不好"})
    assert complaint.status_code == 201, complaint.text
    act_as(Role.SUPPORT_AGENT, id=support.id)
    assert client.post(f"/api/v1/complaints/{complaint.json()['id']}/assign", json={}).status_code == 200
    put_course(client, act_as)
    db.add(Finding(id="fnd_ZH", rule="after_hours", actor_type="staff", actor_id=agent.id,
                   window_start=now - timedelta(hours=1), window_end=now, count=3, evidence=[1], status="open",
                   created_at=now))
    db.commit()
    act_as(Role.SUPERVISOR, id=supervisor.id)
    assert client.put("/api/v1/inspection-checklists/monthly", json=CHECKLIST).status_code == 201
    assert client.post("/api/v1/inspections", json={"checklist_id": "monthly", "period": "2026-11", "results": {
        "findings_reviewed": "pass", "exports_justified": "fail"}}).status_code == 201
    violation = client.post("/api/v1/violations", json={
        "offender_type": "worker", "offender_id": "R_ZH", "kind": "privacy", "summary": "送达后联系顾客",
        "evidence": {"complaints": [complaint.json()["id"]]}}).json()
    assert client.post("/api/v1/violations", json={
        "offender_type": "staff", "offender_id": agent.id, "kind": "privacy", "summary": "下班后查看乘客资料",
        "evidence": {"findings": ["fnd_ZH"]}}).status_code == 201
    act_as(Role.HR_OFFICER, id=hr.id)
    sanction = client.post(f"/api/v1/violations/{violation['id']}/sanctions", json={"kind": "suspension", "days": 3})
    act_as(Role.COURIER, kind="subject", id="R_ZH")
    assert client.post(f"/api/v1/me/sanctions/{sanction.json()['id']}/appeal",
                       json={"text": "我没有联系"}).status_code == 200

    # A breach with categories, investigated; a retention dry run; a legal hold; roles changed by a named
    # administrator.
    act_as(Role.PRIVACY_OFFICER, id=dpo.id)
    breach = client.post("/api/v1/privacy/breaches", json={
        "title": "客服账号被滥用", "serious": True, "occurred_from": (now - timedelta(hours=2)).isoformat(),
        "occurred_to": (now + timedelta(hours=1)).isoformat(),
        "categories": ["user.name", "user.contact.phone_number"], "cause": "账号被盗", "harm": "骚扰电话",
        "measures": "已锁定账号", "advice": "谨慎接听陌生来电", "contact": "privacy@example.com"})
    assert breach.status_code == 201, breach.text
    assert client.post(f"/api/v1/privacy/breaches/{breach.json()['id']}/investigate",
                       json={"reader_id": agent.id}).status_code == 200
    closed = client.post("/api/v1/privacy/breaches", json={
        "title": "误发短信", "serious": False, "occurred_from": (now - timedelta(days=2)).isoformat(),
        "occurred_to": (now - timedelta(days=1)).isoformat(), "categories": ["user.contact.address"],
        "cause": "模板错误", "harm": "地址外泄", "measures": "已更正模板", "advice": "无需操作",
        "contact": "privacy@example.com"}).json()
    assert client.post(f"/api/v1/privacy/breaches/{closed['id']}/close").status_code == 200
    assert client.post("/console/privacy/retention/run", data={"mode": "dry"},
                       follow_redirects=False).status_code == 303
    assert client.post("/console/privacy/holds",
                       data={"subject_id": "P1", "case_ref": incident, "reason": "案件调查中"},
                       follow_redirects=False).status_code == 303
    act_as(Role.SECURITY_ADMIN, id=admin.id)
    assert client.put(f"/api/v1/staff/{support.id}/roles", json={"roles": ["support_agent", "investigator"]}
                       ).status_code == 200

    # An erased person: a passenger who complained and asked for access, then was erased.
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.put("/api/v1/subjects/P9", json={"kind": "passenger", "name": "赵小红", "phone": "13800009999",
                                                   "notice_version": "2026-11"}).status_code == 200
    events = trip_with_deviation("T9")[:5]
    events[0]["passenger_id"], events[0]["driver_id"] = "P9", "D1"
    post(client, ndjson(events))
    act_as(Role.PASSENGER, kind="subject", id="P9")
    erased = client.post("/api/v1/complaints", json={"trip_id": "T9", "category": "service", "text": "等了很久"})
    assert erased.status_code == 201, erased.text
    assert client.post("/api/v1/me/requests", json={"kind": "access"}).status_code == 202
    sos = client.post("/api/v1/sos", json={})
    assert sos.status_code == 201, sos.text
    act_as(Role.SAFETY_AGENT, id=agent.id)
    assert client.post(f"/console/incidents/{sos.json()['incident_id']}/action",
                       data={"action": "note", "note": "乘客说有人跟踪"}, follow_redirects=False).status_code == 303
    act_as(Role.PASSENGER, kind="subject", id="P1")  # a request still to verify
    assert client.post("/api/v1/me/requests", json={"kind": "access"}).status_code == 202
    privacy.erase_subject(db, vault=client.app.state.vault, actor=TEST_ACTOR, subject_id="P9",  # type: ignore[attr-defined]
                          reason="operator", trip_data_days=730)
    db.commit()
    return {"incident": incident, "breach": breach.json()["id"]}


def crawl(client: TestClient, language: str = "zh-CN", limit: int = 120) -> dict[str, str]:
    """The pages reachable from the home page through the navigation and the lists' rows: {path: html}."""
    pages: dict[str, str] = {}
    queue = ["/console"]
    while queue and len(pages) < limit:
        path = queue.pop(0)
        if path in pages or any(part in path for part in NOT_PAGES):
            continue
        answer = client.get(path, headers={"accept-language": language})
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        pages[path] = answer.text
        queue.extend(link.replace("&amp;", "&") for link in LINK.findall(answer.text))
    return pages


def visible_text(html: str) -> str:
    body = html.split("<body", 1)[-1]
    body = re.sub(r"<(script|style|template)\b.*?</\1>", " ", body, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", body)


CONSOLE_ROLES = sorted(STAFF_ROLES, key=str)


@pytest.mark.parametrize("role", CONSOLE_ROLES)
def test_every_page_a_role_reaches_reads_without_keys_or_ids(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                                            role: Role) -> None:
    seed(client, db, act_as)
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
    account = person(db, "reader.zh", "王芳", role)
    if role == Role.MERCHANT:  # a merchant's staff member sees their own shop's orders
        from tripguard.delivery.service import link_merchant_staff

        link_merchant_staff(db, actor=TEST_ACTOR, merchant_id="M1", staff_id=account.id)
        db.commit()
    if role in TOTP_REQUIRED_ROLES:
        sign_in_with_enrolment(client, account.username)
    else:
        assert client.post("/api/v1/auth/sign-in", json={"username": account.username, "password": PASSWORD}
                           ).status_code == 200
    found: dict[str, list[str]] = {}
    for language in ("zh-CN", "en"):  # Chinese, the case; English holds to the same rule
        pages = crawl(client, language)
        assert len(pages) > 1
        for path, html in pages.items():
            problems = [str(raw) for raw in raw_tokens(html, PEOPLE)]
            if language == "zh-CN":  # and no English word left in a Chinese page (tests/web/untranslated.py)
                problems += [f"English {word!r}" for word in sorted(set(english_words(html)))]
            if TIME.search(visible_text(html)) and ZONE not in visible_text(html):
                problems.append(f"times without their zone ({ZONE})")
            if problems:
                found[f"{language} {path}"] = problems
    assert found == {}, "\n".join(f"{path}:\n  " + "\n  ".join(raws) for path, raws in found.items())
