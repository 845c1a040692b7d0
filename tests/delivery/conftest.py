"""Orders through the API: a published notice, a pool of virtual numbers, orders placed and assigned."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR, cleared_worker
from tripguard.privacy import service as privacy
from tripguard.privacy.models import PrivacyNotice
from tripguard.security.permissions import Role

ADDRESS = "北京市朝阳区建国路88号SOHO现代城5号楼3单元1201室"


def publish_notice(db: Session) -> None:
    if db.get(PrivacyNotice, "ord-1") is None:
        privacy.publish_notice(db, actor=TEST_ACTOR, version="ord-1", purposes=["delivery"],
                               categories=["user.name", "user.contact.phone_number", "user.contact.address"],
                               retention_zh="订单完成后72小时", retention_en="72 hours after the order",
                               text_zh="外卖隐私告知", text_en="delivery notice")
        db.commit()


def place_order(client: TestClient, db: Session, act_as, order_id: str = "O1", customer_id: str = "C1",  # type: ignore[no-untyped-def]
                courier_id: str | None = None, **extra: Any) -> dict[str, Any]:
    publish_notice(db)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    body = {"id": order_id, "customer_id": customer_id, "merchant_id": "M1", "city": "beijing",
            "notice_version": "ord-1", "customer": {"name": "王小明", "phone": "13800001234"}, "address": ADDRESS,
            "items": [{"name": "宫保鸡丁", "quantity": 1}, {"name": "米饭", "quantity": 2}],
            "notes": "到了打电话 13912345678，别按门铃"} | extra
    response = client.post("/api/v1/orders", json=body)
    assert response.status_code in (200, 201), response.text
    if courier_id is not None:
        cleared_worker(client.app.state.sessionmaker, courier_id)  # type: ignore[attr-defined]
        client.post("/api/v1/telephony/numbers", json={"city": body["city"], "numbers": ["17000000001"]})
        assigned = client.post(f"/api/v1/orders/{order_id}/assign",
                               json={"courier_id": courier_id, "courier_phone": "13700009999"})
        assert assigned.status_code == 200, assigned.text
    return response.json()  # type: ignore[no-any-return]
