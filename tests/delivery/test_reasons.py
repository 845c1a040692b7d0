"""A reason that lets someone past a check of delivery holds words (review #27): an override of the
dispatch gate, or support revealing a field, is refused (422 naming the field) for blanks, full-width or
zero-width spaces or marks, and nothing happens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.builders import cleared_worker
from tests.delivery.conftest import place_order
from tests.workforce.conftest import put_course
from tripguard.audit.models import AuditEntry
from tripguard.delivery.models import Binding, Order
from tripguard.security.permissions import Role

NO_REASONS = ["     ", "\u3000" * 5, ".....", "\u200b" * 5, "  ab  ", "、、、、、。"]


@pytest.mark.parametrize("no_reason", NO_REASONS)
def test_an_override_for_no_reason_is_refused_and_nothing_is_given(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session], no_reason: str) -> None:
    place_order(client, db, act_as)
    cleared_worker(session_factory, "cou_late")
    put_course(client, act_as)  # the gate refuses cou_late: only an override gives them the order
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": ["17000000001"]})
    refused = client.post("/api/v1/orders/O1/assign", json={"courier_id": "cou_late", "courier_phone": "13700009999",
                                                            "override_reason": no_reason})
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["override_reason"]
    db.expire_all()
    assert db.get(Order, "O1").courier_id is None  # type: ignore[union-attr]
    assert db.scalars(select(Binding)).all() == []
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "order.assign_override")).all() == []


def test_an_override_reason_is_kept_stripped(  # type: ignore[no-untyped-def]
        client: TestClient, db: Session, act_as, session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as)
    cleared_worker(session_factory, "cou_late")
    put_course(client, act_as)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": ["17000000001"]})
    given = client.post("/api/v1/orders/O1/assign", json={"courier_id": "cou_late", "courier_phone": "13700009999",
                                                          "override_reason": "\u3000 暴雨 唯一骑手 \u3000"})
    assert given.status_code == 200, given.text


@pytest.mark.parametrize("no_reason", NO_REASONS)
def test_support_reveals_nothing_for_no_reason(client: TestClient, db: Session, act_as,  # type: ignore[no-untyped-def]
                                               no_reason: str) -> None:
    place_order(client, db, act_as)
    act_as(Role.SUPPORT_AGENT, id="stf_SUPPORT", signed=True)
    refused = client.post("/api/v1/orders/O1/reveal", json={"field": "customer_phone", "reason": no_reason})
    assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == ["reason"], refused.text
    assert db.scalars(select(AuditEntry).where(AuditEntry.action == "order.reveal")).all() == []
