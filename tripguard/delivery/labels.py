"""The privacy label (隐私面单) for the bag, as GB/T 41833-2022 asks of a waybill: the name hides at least
one character, the phone at least six digits (the label shows only the last four), the address stops
before its unit, household and room. It carries the pickup code and a QR code the courier's app scans.

A PDF (100 × 150 mm) with its Chinese in an embedded font subset (`core.pdf`), so any viewer shows it; the PNG is that PDF rasterised (PDFium), so both say the same thing."""

from __future__ import annotations

import io
import re

import pypdfium2 as pdfium
import segno
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.core.pdf import RENDERING, font
from tripguard.delivery.models import Order
from tripguard.privacy import access
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.vault import masking
from tripguard.vault.service import SubjectErased, Vault

SIZE = (100 * mm, 150 * mm)
_CJK = re.compile(r"[\u3400-\u9fff]")
# Where the part inside a building starts: 3单元, 12层, 1201室, 5户, 2-1201.
_INSIDE = re.compile(r"(\d+|[A-Za-z]|[一二三四五六七八九十]+)\s*(单元|层|室|户|房)|\d+\s*-\s*\d+")


def label_address(address: str) -> str:
    """The address down to its building: no unit, household or room (GB/T 41833-2022)."""
    if not _CJK.search(address):
        return masking.mask_address(address)
    match = _INSIDE.search(address)
    return address[:match.start()].rstrip(" ,，") + "****" if match else address


def last_four(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[-4:] if len(digits) >= 4 else ""


def qr_payload(order: Order) -> str:
    """What the courier's app reads: the order and its pickup code (scanning the bag proves pickup)."""
    return f"TG1:{order.id}:{order.pickup_code}"


def _fields(session: Session, vault: Vault, principal: Principal, order: Order) -> tuple[str, str, str]:
    """The masked recipient lines. The plaintext is opened only to mask it here; the read is audited."""
    access.check_clearance(session, principal)
    if order.contact_erased_at is not None:
        return "—", "—", "—"
    try:
        name = access.open_field(vault, session, order, "customer_name") or ""
        phone = access.open_field(vault, session, order, "customer_phone") or ""
        address = access.open_field(vault, session, order, "address") or ""
    except SubjectErased:
        return "—", "—", "—"
    audit.record(session, actor=principal.actor, action="personal.read", target_type="delivery_orders",
                 target_id=order.id, purpose=Purpose.DELIVERY.value,
                 details={"fields": "customer_name,customer_phone,address", "plaintext": "", "for": "label"})
    return masking.mask_name(name) if name else "—", last_four(phone), label_address(address) if address else "—"


def render_pdf(order: Order, name: str, phone_tail: str, address: str) -> bytes:
    face = font()
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=SIZE, pageCompression=1)
    page.setTitle(f"TripGuard {order.id}")
    width, height = SIZE
    left, top = 7 * mm, height - 10 * mm
    page.setFont(face, 9)
    page.drawString(left, top, f"TripGuard · {order.id}")
    page.setFont(face, 11)
    page.drawString(left, top - 9 * mm, "取餐码 Pickup code")
    page.setFont(face, 34)
    page.drawString(left, top - 22 * mm, order.pickup_code)
    _draw_qr(page, qr_payload(order), x=width - 41 * mm, y=top - 30 * mm, size=34 * mm)
    y = top - 44 * mm
    page.line(left, y + 4 * mm, width - left, y + 4 * mm)
    for caption, value in (("收件人 Recipient", name), ("电话尾号 Phone ends", phone_tail or "—"),
                           ("地址 Address", address)):
        page.setFont(face, 8)
        page.drawString(left, y, caption)
        page.setFont(face, 13)
        for line in _wrap(value, 22):
            y -= 6 * mm
            page.drawString(left, y, line)
        y -= 7 * mm
    page.line(left, y + 4 * mm, width - left, y + 4 * mm)
    page.setFont(face, 8)
    page.drawString(left, y, "内件 Items")
    page.setFont(face, 11)
    for item in order.items[:6]:
        y -= 5.5 * mm
        page.drawString(left, y, f"{item.get('name', '')} × {item.get('quantity', 1)}")
    if len(order.items) > 6:
        y -= 5.5 * mm
        page.drawString(left, y, f"… +{len(order.items) - 6}")
    page.showPage()
    page.save()
    return buffer.getvalue()


def _draw_qr(page: canvas.Canvas, payload: str, *, x: float, y: float, size: float) -> None:
    """The QR code as one filled path of its dark modules (a shape per module is ten times slower)."""
    modules = segno.make(payload, error="m").matrix
    cell = size / len(modules)
    path = page.beginPath()
    for row, line in enumerate(modules):
        for column, dark in enumerate(line):
            if dark:
                path.rect(x + column * cell, y + (len(modules) - 1 - row) * cell, cell, cell)
    page.drawPath(path, stroke=0, fill=1)


def _wrap(text: str, width: int) -> list[str]:
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def pdf_to_png(pdf: bytes, *, scale: float = 2.0) -> bytes:
    document = pdfium.PdfDocument(pdf)
    try:
        image = document[0].render(scale=scale).to_pil()
    finally:
        document.close()
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=3)
    return out.getvalue()


# PDFium is not thread-safe, nor is ReportLab's per-document font subsetting documented to be: one label
# renders at a time (the work holds the GIL anyway). Seen without it: a 500 with eight requests at once.


def render(order: Order, name: str, phone_tail: str, address: str, *, fmt: str) -> bytes:
    with RENDERING:
        pdf = render_pdf(order, name, phone_tail, address)
        return pdf if fmt == "pdf" else pdf_to_png(pdf)


def label_for(session: Session, vault: Vault, principal: Principal, order: Order, *, fmt: str) -> bytes:
    name, phone_tail, address = _fields(session, vault, principal, order)
    return render(order, name, phone_tail, address, fmt=fmt)
