"""Virtual numbers (AXB): a bound number bridges the two parties before expiry and refuses after; a
released number rests before reuse; an empty pool is an alert, not a crash; calls are recorded without
real numbers."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR, cleared_worker
from tests.delivery.conftest import place_order
from tripguard.core.clock import utcnow
from tripguard.delivery import numbers
from tripguard.delivery.models import Binding, Interaction, VirtualNumber
from tripguard.security.permissions import Role


def _route(client: TestClient, act_as, number: str, caller: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    response = client.post("/api/v1/telephony/route", json={"number": number, "caller": caller})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_bound_number_bridges_before_expiry_and_refuses_after(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    number = client.get("/api/v1/orders/O1").json()["virtual_number"]
    assert number == "17000000001"
    assert _route(client, act_as, number, "+86 138-0000-1234") == {"action": "bridge", "to": "13700009999",
                                                                    "reason": None}
    assert _route(client, act_as, number, "13700009999") == {"action": "bridge", "to": "13800001234", "reason": None}
    assert _route(client, act_as, number, "13500000000")["reason"] == "unknown_caller"
    assert _route(client, act_as, "17099999999", "13800001234")["reason"] == "no_binding"
    # completed: still bridged during the grace, then refused
    client.post("/api/v1/orders/O1/status", json={"status": "cancelled"})
    assert _route(client, act_as, number, "13800001234")["action"] == "bridge"
    binding = db.scalars(select(Binding)).one()
    binding.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert _route(client, act_as, number, "13800001234") == {"action": "refuse", "to": None, "reason": "expired"}
    assert numbers.expire(db, quiet=timedelta(hours=24)) == 1
    db.commit()
    assert db.get(VirtualNumber, number).status == "quiet"  # type: ignore[union-attr]
    assert _route(client, act_as, number, "13800001234")["reason"] == "no_binding"
    calls = db.scalars(select(Interaction).order_by(Interaction.at)).all()
    assert [(c.caller, c.outcome) for c in calls][:3] == [("customer", "bridged"), ("courier", "bridged"),
                                                          ("unknown", "refused")]
    stored = " ".join(f"{c.number} {c.caller} {c.outcome} {c.reason}" for c in calls)
    assert "1234" not in stored and "9999" not in stored.replace("17099999999", "")  # no real numbers kept


def test_a_rested_number_is_reused_and_an_empty_pool_is_an_alert(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    place_order(client, db, act_as, "O2", "C2")
    client.post("/api/v1/orders/O1/status", json={"status": "cancelled"})
    db.scalars(select(Binding)).one().expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    numbers.expire(db, quiet=timedelta(hours=24))
    db.commit()
    alerts = numbers.POOL_EXHAUSTED.labels("beijing")._value.get()
    cleared_worker(client.app.state.sessionmaker, "R2")  # type: ignore[attr-defined]
    assigned = client.post("/api/v1/orders/O2/assign", json={"courier_id": "R2", "courier_phone": "13600000000"})
    assert assigned.status_code == 200  # the order goes on without a number
    assert numbers.POOL_EXHAUSTED.labels("beijing")._value.get() == alerts + 1  # the metric to page on
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    with TestClient(client.app, client=("127.0.0.1", 50000)) as prometheus:  # /metrics: this host only
        assert "tripguard_virtual_number_pool_exhausted_total" in prometheus.get("/metrics").text
    act_as(Role.COURIER, kind="subject", id="R2")
    assert client.get("/api/v1/orders/O2").json()["virtual_number"] is None
    db.get(VirtualNumber, "17000000001").quiet_until = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    db.commit()
    place_order(client, db, act_as, "O3", "C3", courier_id="R3")  # the rested number is bound again
    act_as(Role.COURIER, kind="subject", id="R3")
    assert client.get("/api/v1/orders/O3").json()["virtual_number"] == "17000000001"


def test_the_simulated_carrier_rings_through_the_routing(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tripguard.delivery.carrier import SimulatedCarrier

    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    carrier = SimulatedCarrier(client)  # the test client stands for the carrier's HTTP connection
    assert carrier.name == "simulated-carrier"
    call = carrier.ring(number="17000000001", caller="13800001234")
    assert (call.action, call.to) == ("bridge", "13700009999")
    assert call.describe() == "simulated carrier: 17000000001 bridges *******1234 to *******9999"
    assert "refuses" in carrier.ring(number="17000000001", caller="13500000000").describe()


def test_the_merchant_and_the_courier_have_a_number_of_their_own(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, merchant_phone="01065550000")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": ["17000000001", "17000000002"]})
    cleared_worker(client.app.state.sessionmaker, "R1")  # type: ignore[attr-defined]
    assert client.post("/api/v1/orders/O1/assign", json={"courier_id": "R1", "courier_phone": "13700009999"}) \
        .status_code == 200
    act_as(Role.COURIER, kind="subject", id="R1")
    seen = client.get("/api/v1/orders/O1").json()
    to_customer, to_merchant = seen["virtual_number"], seen["merchant_number"]
    assert to_customer and to_merchant and to_customer != to_merchant
    assert _route(client, act_as, to_merchant, "010-6555-0000") == {"action": "bridge", "to": "13700009999",
                                                                     "reason": None}
    assert _route(client, act_as, to_merchant, "13700009999")["to"] == "01065550000"
    assert _route(client, act_as, to_merchant, "13800001234")["reason"] == "unknown_caller"  # the customer
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    assert client.get("/api/v1/orders/O1").json()["merchant_number"] is None


def test_every_real_number_the_route_opens_is_audited_as_the_providers_use(client: TestClient, db: Session,
                                                                         act_as) -> None:  # type: ignore[no-untyped-def]
    """The telephony provider's key is given a real number: that is a use of personal data, audited with its
    purpose, and a breach investigation of that key finds whose numbers it was given (issue #26, 6a)."""
    import json

    from tripguard.audit.models import AuditEntry
    from tripguard.privacy import breaches

    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    number = client.get("/api/v1/orders/O1").json()["virtual_number"]
    since = utcnow() - timedelta(seconds=1)
    assert _route(client, act_as, number, "13800001234")["to"] == "13700009999"  # the customer calls the courier
    assert _route(client, act_as, number, "13500000000")["action"] == "refuse"  # a stranger: opened, not given
    uses = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.use").order_by(AuditEntry.id)).all()
    seen = [(e.actor_type, e.actor_id, e.purpose, e.target_type, json.loads(e.details)) for e in uses]
    assert seen == [
        ("api_key", "key_TEST", "delivery", "delivery_orders",
         {"fields": "customer_phone", "plaintext": "", "use": "telephony_route"}),
        ("api_key", "key_TEST", "delivery", "delivery_bindings",
         {"fields": "courier_phone", "plaintext": "courier_phone", "use": "telephony_route"}),
        ("api_key", "key_TEST", "delivery", "delivery_orders",
         {"fields": "customer_phone", "plaintext": "", "use": "telephony_route"}),
        ("api_key", "key_TEST", "delivery", "delivery_bindings",
         {"fields": "courier_phone", "plaintext": "", "use": "telephony_route"}),
    ]
    breach = breaches.open_breach(db, actor=TEST_ACTOR, title="carrier key leaked", serious=False,
                                  occurred_from=since, occurred_to=utcnow() + timedelta(seconds=1),
                                  categories=["user.contact.phone_number"], cause="c", harm="h", measures="m",
                                  advice="a", contact="privacy@example.com")
    found = breaches.investigate(db, actor=TEST_ACTOR, breach_id=breach.id, reader_id="key_TEST", since=None,
                                 until=None)
    assert found.subjects == ["C1", "R1"] and found.entries == 4


def test_only_real_numbers_go_into_the_pool(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    """An empty phone number was added to the number pool (issue #27): each number is 5 to 20 digits, with
    single spaces or dashes between them; one bad number refuses the whole list, by its position."""
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for bad in ("", " ", "+", "----", "1234", "1" * 21, "170 0000 000a", "170--0000-0001", "x" * 100, "+86 ",
                "\u0661\u0662\u0663\u0664\u0665"):  # Arabic-Indic digits are not a carrier's number
        refused = client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": ["17000000001", bad]})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["errors"][0]["field"] == "numbers.1", refused.json()
    assert db.scalar(select(func.count()).select_from(VirtualNumber)) == 0
    taken = client.post("/api/v1/telephony/numbers", json={"city": "beijing", "numbers": [
        "17000000001", "+86 170-0000-0001", "170 0000 0002"]})
    assert taken.status_code == 200 and taken.json()["added"] == 2, taken.text
    assert sorted(db.scalars(select(VirtualNumber.number))) == ["17000000001", "17000000002"]
