"""Inspection checklists: the supervision team records an inspection with a result for every item, from
the API and from the console's form; a result missing or unknown is refused."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tripguard.security.permissions import Role

CHECKLIST = {"title_zh": "月度访问检查", "title_en": "Monthly access check", "items": [
    {"key": "findings_reviewed", "text_zh": "所有监督发现已复核", "text_en": "Every finding reviewed"},
    {"key": "exports_justified", "text_zh": "批量导出均有工单", "text_en": "Every bulk export had a ticket"}]}


def test_an_inspection_gives_every_item_a_result(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR, id="stf_SUP")
    created = client.put("/api/v1/inspection-checklists/monthly", json=CHECKLIST)
    assert created.status_code == 201 and created.json()["version"] == 1
    assert client.put("/api/v1/inspection-checklists/monthly", json=CHECKLIST).json()["version"] == 1
    repeated = CHECKLIST | {"items": [CHECKLIST["items"][0]] * 2}
    assert client.put("/api/v1/inspection-checklists/monthly", json=repeated).status_code == 422

    missing = client.post("/api/v1/inspections", json={"checklist_id": "monthly", "period": "2026-11",
                                                       "results": {"findings_reviewed": "pass"}})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "results.exports_justified"
    unknown = client.post("/api/v1/inspections", json={"checklist_id": "monthly", "period": "2026-11", "results": {
        "findings_reviewed": "pass", "exports_justified": "pass", "other": "pass"}})
    assert unknown.status_code == 422
    assert client.post("/api/v1/inspections", json={"checklist_id": "monthly", "period": "November", "results": {
        "findings_reviewed": "pass", "exports_justified": "pass"}}).status_code == 422
    body = {"checklist_id": "monthly", "period": "2026-11", "notes": "两次导出缺少工单，已提醒",
            "results": {"findings_reviewed": "pass", "exports_justified": "fail"}}
    done = client.post("/api/v1/inspections", json=body, headers={"Idempotency-Key": "nov"})
    assert done.status_code == 201 and done.json()["failed"] == 1
    assert client.post("/api/v1/inspections", json=body, headers={"Idempotency-Key": "nov"}).json()["id"] == \
        done.json()["id"]

    # the console's form
    form = {"checklist_id": "monthly", "period": "2026W48", "result.findings_reviewed": "pass",
            "result.exports_justified": "n/a"}
    assert client.post("/console/supervision/inspections", data=form, follow_redirects=False).status_code == 303
    refused = client.post("/console/supervision/inspections", data={"checklist_id": "monthly", "period": "2026W49",
                                                                    "result.findings_reviewed": "pass"})
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    listed = client.get("/api/v1/inspections").json()
    assert [(i["period"], i["failed"]) for i in listed] == [("2026W48", 0), ("2026-11", 1)]
    assert 'data-inspection="' in client.get("/console/supervision").text

    act_as(Role.SAFETY_AGENT)
    assert client.post("/api/v1/inspections", json=body).status_code == 403


def test_an_inspection_names_a_period_that_exists(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    """0000Q1 and 2026-13 were taken unchecked (issue #27): a period is a quarter, month or ISO week of a year
    from 1970 to 2199, the same labels the reports take, from the API and from the console's form alike."""
    act_as(Role.SUPERVISOR, id="stf_SUP")
    client.put("/api/v1/inspection-checklists/monthly", json=CHECKLIST)
    results = {"findings_reviewed": "pass", "exports_justified": "pass"}
    for period in ("0000Q1", "2026-13", "2026-00", "2026W00", "2027W53", "9999W52", "0001-01", "2026Q5"):
        refused = client.post("/api/v1/inspections", json={"checklist_id": "monthly", "period": period,
                                                           "results": results})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "period", (period, refused.text)
        form = {"checklist_id": "monthly", "period": period, **{f"result.{k}": v for k, v in results.items()}}
        assert client.post("/console/supervision/inspections", data=form).status_code == 422, period
    for period in ("1970Q1", "2026W53", "2199-12"):
        taken = client.post("/api/v1/inspections", json={"checklist_id": "monthly", "period": period,
                                                         "results": results})
        assert taken.status_code == 201, (period, taken.text)
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["InspectionCreate"]
    assert "2[01]" in schema["properties"]["period"]["pattern"]  # the bounds are in the published schema
