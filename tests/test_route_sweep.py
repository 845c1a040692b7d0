"""Pages and endpoints that look a record up (their queries live in the domains' services), called by every
role with unknown, other principals' and malformed ids: a refusal (4xx) or a page, never a 500; an unknown id
is a 404 to those allowed to look."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tripguard.security.permissions import Role

GETS = [
    "/api/v1/audit/entries/987654", "/api/v1/audit/entries/0",
    "/readyz",
    "/console/messages", "/console/messages?format=csv",
    "/console/privacy/notices", "/console/privacy/requests/req_nope", "/console/privacy/requests/%00",
    "/console/privacy/retention", "/console/privacy/breaches", "/console/privacy/breaches/brc_nope",
    "/console/orders", "/console/orders?format=csv", "/console/orders/O_nope",
    "/console/complaints/cmp_nope", "/console/complaints/cmp_nope?template=tpl_nope",
    "/api/v1/privacy/notices/nope", "/api/v1/privacy/notices/..", "/api/v1/privacy/retention/runs",
    "/api/v1/privacy/holds", "/api/v1/privacy/breaches",
    "/api/v1/incidents/inc_nope", "/console/incidents/inc_nope",
    "/api/v1/me/screening", "/api/v1/screening/queue", "/api/v1/screening/queue?status=active",
    "/console/screening/queue", "/console/screening", "/console/screening/queue?format=csv",
    "/console/screening/drv_nope/documents/doc_nope",
    "/api/v1/telematics/devices", "/api/v1/telematics/trips", "/api/v1/telematics/trips?status=ended&limit=1",
    "/api/v1/telematics/trips/T_nope", "/console/trips/T_nope",
    "/console/training/courses/nope", "/console/supervision/fnd_nope", "/console/discipline/vio_nope",
]
POSTS = [
    ("/console/privacy/requests/req_nope/verify", {"how": "in person"}),
    ("/console/privacy/requests/req_nope/decision", {"decision": "apply", "note": "x"}),
    ("/console/incidents/inc_nope/call", {"to": "caller"}),
    ("/console/supervision/fnd_nope", {"action": "justified"}),
]
STAFF = [Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN, Role.SAFETY_AGENT, Role.INVESTIGATOR,
         Role.SCREENING_OFFICER, Role.PRIVACY_OFFICER, Role.TRAINER, Role.SUPERVISOR, Role.SUPPORT_AGENT,
         Role.HR_OFFICER, Role.MERCHANT]


@pytest.fixture
def lenient(app: FastAPI):  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client


def _sweep(client: TestClient) -> list[str]:
    failed = []
    for url in GETS:
        response = client.get(url)
        if response.status_code >= 500:
            failed.append(f"GET {url}: {response.status_code} {response.text[:200]}")
    for url, data in POSTS:
        response = client.post(url, data=data)
        if response.status_code >= 500:
            failed.append(f"POST {url}: {response.status_code} {response.text[:200]}")
    response = client.put("/api/v1/telematics/devices/DEV_X", json={"vehicle_id": "V_nope",
                                                                    "installed_at": "2026-03-01T08:00:00Z"})
    if response.status_code >= 500:
        failed.append(f"PUT device: {response.status_code}")
    return failed


@pytest.mark.parametrize("role", STAFF, ids=lambda r: r.value)
def test_staff_never_meet_a_500_looking_records_up(lenient: TestClient, act_as, app: FastAPI, role: Role) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"env": "development"})  # the messages page too
    act_as(role, id=f"stf_{role.value.upper()}")
    assert _sweep(lenient) == []


@pytest.mark.parametrize(("role", "kind", "pid"), [
    (Role.INTEGRATION, "api_key", "key_TEST"), (Role.DRIVER, "subject", "drv_nobody"),
    (Role.COURIER, "subject", "cou_nobody"), (Role.PASSENGER, "subject", "P_nobody")])
def test_keys_and_people_never_meet_a_500(lenient: TestClient, act_as, role: Role, kind: str, pid: str) -> None:  # type: ignore[no-untyped-def]
    act_as(role, kind=kind, id=pid)
    assert _sweep(lenient) == []


def test_unknown_ids_are_404_to_those_allowed(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    assert client.get("/console/privacy/requests/req_nope").status_code == 404
    assert client.post("/console/privacy/requests/req_nope/verify", data={"how": "in person"}).status_code == 404
    assert client.get("/console/privacy/breaches/brc_nope").status_code == 404
    assert client.get("/api/v1/privacy/notices/nope").status_code == 404
    act_as(Role.SAFETY_AGENT)
    assert client.get("/api/v1/incidents/inc_nope").status_code == 404
    assert client.get("/console/incidents/inc_nope").status_code == 404
    assert client.post("/console/incidents/inc_nope/call", data={"to": "caller"}).status_code == 404
    act_as(Role.SCREENING_OFFICER)
    assert client.get("/console/screening/drv_nope/documents/doc_nope").status_code == 404
    act_as(Role.SUPPORT_AGENT)
    assert client.get("/console/complaints/cmp_nope").status_code == 404
    assert client.get("/console/orders/O_nope").status_code == 404
    act_as(Role.AUDIT_ADMIN)
    assert client.get("/api/v1/audit/entries/987654").status_code == 404
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    assert client.get("/api/v1/telematics/trips/T_nope").status_code in (403, 404)
    act_as(Role.DRIVER, kind="subject", id="drv_nobody")
    assert client.get("/api/v1/me/screening").status_code == 404
