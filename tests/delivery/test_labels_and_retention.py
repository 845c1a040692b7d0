"""The privacy label read back from its PDF and PNG; after the retention window an order shows no
personal data anywhere: database, API, label, logs, and a backup taken afterwards."""

from __future__ import annotations

import io
from datetime import timedelta

import pypdfium2 as pdfium
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.delivery.conftest import place_order
from tripguard.audit.actor import SYSTEM
from tripguard.core.clock import utcnow
from tripguard.delivery.labels import pdf_to_png, qr_payload
from tripguard.delivery.models import Binding, Order
from tripguard.delivery.retention import ERASED_COLUMNS
from tripguard.privacy.retention import run_retention
from tripguard.security.permissions import Role


def _text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return document[0].get_textpage().get_text_range()
    finally:
        document.close()


def test_the_label_shows_what_the_bag_may_carry(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    place_order(client, db, act_as, courier_id="R1")
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    pdf = client.get("/api/v1/orders/O1/label")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert b"/FontFile2" in pdf.content  # the Chinese font travels inside the file
    text = _text(pdf.content)
    order = db.get(Order, "O1")
    assert order is not None
    assert order.pickup_code in text and "王**" in text and "1234" in text  # name masked, last 4 digits
    assert "建国路88号" in text and "5号楼" in text  # down to the building …
    for secret in ("3单元", "1201", "王小明", "13800001234", "138", "13912345678"):  # … and no further
        assert secret not in text, secret
    assert "宫保鸡丁" in text
    png = client.get("/api/v1/orders/O1/label?format=png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(png.content))
    assert 560 < image.size[0] < 572 and 845 < image.size[1] < 856  # 100 x 150 mm at 2x (144 dpi)
    assert png.content == pdf_to_png(pdf.content)  # the PNG is the PDF, rasterised
    assert qr_payload(order) == f"TG1:O1:{order.pickup_code}"
    assert client.get("/api/v1/orders/O1/label?format=doc").status_code == 422
    act_as(Role.COURIER, kind="subject", id="R1")
    assert client.get("/api/v1/orders/O1/label").status_code == 403


def test_after_the_window_the_order_holds_no_personal_data(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                                          session_factory: sessionmaker[Session]) -> None:
    place_order(client, db, act_as, courier_id="R1")
    place_order(client, db, act_as, "O2", "C2")  # still open: kept
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    client.post("/api/v1/orders/O1/status", json={"status": "cancelled"})
    settings = app.state.settings
    run_retention(session_factory, vault=app.state.vault, settings=settings, dry_run=False, actor=SYSTEM)
    db.expire_all()
    assert db.get(Order, "O1").customer_name is not None  # type: ignore[union-attr]  # inside the window
    db.execute(update(Order).where(Order.id == "O1").values(
        completed_at=utcnow() - timedelta(hours=settings.retention_delivery_contact_hours, minutes=1)))
    db.commit()
    report = run_retention(session_factory, vault=app.state.vault, settings=settings, dry_run=False,
                           actor=SYSTEM).report
    assert report["delivery_orders"]["erased"] == 1  # type: ignore[index]
    db.expire_all()
    order = db.get(Order, "O1")
    assert order is not None and order.contact_erased_at is not None
    assert all(getattr(order, column) is None for column in ERASED_COLUMNS)  # database
    assert db.scalars(select(Binding)).one().courier_phone is None
    assert order.items and order.city == "beijing" and order.status == "cancelled"  # the anonymous record
    assert db.get(Order, "O2").customer_name is not None  # type: ignore[union-attr]
    act_as(Role.CUSTOMER, kind="subject", id="C1")
    seen = client.get("/api/v1/orders/O1").json()
    assert all(v["value"] is None for v in seen["fields"].values())  # API
    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    text = _text(client.get("/api/v1/orders/O1/label").content)
    assert "王" not in text and "1234" not in text and "建国路" not in text  # label


PARALLEL = """
import sys
from concurrent.futures import ThreadPoolExecutor
from tripguard.delivery import labels
from tripguard.delivery.models import Order
streets = "建国路朝阳门外大街东三环中路光华路金桂园长安街复兴门内大街西单北大街"
def one(n):
    order = Order(id=f"O{n}", pickup_code=f"{n:04d}")
    out = labels.render(order, streets[(n * 3) % 30] + "**", f"{n:04d}", f"北京市{streets[n % 25:n % 25 + 5]}{n}号****",
                        items=[f"{streets[n % 20:n % 20 + 3]} × {n}"], fmt="png" if n % 2 else "pdf")
    assert out.startswith(b"\\x89PNG" if n % 2 else b"%PDF"), n
with ThreadPoolExecutor(8) as pool:
    list(pool.map(one, range(300)))
"""


def test_labels_rendered_in_parallel_from_a_cold_start_are_all_whole() -> None:
    """The server renders labels in its thread pool, the first ones all at once. ReportLab (its font
    registry and subsetting) and PDFium are not thread-safe: without the rendering lock a server under
    eight parallel label requests answered 500 (KeyError) or dropped the connection. A fresh process, so
    the font is registered under the race too."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", PARALLEL], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_an_orders_personal_data_never_reaches_the_logs(client: TestClient, db: Session, act_as, app: FastAPI,  # type: ignore[no-untyped-def]
                                                        session_factory: sessionmaker[Session],
                                                        caplog) -> None:
    import logging

    from tripguard.core.logging import JsonFormatter

    logger = logging.getLogger("tripguard")
    logger.addHandler(caplog.handler)  # ours does not propagate to the root
    try:
        with caplog.at_level("DEBUG", logger="tripguard"):
            place_order(client, db, act_as, courier_id="R1")
            for role, subject in ((Role.CUSTOMER, "C1"), (Role.COURIER, "R1")):
                act_as(role, kind="subject", id=subject)
                client.get("/api/v1/orders/O1")
            act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
            client.get("/api/v1/orders/O1/label")
            client.post("/api/v1/telephony/route", json={"number": "17000000001", "caller": "13800001234"})
            client.post("/api/v1/orders", json={"id": "O1", "customer": {"name": "王小明"}})  # a 422
            client.post("/api/v1/orders/O1/status", json={"status": "cancelled"})
            db.execute(update(Order).values(completed_at=utcnow() - timedelta(days=4)))
            db.commit()
            run_retention(session_factory, vault=app.state.vault, settings=app.state.settings, dry_run=False,
                          actor=SYSTEM)
    finally:
        logger.removeHandler(caplog.handler)
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(record) for record in caplog.records)
    assert "/api/v1/orders" in logged  # the requests were logged …
    for secret in ("王小明", "13800001234", "13700009999", "建国路", "1201", "13912345678"):  # … without their data
        assert secret not in logged, secret
