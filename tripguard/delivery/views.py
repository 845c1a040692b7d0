"""Who sees what of an order. One table says, for each party and each phase, whether each personal
field is shown in plaintext, masked, or not at all; reads go through the access gate (audited, with
the purpose), and a field the table hides is never opened.

| party | before hand-over | after |
| --- | --- | --- |
| customer | everything of theirs | everything of theirs |
| courier | name and phone masked, the address, notes with numbers masked | nothing |
| merchant (kitchen) | nothing personal: items, pickup code, times | the same |
| support | masks; a field revealed on a stated reason (audited) | the same |
| operator backend | nothing personal (it holds the order already) | the same |

A courier reads only while the dispatch gate allows them (the access gate asks it), unless the operator
gave them this order over the gate, with a reason (`service.ask_gate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.core.errors import NotFound, PermissionDenied
from tripguard.delivery import numbers
from tripguard.delivery.models import MerchantStaff, Order
from tripguard.privacy import access, freetext
from tripguard.security.permissions import Purpose, Role
from tripguard.security.principal import Principal
from tripguard.vault.service import SubjectErased, Vault

Party = Literal["customer", "courier", "merchant", "support", "operator"]
Shown = Literal["plain", "masked"]
FIELDS = ("customer_name", "customer_phone", "address", "notes")
DONE = ("delivered", "cancelled")

# party -> (before hand-over, after): field -> how it is shown; a field not listed is not shown.
VIEWS: dict[str, tuple[dict[str, Shown], dict[str, Shown]]] = {
    "customer": ({f: "plain" for f in FIELDS}, {f: "plain" for f in FIELDS}),
    "courier": ({"customer_name": "masked", "customer_phone": "masked", "address": "plain", "notes": "masked"}, {}),
    "merchant": ({}, {}),
    "support": ({f: "masked" for f in FIELDS}, {f: "masked" for f in FIELDS}),
    "operator": ({}, {}),
}
# What else each party sees of the order.
SEES_PICKUP_CODE = frozenset({"merchant", "operator"})  # the courier reads it from the bag, to prove pickup


@dataclass(frozen=True)
class FieldShown:
    value: str | None
    shown: Shown


@dataclass(frozen=True)
class OrderView:
    party: str
    order: Order
    fields: dict[str, FieldShown]
    pickup_code: str | None
    virtual_number: str | None  # customer <-> courier
    merchant_number: str | None  # merchant <-> courier


def party_of(session: Session, *, principal: Principal, order: Order) -> Party:
    """The part the principal plays in this order; anyone else does not see it exist."""
    if principal.kind == "subject":
        if Role.CUSTOMER in principal.roles and order.customer_id == principal.id:
            return "customer"
        if Role.COURIER in principal.roles and order.courier_id == principal.id:
            return "courier"
    elif principal.kind == "api_key":
        return "operator"
    elif Role.SUPPORT_AGENT in principal.roles:
        return "support"
    elif Role.MERCHANT in principal.roles:
        staff = session.get(MerchantStaff, principal.id)
        if staff is not None and staff.merchant_id == order.merchant_id:
            return "merchant"
    raise NotFound("no such order")


def shown_to(party: str, order: Order) -> dict[str, Shown]:
    before, after = VIEWS[party]
    return after if order.status in DONE else before


def view(session: Session, *, vault: Vault, principal: Principal, order: Order) -> OrderView:
    party = party_of(session, principal=principal, order=order)
    shown = shown_to(party, order)
    columns = [c for c in FIELDS if c in shown]
    fields: dict[str, FieldShown] = {}
    if party == "customer" and columns:
        for column in columns:  # their own data: opened for them, and the read audited
            try:
                fields[column] = FieldShown(access.open_field(vault, session, order, column), "plain")
            except SubjectErased:
                fields[column] = FieldShown(access.ERASED, "masked")
        audit.record(session, actor=principal.actor, action="personal.read", target_type="delivery_orders",
                     target_id=order.id, purpose=Purpose.SUBJECT_REQUEST.value,
                     details={"fields": ",".join(columns), "plaintext": ",".join(columns)})
    elif columns:
        purpose = Purpose.DELIVERY if party == "courier" else Purpose.SUPPORT
        masked = frozenset(c for c in columns if shown[c] == "masked")
        read = access.read_fields(vault, session, principal, order, columns, purpose=purpose, masked=masked,
                                  overridden=numbers.overridden_codes(order) if party == "courier" else None)
        fields = {c: FieldShown(v.value, "plain" if v.plaintext else "masked") for c, v in read.items()}
    return OrderView(party, order, fields, order.pickup_code if party in SEES_PICKUP_CODE else None,
                     _number(session, order, "customer") if party in ("customer", "courier", "support") else None,
                     _number(session, order, "merchant") if party in ("merchant", "courier", "support") else None)


def _number(session: Session, order: Order, party: str) -> str | None:
    binding = numbers.binding_of(session, order_id=order.id, party=party)
    return binding.number if binding is not None and binding.status == "active" else None


def reveal(session: Session, *, vault: Vault, principal: Principal, order: Order, column: str,
           reason: str) -> FieldShown:
    """Support opens one field for a stated reason: plaintext where the catalogue allows the support
    purpose (name, phone, notes), never the address. The reason is sealed; the read is audited."""
    if party_of(session, principal=principal, order=order) != "support" or column not in FIELDS:
        raise PermissionDenied("only support reveals a field of an order")
    refs = freetext.keep(session, vault=vault, subject_id=order.customer_id, text=reason)
    read = access.read_fields(vault, session, principal, order, [column], purpose=Purpose.SUPPORT)[column]
    audit.record(session, actor=principal.actor, action="order.reveal", target_type="delivery_orders",
                 target_id=order.id, purpose=Purpose.SUPPORT.value,
                 outcome="success" if read.plaintext else "denied", details={"field": column, **refs})
    return FieldShown(read.value, "plain" if read.plaintext else "masked")
