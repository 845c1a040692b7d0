"""Orders in the console: support sees masks and reveals one field on a reason; a kitchen sees its
merchant's orders only, with the label to preview and print; the binding and its calls."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.delivery.conftest import place_order
from tests.delivery.test_orders_api import kitchen
from tripguard.audit.models import AuditEntry
from tripguard.security.permissions import Role


def test_support_sees_masks_and_reveals_on_a_reason(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    place_order(client, db, act_as, "O2", "C2", merchant_id="M2")
    act_as(Role.SUPPORT_AGENT, id="stf_SUP")
    listing = client.get("/console/orders")
    assert listing.status_code == 200 and 'data-order="O1"' in listing.text and 'data-order="O2"' in listing.text
    page = client.get("/console/orders/O1")
    assert page.status_code == 200
    assert "王**" in page.text and "*******1234" in page.text and "13800001234" not in page.text
    assert "17000000001" in page.text  # the binding
    revealed = client.post("/console/orders/O1/reveal", data={"field": "customer_phone", "reason": "顾客来电改地址"})
    assert revealed.status_code == 200 and 'data-testid="revealed"' in revealed.text and "13800001234" in revealed.text
    address = client.post("/console/orders/O1/reveal", data={"field": "address", "reason": "核对楼栋号码"})
    assert "1201" not in address.text  # support never opens the address
    assert [e.outcome for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "order.reveal"))] == \
        ["success", "denied"]
    assert client.get("/console/orders/O1/label").status_code == 403  # support prints no labels


def test_a_kitchen_sees_its_merchants_orders_and_prints_labels(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    place_order(client, db, act_as, "O2", "C2", merchant_id="M2")
    act_as(Role.SYSTEM_ADMIN)
    assert client.put("/api/v1/merchants/M1/staff/stf_NOBODY").status_code == 404  # an account that exists
    act_as(Role.MERCHANT, id=kitchen(client, db, act_as))
    listing = client.get("/console/orders")
    assert 'data-order="O1"' in listing.text and 'data-order="O2"' not in listing.text
    page = client.get("/console/orders/O1")
    assert page.status_code == 200 and 'data-testid="pickup-code"' in page.text
    assert 'data-testid="fields"' not in page.text and "13800001234" not in page.text
    preview = client.get("/console/orders/O1/label")
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
    assert client.get("/console/orders/O1/label?format=pdf").content.startswith(b"%PDF")
    assert client.get("/console/orders/O2").status_code == 404
    assert client.get("/console/orders/O2/label").status_code == 404
    act_as(Role.MERCHANT, id="stf_UNLINKED")
    assert 'data-order="O1"' not in client.get("/console/orders").text


def test_a_kitchen_that_has_not_signed_is_told_to_sign_before_it_prints(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                        act_as, app: FastAPI) -> None:
    """The label carries the customer's masked name and phone: an unsigned kitchen's order page says to sign
    the agreement (a link to it) instead of showing a preview and a print button that would both be refused."""
    from tests.builders import staff
    from tests.conftest import sign_agreement

    place_order(client, db, act_as, courier_id="R1")
    account = staff(db, "kitchen.new", Role.MERCHANT, signed=False)
    act_as(Role.SYSTEM_ADMIN)
    assert client.put(f"/api/v1/merchants/M1/staff/{account.id}").status_code == 204
    principal = act_as(Role.MERCHANT, id=account.id, signed=False)
    page = client.get("/console/orders/O1", headers={"accept-language": "en"})
    assert page.status_code == 200 and 'data-testid="pickup-code"' in page.text
    assert 'data-testid="label-refused"' in page.text and 'href="/console/agreement"' in page.text
    assert 'data-testid="label-preview"' not in page.text and 'data-testid="label-pdf"' not in page.text
    assert client.get("/console/orders/O1/label").status_code == 403  # what the preview would have met
    sign_agreement(app.state.sessionmaker, principal)
    page = client.get("/console/orders/O1")
    assert 'data-testid="label-refused"' not in page.text and 'data-testid="label-preview"' in page.text
    assert client.get("/console/orders/O1/label?format=pdf").content.startswith(b"%PDF")
