"""What the printed label says of the bag and who printed it: item names hidden for the categories the
operator marks sensitive or all of them on its switch ("共 3 件 · 3 items" instead); the three addresses of
issue #26 read back from the served PDF and PNG; each print audited as the system's use of the plaintext."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.delivery.conftest import place_order
from tests.delivery.test_label_addresses import leaked
from tests.delivery.test_orders_api import kitchen
from tripguard.audit.actor import Actor
from tripguard.audit.models import AuditEntry
from tripguard.core.clock import utcnow
from tripguard.core.settings import Settings
from tripguard.delivery.labels import pdf_to_png
from tripguard.privacy import breaches
from tripguard.security.permissions import Role

DPO = Actor("staff", "stf_DPO")
MEDICINE = [{"name": "布洛芬缓释胶囊", "quantity": 2, "category": "medicine"}, {"name": "宫保鸡丁", "quantity": 1}]


def _text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return str(document[0].get_textpage().get_text_range())
    finally:
        document.close()


def _label(client: TestClient, act_as, order_id: str = "O1") -> str:  # type: ignore[no-untyped-def]
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    response = client.get(f"/api/v1/orders/{order_id}/label")
    assert response.status_code == 200, response.text
    return _text(response.content)


def _operator_sets(app: FastAPI, **changes: object) -> None:
    app.state.settings = app.state.settings.model_copy(update=changes)


def test_an_order_holding_a_sensitive_item_names_none_of_its_items(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                    act_as) -> None:
    place_order(client, db, act_as, items=MEDICINE)
    text = _label(client, act_as)
    assert "共 3 件 · 3 items" in text  # the bag's count, in both languages
    assert "布洛芬" not in text and "宫保鸡丁" not in text  # the other item too: it would say "and one more"
    act_as(Role.MERCHANT, id=kitchen(client, db, act_as))  # the kitchen's own print, from the console
    printed = client.get("/console/orders/O1/label?format=pdf")
    assert printed.status_code == 200 and "布洛芬" not in _text(printed.content)
    place_order(client, db, act_as, "O2", items=[{"name": "宫保鸡丁", "quantity": 1, "category": "meal"}])
    assert "宫保鸡丁 × 1" in _label(client, act_as, "O2")  # nothing sensitive: named


def test_the_operator_hides_every_item_name_or_chooses_the_categories(client: TestClient, db: Session,  # type: ignore[no-untyped-def]
                                                                      act_as, app: FastAPI) -> None:
    place_order(client, db, act_as)  # 宫保鸡丁 × 1, 米饭 × 2, no categories
    place_order(client, db, act_as, "O2", items=[{"name": "宫保鸡丁", "quantity": 1}])
    place_order(client, db, act_as, "O3", items=MEDICINE)
    assert "宫保鸡丁" in _label(client, act_as)
    _operator_sets(app, label_hide_item_names=True)
    text = _label(client, act_as)
    assert "共 3 件 · 3 items" in text and "宫保鸡丁" not in text and "米饭" not in text
    assert "共 1 件 · 1 item" in _label(client, act_as, "O2")
    _operator_sets(app, label_hide_item_names=False, label_sensitive_categories=["alcohol"])
    assert "布洛芬缓释胶囊 × 2" in _label(client, act_as, "O3")  # the operator's list replaces the default
    place_order(client, db, act_as, "O4", items=[{"name": "二锅头", "quantity": 1, "category": "alcohol"}])
    assert "二锅头" not in _label(client, act_as, "O4")


def test_an_item_category_is_a_short_lower_case_word(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as)
    body = {"id": "O9", "customer_id": "C9", "merchant_id": "M1", "city": "beijing", "notice_version": "ord-1",
            "customer": {"name": "王小明", "phone": "13800001234"}, "address": "北京市朝阳区建国路88号"}
    good = client.post("/api/v1/orders", json=body | {"items": [{"name": "a", "quantity": 1, "category": "medicine"}]})
    assert good.status_code == 201, good.text
    for category in ("Medicine", "药品", "x" * 33, "", 7):
        answer = client.post("/api/v1/orders", json=body | {"id": "O10", "items": [{"name": "a", "quantity": 1,
                                                                       "category": category}]})
        assert answer.status_code == 422, (category, answer.text)


ISSUE_ADDRESSES = {  # finding 7: each printed its room
    "O1": ("北京市朝阳区建国路88号SOHO现代城5号楼2门501", ["2门", "501"]),
    "O2": ("北京市海淀区中关村大街27号 1201", ["1201"]),
    "O3": ("深圳市南山区科技园SOHO B塔2801", ["2801"]),
    "O4": ("Room 1203, Tower B, 88 Jianguo Rd, Chaoyang District, Beijing 100020", ["1203", "Tower B"]),
}


def test_the_served_label_prints_no_unit_or_room(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    for order_id, (address, _) in ISSUE_ADDRESSES.items():
        place_order(client, db, act_as, order_id, address=address)
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    for order_id, (_, secrets) in ISSUE_ADDRESSES.items():
        pdf = client.get(f"/api/v1/orders/{order_id}/label").content
        text = _text(pdf)
        printed = "".join(text.split("地址 Address", 1)[1].split("内件 Items", 1)[0].split())  # lines wrap
        assert printed and printed != "****", text
        for secret in secrets:
            assert not leaked("".join(secret.split()), printed), (secret, printed)
        png = client.get(f"/api/v1/orders/{order_id}/label?format=png").content
        assert png == pdf_to_png(pdf) and Image.open(io.BytesIO(png)).size[0] > 500  # the same label, drawn


def test_printing_a_label_is_audited_as_machine_use(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    started = utcnow()
    place_order(client, db, act_as)
    act_as(Role.MERCHANT, id=kitchen(client, db, act_as))
    assert client.get("/console/orders/O1/label").status_code == 200
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "personal.read",
                                                AuditEntry.target_id == "O1")).one()
    details = entry.details or ""
    assert entry.purpose == "delivery" and entry.actor_type == "staff"  # on behalf of the kitchen that printed
    for part in ('"use":"machine"', '"for":"label"', '"resolved":"customer_name,customer_phone,address"',
                 '"plaintext":""'):  # opened by the system, shown to nobody in full
        assert part in details, details
    breach = breaches.open_breach(db, actor=DPO, title="kitchen", serious=False, occurred_from=started,
                                  occurred_to=utcnow(), categories=["user.name"], cause="c", harm="h", measures="m",
                                  advice="a", contact="c")
    found = breaches.investigate(db, actor=DPO, breach_id=breach.id, reader_id=entry.actor_id, since=None,
                                 until=None)
    assert "C1" in found.subjects  # a breach investigation of the kitchen finds the customer


@pytest.mark.no_database
def test_the_operator_names_the_sensitive_categories_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"medicine", "adult", "contraception", "pregnancy", "medical_device"} <= set(
        Settings().label_sensitive_categories)  # the default: health, sex and pregnancy
    assert Settings().label_hide_item_names is False
    monkeypatch.setenv("TRIPGUARD_LABEL_SENSITIVE_CATEGORIES", " Medicine, alcohol ,")
    monkeypatch.setenv("TRIPGUARD_LABEL_HIDE_ITEM_NAMES", "true")
    assert Settings().label_sensitive_categories == ["medicine", "alcohol"] and Settings().label_hide_item_names
    monkeypatch.setenv("TRIPGUARD_LABEL_SENSITIVE_CATEGORIES", "药品")
    with pytest.raises(ValidationError, match="not item categories"):
        Settings()
