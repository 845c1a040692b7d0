"""Workforce tests: a course to pass, workers through screening, the dispatch gate."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.screening.conftest import gate, screening_app  # noqa: F401 (fixtures)
from tripguard.security.permissions import Role


def course(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "confidentiality", "audience": "worker", "title_zh": "顾客信息保密",
        "title_en": "Keeping customers' data",
        "modules": [{"title_zh": "只为送达而用", "title_en": "Only to deliver",
                     "body_zh": "顾客的电话和地址只用于本单送达。",
                     "body_en": "Use the phone and address only to deliver."}],
        "quiz": [{"text_zh": "送达后可以保存顾客电话吗？", "text_en": "May you keep the phone after delivery?",
                  "options_zh": ["可以", "不可以"], "options_en": ["Yes", "No"], "answer": 1},
                 {"text_zh": "联系顾客用什么号码？", "text_en": "Which number do you call the customer on?",
                  "options_zh": ["虚拟号码", "真实号码"], "options_en": ["The virtual number", "Their real one"],
                  "answer": 0}],
        "pass_mark": 100, "required": True, "refresher_months": 12}
    return body | overrides


def put_course(client: TestClient, act_as, course_id: str = "privacy-basics", **overrides: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    act_as(Role.TRAINER)
    response = client.put(f"/api/v1/courses/{course_id}", json=course(**overrides))
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def as_worker(act_as, worker_id: str, role: Role = Role.COURIER, *, signed: bool = False):  # type: ignore[no-untyped-def]
    return act_as(role, kind="subject", id=worker_id, signed=signed)
