"""The privacy label (隐私面单) for the bag, as GB/T 41833-2022 asks of a waybill: the name hides at least
one character, the phone at least six digits (the label shows only the last four), the address stops
at its street, road number, named place and marked building (`vault.addresses.street_level`: no unit,
floor or room, in any form). It carries the pickup code and a QR code the courier's app scans. Items are
named unless the operator hides them (`TRIPGUARD_LABEL_HIDE_ITEM_NAMES`) or one of them is of a category
it marks sensitive (`TRIPGUARD_LABEL_SENSITIVE_CATEGORIES`): then the label says only how many.

A PDF (100 × 150 mm) with its Chinese in an embedded font subset (`core.pdf`), so any viewer shows it;
the PNG is that PDF rasterised (PDFium), so both say the same thing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.core.errors import NotFound
from tripguard.core.i18n import translations_for
from tripguard.core.pdf import RENDERING
from tripguard.core.settings import Settings
from tripguard.delivery import label_render, service, views
from tripguard.delivery.label_render import SIZE, LabelText, pdf_to_png
from tripguard.delivery.models import Order
from tripguard.privacy import access
from tripguard.security.permissions import Purpose
from tripguard.security.principal import Principal
from tripguard.vault import addresses, masking
from tripguard.vault.service import SubjectErased, Vault

__all__ = ["SIZE", "LabelText", "pdf_to_png"]  # the rendering itself is in `label_render`
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


def text_of(order: Order, name: str, phone_tail: str, address: str, items: list[str]) -> LabelText:
    return LabelText(order_id=order.id, pickup_code=order.pickup_code, qr=qr_payload(order), name=name,
                     phone_tail=phone_tail, address=address, items=tuple(items))


def render_pdf(order: Order, name: str, phone_tail: str, address: str, items: list[str]) -> bytes:
    with RENDERING:
        return label_render.render_pdf(text_of(order, name, phone_tail, address, items))


def render(order: Order, name: str, phone_tail: str, address: str, *, items: list[str], fmt: str) -> bytes:
    """In this process (one label at a time): the API's labels render in the pool (`label_text`, `RenderPool`)."""
    with RENDERING:
        return label_render.render(text_of(order, name, phone_tail, address, items), fmt)


def label_text(session: Session, *, principal: Principal, order_id: str, vault: Vault, policy: ItemPolicy,
               party: str | None = None) -> LabelText:
    """What the label of the order says, masked (the plaintext opened only to mask it, audited), for a renderer
    in another process. `party`: the principal must take this part in the order (else 404)."""
    order = service.get(session, order_id=order_id)
    found = views.party_of(session, principal=principal, order=order)  # nobody's part in it: 404
    if party is not None and found != party:
        raise NotFound("no such order")
    name, phone_tail, address = _fields(session, vault, principal, order)
    return text_of(order, name, phone_tail, address, item_lines(order.items, policy))


def label_for(session: Session, *, vault: Vault, principal: Principal, order: Order, policy: ItemPolicy,
              fmt: str) -> bytes:
    name, phone_tail, address = _fields(session, vault, principal, order)
    return render(order, name, phone_tail, address, items=item_lines(order.items, policy), fmt=fmt)
