"""The privacy label (隐私面单) for the bag, as GB/T 41833-2022 asks of a waybill: the name hides at least
one character, the phone at least six digits (the label shows only the last four), the address stops
at its street, road number, named place and marked building (`vault.addresses.street_level`: no unit,
floor or room, in any form). It carries the pickup code and a QR code the courier's app scans. Items are
named unless the operator hides them (`TRIPGUARD_LABEL_HIDE_ITEM_NAMES`) or one of them is of a category
it marks sensitive (`TRIPGUARD_LABEL_SENSITIVE_CATEGORIES`): then the label says only how many.

A PDF (100 × 150 mm) with its Chinese in an embedded font subset (`core.pdf`), so any viewer shows it;
the PNG is that PDF rasterised (PDFium), so both say the same thing."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pypdfium2 as pdfium
import segno
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.core.i18n import translations_for
from tripguard.core.pdf import RENDERING, font
from tripguard.core.settings import Settings
from tripguard.delivery.models import Order
from tripguard.privacy import access
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.vault import addresses, masking
from tripguard.vault.service import SubjectErased, Vault

SIZE = (100 * mm, 150 * mm)
SHOWN_ITEMS = 6


@dataclass(frozen=True)
class ItemPolicy:
    """Which item names a label may print (from the settings)."""

    hide_all: bool = False
    sensitive: frozenset[str] = frozenset()

    @classmethod
    def of(cls, settings: Settings) -> ItemPolicy:
        return cls(settings.label_hide_item_names, frozenset(settings.label_sensitive_categories))

    def hides(self, items: list[dict[str, object]]) -> bool:
        # One sensitive item hides every name: "宫保鸡丁, +1 hidden" would still say the bag holds one.
        return self.hide_all or any(str(item.get("category") or "").lower() in self.sensitive for item in items)


def label_address(address: str) -> str:
    """The address down to its street and building: no unit, floor, household or room (GB/T 41833-2022)."""
    return addresses.street_level(address)


def item_lines(items: list[dict[str, object]], policy: ItemPolicy) -> list[str]:
    """What the label says of the bag's contents: each item and its count, or only how many in all."""
    if policy.hides(items):
        return [count_line(sum(_quantity(item) for item in items))]
    lines = [f"{item.get('name', '')} × {_quantity(item)}" for item in items[:SHOWN_ITEMS]]
    return lines + ([f"… +{len(items) - SHOWN_ITEMS}"] if len(items) > SHOWN_ITEMS else [])


def _quantity(item: dict[str, object]) -> int:
    quantity = item.get("quantity", 1)
    return quantity if isinstance(quantity, int) else 1


def count_line(count: int) -> str:
    """共 3 件 · 3 items: in both languages, like the label's captions."""
    return " · ".join(translations_for(locale).ngettext("%(num)s item", "%(num)s items", count) % {"num": count}
                      for locale in ("zh_CN", "en"))


LABEL_FIELDS = "customer_name,customer_phone,address"


def last_four(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return digits[-4:] if len(digits) >= 4 else ""


def qr_payload(order: Order) -> str:
    """What the courier's app reads: the order and its pickup code (scanning the bag proves pickup)."""
    return f"TG1:{order.id}:{order.pickup_code}"


def _fields(session: Session, vault: Vault, principal: Principal, order: Order) -> tuple[str, str, str]:
    """The masked recipient lines. The system opens the plaintext only to mask it here, and says so in the
    audit log: machine use, for the label, with its purpose, on behalf of whoever prints it."""
    access.check_clearance(session, principal=principal)
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
                 details={"fields": LABEL_FIELDS, "plaintext": "", "resolved": LABEL_FIELDS, "use": "machine",
                          "for": "label"})
    return masking.mask_name(name) if name else "—", last_four(phone), label_address(address) if address else "—"


def render_pdf(order: Order, name: str, phone_tail: str, address: str, items: list[str]) -> bytes:
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
    for line in items:
        y -= 5.5 * mm
        page.drawString(left, y, line)
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


def render(order: Order, name: str, phone_tail: str, address: str, *, items: list[str], fmt: str) -> bytes:
    with RENDERING:
        pdf = render_pdf(order, name, phone_tail, address, items)
        return pdf if fmt == "pdf" else pdf_to_png(pdf)


def label_for(session: Session, *, vault: Vault, principal: Principal, order: Order, policy: ItemPolicy,
              fmt: str) -> bytes:
    name, phone_tail, address = _fields(session, vault, principal, order)
    return render(order, name, phone_tail, address, items=item_lines(order.items, policy), fmt=fmt)
