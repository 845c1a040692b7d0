"""The orders list's scope, from delivery's service: a kitchen lists and exports only its merchant's orders,
support every order, a role without order-read none."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.delivery.conftest import place_order
from tests.delivery.test_orders_api import kitchen
from tripguard.security.permissions import Role


def test_a_kitchen_lists_and_exports_only_its_merchants_orders(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as)
    place_order(client, db, act_as, "O2", "C2", merchant_id="M2")
    act_as(Role.MERCHANT, id=kitchen(client, db, act_as))
    export = client.get("/console/orders?format=csv")
    assert export.status_code == 200 and "O1" in export.text and "O2" not in export.text
    act_as(Role.MERCHANT, Role.SUPPORT_AGENT, id="stf_BOTH")  # support sees every order
    assert 'data-order="O2"' in client.get("/console/orders").text
    act_as(Role.SECURITY_ADMIN)  # a role without ORDER_READ is refused, never shown an empty list
    assert client.get("/console/orders").status_code == 403
