"""Training: courses that hold together, coverage and satisfaction of a known set of workers checked
exactly, the certificate rendered with its Chinese, the trainers' pages costing the same whatever the
number of workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pypdfium2 as pdfium
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.screening.conftest import apply, run_agency
from tests.workforce.conftest import as_worker, course, put_course
from tripguard.core.clock import utcnow
from tripguard.core.ids import new_id
from tripguard.security.permissions import Role
from tripguard.workforce.models import Attempt


def test_a_course_holds_together_and_changes_raise_its_version(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.TRAINER)
    bad = course()
    bad["quiz"][0]["answer"] = 5
    problem = client.put("/api/v1/courses/c1", json=bad)
    assert problem.status_code == 422 and problem.json()["errors"][0]["field"] == "quiz.0.answer"
    uneven = course()
    uneven["quiz"][1]["options_en"] = ["one"]
    assert client.put("/api/v1/courses/c1", json=uneven).status_code == 422
    assert client.put("/api/v1/courses/c1", json=course() | {"required": 1}).status_code == 422  # a boolean
    assert client.put("/api/v1/courses/Bad Id", json=course()).status_code == 422
    first = client.put("/api/v1/courses/c1", json=course())
    assert first.status_code == 201 and first.json()["version"] == 1 and first.json()["questions"] == 2
    assert client.put("/api/v1/courses/c1", json=course()).json()["version"] == 1  # unchanged: a retry
    assert client.put("/api/v1/courses/c1", json=course(pass_mark=50)).json()["version"] == 2
    act_as(Role.COURIER, kind="subject", id="cou_x")
    assert client.put("/api/v1/courses/c1", json=course()).status_code == 403
    assert client.get("/api/v1/courses").status_code == 403


def test_coverage_and_satisfaction_of_a_known_set_of_workers(  # type: ignore[no-untyped-def]
        client: TestClient, screening_app: FastAPI, db: Session, session_factory: sessionmaker[Session],
        act_as) -> None:
    put_course(client, act_as, "for-all")  # required for drivers and couriers
    put_course(client, act_as, "for-drivers", audience="driver")
    put_course(client, act_as, "optional", required=False)
    for worker_id, role in (("w_both", "driver"), ("w_half", "driver"), ("w_courier", "courier"), ("w_none", "courier"),
                            ("w_lapsed", "courier")):
        assert apply(client, act_as, worker_id, "001", role=role).status_code == 201
    assert apply(client, act_as, "w_pending", "008", role="courier").status_code == 201  # the agency times out
    run_agency(screening_app, session_factory)

    def take(worker_id: str, role: Role, course_id: str, rating: int | None = None, answers: list[int] | None = None):  # type: ignore[no-untyped-def]
        as_worker(act_as, worker_id, role, signed=True)
        attempt = client.post(f"/api/v1/me/training/{course_id}/attempts", json={"answers": answers or [1, 0]}).json()
        if rating is not None:
            assert client.put(f"/api/v1/me/training/attempts/{attempt['id']}/rating",
                              json={"rating": rating}).status_code == 200
        return attempt

    take("w_both", Role.DRIVER, "for-all", 5)
    take("w_both", Role.DRIVER, "for-drivers", 4)
    take("w_half", Role.DRIVER, "for-all", 2)  # still misses the drivers' course
    take("w_courier", Role.COURIER, "for-all", 3)
    take("w_courier", Role.COURIER, "optional")
    failed = take("w_none", Role.COURIER, "for-all", answers=[0, 0])
    assert client.put(f"/api/v1/me/training/attempts/{failed['id']}/rating",
                      json={"rating": 5}).status_code == 409  # rated once passed
    lapsed = take("w_lapsed", Role.COURIER, "for-all", 1)
    db.execute(update(Attempt).where(Attempt.id == lapsed["id"]).values(expires_at=utcnow() - timedelta(days=1)))
    take("w_pending", Role.COURIER, "for-all")  # not active: not counted
    db.commit()
    as_worker(act_as, "w_both", Role.DRIVER)
    first = client.get("/api/v1/me/training").json()
    assert [(p["course_id"], p["reason"]) for p in first] == [("for-all", "done"), ("for-drivers", "done"),
                                                            ("optional", "optional")]

    act_as(Role.TRAINER)
    figures = client.get("/api/v1/training/kpi").json()
    assert (figures["active_workers"], figures["covered_workers"]) == (5, 2)  # w_both and w_courier
    assert figures["coverage"] == 0.4
    assert (figures["ratings"], figures["satisfaction"], figures["satisfied_share"]) == (5, 3.0, 0.4)
    before = client.get("/api/v1/training/kpi", params={"at": (utcnow() - timedelta(days=1)).isoformat()}).json()
    assert before["covered_workers"] == 0 and before["ratings"] == 0  # nothing was passed yet a day ago
    assert client.get("/api/v1/training/kpi", params={"at": utcnow().isoformat(),
                                                      "since": utcnow().isoformat()}).status_code == 422


def test_the_certificate_is_a_pdf_with_its_chinese(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    put_course(client, act_as)
    as_worker(act_as, "cou_cert")
    failed = client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [0, 1]}).json()
    assert client.get(f"/api/v1/me/training/attempts/{failed['id']}/certificate").status_code == 409
    passed = client.post("/api/v1/me/training/privacy-basics/attempts", json={"answers": [1, 0]}).json()
    response = client.get(f"/api/v1/me/training/attempts/{passed['id']}/certificate")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    document = pdfium.PdfDocument(response.content)
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    for expected in ("培训合格证书", "顾客信息保密", "cou_cert", passed["certificate_no"], "100 / 100"):
        assert expected in text, expected
    as_worker(act_as, "cou_other")
    assert client.get(f"/api/v1/me/training/attempts/{passed['id']}/certificate").status_code == 404


def test_the_course_page_costs_the_same_for_one_worker_or_hundreds(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    put_course(client, act_as)

    def seed(count: int) -> None:
        now = utcnow()
        db.add_all(Attempt(id=new_id("att"), worker_id=f"w{n}-{count}", course_id="privacy-basics", course_version=1,
                           score=100, passed=True, at=now, rating=4, rated_at=now) for n in range(count))
        db.commit()

    def statements_for_page() -> int:
        seen: list[str] = []

        def listener(*args: Any) -> None:
            seen.append(args[2])

        event.listen(db.get_bind(), "before_cursor_execute", listener)
        try:
            page = client.get("/console/training/courses/privacy-basics")
            assert page.status_code == 200, page.text
        finally:
            event.remove(db.get_bind(), "before_cursor_execute", listener)
        return len(seen)

    seed(1)
    one = statements_for_page()
    seed(300)
    assert statements_for_page() == one
    page = client.get("/console/training/courses/privacy-basics").text
    assert 'data-figure="passed"><span class="value">301<' in page
    assert client.get("/console/training").status_code == 200


def test_an_answer_names_an_option_of_its_question(client: TestClient, act_as, db: Session) -> None:  # type: ignore[no-untyped-def]
    """Quiz answers -1 and 2**70 were taken unchecked (issue #27): each answer is an option's index, from 0
    to the question's last option, or the attempt is a 422 naming the answer and nothing is recorded."""
    put_course(client, act_as)
    as_worker(act_as, "cou_QUIZ", signed=True)
    url = "/api/v1/me/training/privacy-basics/attempts"
    for answers, field in (([-1, 0], "answers.0"), ([1, 2**70], "answers.1"), ([1, 2], "answers.1"),
                           ([8, 0], "answers.0")):
        refused = client.post(url, json={"answers": answers})
        assert refused.status_code == 422, (answers, refused.text)
        assert refused.json()["errors"][0]["field"] == field, refused.json()
    assert db.scalar(select(func.count()).select_from(Attempt).where(Attempt.worker_id == "cou_QUIZ")) == 0
    assert client.post(url, json={"answers": [1, 0]}).json()["passed"]
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["AttemptCreate"]
    assert schema["properties"]["answers"]["items"] == {"type": "integer", "minimum": 0, "maximum": 7}


def test_a_pass_that_ran_out_is_passed_but_not_in_force(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """The course page counts every worker who ever passed, and apart those whose pass still holds."""
    put_course(client, act_as)
    now = utcnow()
    for worker_id, expires_at in (("w_lapsed", now - timedelta(days=1)), ("w_current", now + timedelta(days=30))):
        db.add(Attempt(id=new_id("att"), worker_id=worker_id, course_id="privacy-basics", course_version=1,
                       score=100, passed=True, at=now - timedelta(days=400), expires_at=expires_at))
    db.commit()
    page = client.get("/console/training/courses/privacy-basics")
    assert page.status_code == 200, page.text
    assert 'data-figure="passed"><span class="value">2<' in page.text
    assert 'data-figure="current"><span class="value">1<' in page.text
