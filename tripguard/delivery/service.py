"""Orders from intake to hand-over: only the fields an order needs, sealed under the customer's key;
the courier assigned (and bound to the customer through a virtual number); pickup proved by the code
on the bag; hand-over by a 4-digit code sent to the customer, locked after 5 tries, then photo proof.

Both codes go through the one code check (`security.codes`): each try is counted atomically and
committed on its own, so parallel guesses all count and a failed request cannot undo its count.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.audit.actor import Actor
from tripguard.core import pictures
from tripguard.core.clock import utcnow
from tripguard.core.errors import Conflict, DomainError, FieldProblem, InvalidInput, NotFound, WorkerIneligible
from tripguard.core.i18n import N_
from tripguard.delivery import numbers, views
from tripguard.delivery.models import MerchantStaff, Order
from tripguard.notify import service as notify
from tripguard.privacy import access, freetext
from tripguard.privacy.service import Seen, published_notice, register, register_many
from tripguard.screening import gate
from tripguard.security.codes import CodeCheck, check_code
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.security.service import get_staff
from tripguard.vault.service import SubjectErased, Vault

CODE_TRIES = 5
HANDOVER_CODE_LIFETIME = timedelta(hours=6)
STATUSES = ("accepted", "prepared", "picked_up", "delivered", "cancelled", "exception")
OPEN = ("accepted", "prepared", "picked_up", "exception")
EXCEPTIONS = ("wrong_address", "lost_meal", "unreachable", "damaged", "other")


class WrongCode(DomainError):
    status, type, title = 422, "/problems/wrong-code", "Wrong code"


class CodeLocked(DomainError):
    status, type, title = 423, "/problems/code-locked", "Locked"


@dataclass(frozen=True)
class Intake:
    order_id: str
    customer_id: str
    merchant_id: str
    city: str
    notice_version: str
    name: str
    phone: str
    address: str
    items: list[dict[str, object]]
    notes: str | None = None
    locale: str = "zh_CN"
    merchant_phone: str | None = None


def get(session: Session, *, order_id: str, for_update: bool = False) -> Order:
    """`for_update`: the order's row locked until the transaction ends (PostgreSQL), so changes to its courier
    and its number bindings are made one at a time."""
    order = session.get(Order, order_id, with_for_update=for_update or None, populate_existing=for_update)
    if order is None:
        raise NotFound("no such order")
    return order


def _code_hash(secret_key: str, order_id: str, purpose: str, code: str) -> str:
    return hmac.new(secret_key.encode(), f"{purpose}:{order_id}:{code}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Taking:
    """One order request of a group (`take_orders`): who sent it, what, and its request's id (for its audit)."""

    actor: Actor
    intake: Intake
    request_id: str | None = None


Taken = tuple[Order, bool]  # the order, and whether this request stored it
SEALED = ("customer_name", "customer_phone", "address", "notes", "merchant_phone")


def take_order(session: Session, *, vault: Vault, actor: Actor, intake: Intake) -> Taken:
    """Store a new order (the same id again is the same order: nothing changes)."""
    outcome = take_orders(session, vault=vault, takings=[Taking(actor, intake)])[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def take_orders(session: Session, *, vault: Vault, takings: list[Taking]) -> list[Taken | Exception]:
    """Many orders in one transaction, each with its own outcome: its order (new or the same id again), or its
    own error (another customer's id, no such notice, an erased customer), which leaves the others be. A
    few queries for the whole group: the orders and notices known, the people registered, their data keys
    (each customer keeps their own: erasing one erases only them). An error of another kind (the database)
    raises: nothing of the group is stored."""
    ids = sorted({t.intake.order_id for t in takings})
    known = {o.id: o for start in range(0, len(ids), 500)
             for o in session.scalars(select(Order).where(Order.id.in_(ids[start:start + 500])))}
    notices = {v: published_notice(session, version=v) for v in sorted({t.intake.notice_version for t in takings})}
    outcomes: list[Taken | Exception | None] = [None] * len(takings)
    creating: dict[str, tuple[int, Order, dict[str, str | None]]] = {}
    for index, taking in enumerate(takings):
        intake = taking.intake
        if intake.order_id in known or intake.order_id in creating:
            continue  # the same id again: answered once the first is settled
        if notices[intake.notice_version] is None:
            outcomes[index] = InvalidInput(errors=[FieldProblem(
                field="notice_version", message=f"no published notice {intake.notice_version!r}")])
            continue
        order, values = _new_order(intake)
        creating[intake.order_id] = (index, order, values)
    subjects = {index: set(access.subjects_of(order, values).values()) for index, order, values in creating.values()}
    erased = vault.erased_among(session, sorted(set().union(*subjects.values())))
    for order_id, (index, _, _) in list(creating.items()):
        if subjects[index] & erased:
            outcomes[index] = SubjectErased("this subject was erased; nothing more is stored about them")
            del creating[order_id]
    # The customer is a data subject from their first order (the merchant, by its phone's write).
    register_many(session, source="order", people=[
        Seen(takings[index].intake.customer_id, "customer", takings[index].intake.notice_version)
        for index, _, _ in creating.values()])
    access.write_fields(vault, session, [(order, values) for _, order, values in creating.values()])
    session.add_all([order for _, order, _ in creating.values()])
    for index, order, _ in creating.values():
        taking = takings[index]
        entry = audit.record(session, actor=taking.actor, action="order.take", target_type="delivery_orders",
                             target_id=order.id, details={"notice": taking.intake.notice_version,
                                                          "items": len(taking.intake.items)})
        entry.request_id = taking.request_id if taking.request_id is not None else entry.request_id
        outcomes[index] = (order, True)
    session.flush()
    firsts = {order_id: outcomes[index] for order_id, (index, _, _) in creating.items()}
    return [outcome if outcome is not None else _again(takings[index].intake, known, firsts)
            for index, outcome in enumerate(outcomes)]


def _new_order(intake: Intake) -> tuple[Order, dict[str, str | None]]:
    now = utcnow()
    order = Order(id=intake.order_id, customer_id=intake.customer_id, merchant_id=intake.merchant_id,
                  city=intake.city, status="accepted", items=intake.items, notice_version=intake.notice_version,
                  locale=intake.locale,
                  pickup_code=f"{secrets.randbelow(10_000):04d}", pickup_attempts=0, handover_attempts=0,
                  created_at=now, updated_at=now)
    values = dict(zip(SEALED, (intake.name, intake.phone, intake.address, intake.notes, intake.merchant_phone),
                      strict=True))
    return order, values


def _again(intake: Intake, known: dict[str, Order], firsts: dict[str, Taken | Exception | None]) -> Taken | Exception:
    """A request for an order id already stored, or stored by an earlier request of the group."""
    first = firsts.get(intake.order_id)
    existing = known.get(intake.order_id) or (first[0] if isinstance(first, tuple) else None)
    if existing is None:  # the group's first request for this id failed: so does its retry
        return first if isinstance(first, Exception) else NotFound("no such order")
    if existing.customer_id != intake.customer_id or existing.merchant_id != intake.merchant_id:
        return Conflict(N_("An order with this id exists for another customer or merchant."))
    return existing, False


def _move(session: Session, order: Order, status: str, actor: Actor, *, grace: timedelta = timedelta(0),
          **details: str) -> None:
    """`grace`: how long the order's virtual number still bridges once it completes."""
    previous = order.status
    order.status, order.updated_at = status, utcnow()
    if status in ("delivered", "cancelled"):
        order.completed_at = order.updated_at
        numbers.release_for(session, order_id=order.id, completed_at=order.completed_at,
                            grace=grace)
    audit.record(session, actor=actor, action=f"order.{status}", target_type="delivery_orders", target_id=order.id,
                 details={"previous": previous, **details})


def mark(session: Session, *, actor: Actor, order_id: str, status: str, grace: timedelta,
         exception: str | None = None) -> Order:
    """The operator or the merchant moves an order on: prepared, cancelled, or an exception."""
    order = get(session, order_id=order_id)
    allowed = {"prepared": ("accepted",), "cancelled": OPEN, "exception": OPEN}
    if status not in allowed or order.status not in allowed[status]:
        raise Conflict(N_("The order cannot move to that state from where it is."))
    details: dict[str, str] = {}
    if status == "exception":
        order.exception = details["exception"] = exception or "other"
    _move(session, order, status, actor, grace=grace, **details)
    return order


def assign(session: Session, *, vault: Vault, actor: Actor, order_id: str, courier_id: str, courier_phone: str,
           on_exhausted: numbers.OnExhausted, override_reason: str | None = None) -> Order:
    """The courier who takes the order; customer and courier are bound through a virtual number. Only a
    courier the dispatch gate allows, unless the operator overrides with a reason (`ask_gate`). The order
    is locked first: parallel assignments run one after another, so an order has one live binding per party
    and a replaced courier's binding is always ended (its line dead), whichever assignment wins."""
    order = get(session, order_id=order_id, for_update=True)
    if order.status not in ("accepted", "prepared"):
        raise Conflict(N_("The order cannot move to that state from where it is."))
    if order.courier_id == courier_id:
        return order
    overridden = ask_gate(session, vault=vault, actor=actor, order=order, courier_id=courier_id,
                          reason=override_reason)
    numbers.release_for(session, order_id=order.id, completed_at=utcnow(), grace=timedelta(0))  # a courier replaced
    order.courier_id, order.updated_at = courier_id, utcnow()
    order.courier_override_at = None if overridden is None else utcnow()
    order.courier_override_blockers = overridden
    register(session, subject_id=courier_id, kind="courier", source="order")
    numbers.bind(session, vault=vault, order=order, courier_phone=courier_phone, party="customer",
                 on_exhausted=on_exhausted)
    if order.merchant_phone is not None:
        numbers.bind(session, vault=vault, order=order, courier_phone=courier_phone,
                     party="merchant",
                     on_exhausted=on_exhausted)
    audit.record(session, actor=actor, action="order.assign", target_type="delivery_orders", target_id=order.id,
                 details={"courier": courier_id, **({"override": "gate"} if overridden else {})})
    return order


def ask_gate(session: Session, *, vault: Vault, actor: Actor, order: Order, courier_id: str,
             reason: str | None) -> list[str] | None:
    """The dispatch gate's answer for this courier (`screening.gate`, the one definition of "may work"):
    a refusal is a 409 naming the blockers. With a reason, the operator overrides it: the reason is
    sealed, the override audited (`order.assign_override`, which supervision reports) and the codes it
    overrode returned (the order's `courier_override_blockers`: the only ones it lets the courier past)."""
    result = gate.refusal(session, worker_id=courier_id, role="courier")
    if result.eligible:
        return None
    blockers = gate.blockers_json(result)
    if reason is None:
        raise WorkerIneligible(N_("The dispatch gate refuses this courier; give the order to another, or "
                                  "override with a reason."),
                               extensions={"worker_id": courier_id, "blockers": blockers})
    refs = freetext.keep(session, vault=vault, subject_id=courier_id, text=reason)
    audit.record(session, actor=actor, action="order.assign_override", target_type="delivery_orders",
                 target_id=order.id, outcome="success",
                 details={"courier": courier_id, "blockers": ",".join(result.codes), **refs})
    return result.codes


def pick_up(session: Session, *, vault: Vault, secret_key: str, courier: Actor, order_id: str, code: str) -> Order:
    """The courier proves they hold the right bag (the code on its label); the customer is then sent the
    hand-over code."""
    order = _couriers(session, courier, order_id)
    if order.status not in ("accepted", "prepared"):
        raise Conflict(N_("The order cannot move to that state from where it is."))
    outcome = check_code(session, model=Order, row_id=order.id, attempts=Order.pickup_attempts, limit=CODE_TRIES,
                         stored_hash=_code_hash(secret_key, order.id, "pickup", order.pickup_code),
                         expires_at=utcnow() + timedelta(minutes=1),
                         offered_hash=_code_hash(secret_key, order.id, "pickup", code),
                         on_failure=lambda o: _failed(session, courier, order.id, "pickup", o))
    _raise_for(outcome)
    order.picked_up_at = utcnow()
    _move(session, order, "picked_up", courier)
    _send_handover_code(session, vault, secret_key, order)
    return order


def _send_handover_code(session: Session, vault: Vault, secret_key: str, order: Order) -> None:
    code = f"{secrets.randbelow(10_000):04d}"
    order.handover_code_hash = _code_hash(secret_key, order.id, "handover", code)
    order.handover_expires_at = utcnow() + HANDOVER_CODE_LIFETIME
    order.handover_attempts = 0
    phone = access.open_field(vault, session, order, "customer_phone")
    if phone:
        notify.enqueue_to_person(session, vault=vault, subject_id=order.customer_id, channel="sms",
                                 to=phone,
                                 template="handover_code", locale=order.locale, params={"code": code},
                                 idempotency_key=f"handover:{order.id}:{order.handover_expires_at.isoformat()}")


def hand_over(session: Session, *, secret_key: str, courier: Actor, order_id: str, code: str,
              grace: timedelta) -> Order:
    """The code the customer was sent, typed into the courier's app: 5 tries, then photo proof."""
    order = _couriers(session, courier, order_id)
    if order.status != "picked_up":
        raise Conflict(N_("The order cannot move to that state from where it is."))
    outcome = check_code(session, model=Order, row_id=order.id, attempts=Order.handover_attempts, limit=CODE_TRIES,
                         stored_hash=order.handover_code_hash, expires_at=order.handover_expires_at,
                         offered_hash=_code_hash(secret_key, order.id, "handover", code),
                         on_failure=lambda o: _failed(session, courier, order.id, "handover", o))
    _raise_for(outcome)
    order.handover_method = "code"
    _move(session, order, "delivered", courier, grace=grace, method="code")
    return order


def hand_over_with_photo(session: Session, *, vault: Vault, courier: Actor, order_id: str, photo: str,
                         grace: timedelta) -> Order:
    """Only once the code is locked (5 wrong tries) or expired: a photo of the hand-over, sealed. The photo
    is decoded and checked first: anything but a whole JPEG or PNG is refused and the order stays as it was."""
    pictures.decode(photo, field="photo")
    order = _couriers(session, courier, order_id)
    if order.status != "picked_up":
        raise Conflict(N_("The order cannot move to that state from where it is."))
    expired = order.handover_expires_at is None or order.handover_expires_at < utcnow()
    if order.handover_attempts < CODE_TRIES and not expired:
        raise Conflict(N_("Photo proof is for when the code cannot be used: ask the customer for the code."))
    access.write_field(vault, session, order, "proof_photo", photo)
    order.handover_method = "photo"
    _move(session, order, "delivered", courier, grace=grace, method="photo")
    return order


def _couriers(session: Session, courier: Actor, order_id: str) -> Order:
    """The courier's own order, for something they do on it (pickup, hand-over, photo): asked of the access
    gate as a read of it is (`access.check_worker`), so a courier the gate now refuses neither reads the
    order nor moves it on (nor has the customer sent the hand-over code); an order given to them over the
    gate with a reason (`ask_gate`) lets them past only the blockers overridden. 403 with the blockers."""
    order = get(session, order_id=order_id)
    if order.courier_id != courier.id:
        raise NotFound("no such order")  # another courier's order does not exist for them
    access.check_worker(session, worker_id=courier.id, overridden=numbers.overridden_codes(order))
    return order


def _failed(session: Session, actor: Actor, order_id: str, which: str, outcome: CodeCheck) -> None:
    audit.record(session, actor=actor, action=f"order.{which}_code", target_type="delivery_orders",
                 target_id=order_id, outcome="denied", details={"outcome": outcome.value})


def _raise_for(outcome: CodeCheck) -> None:
    if outcome is CodeCheck.MISMATCH:
        raise WrongCode(N_("That code is not right."))
    if outcome is CodeCheck.EXHAUSTED:
        raise CodeLocked(N_("Five wrong codes: the code is locked. Use photo proof."))
    if outcome is CodeCheck.EXPIRED:
        raise CodeLocked(N_("The code has expired. Use photo proof."))


def own_order(session: Session, *, principal: Principal, order_id: str) -> Order:
    """An order the person took part in (its customer, or its courier): asked by other domains (a complaint,
    a rating). Whose part it is, is `views.party_of`'s one answer; anyone else's order, or none, is 404."""
    order = session.get(Order, order_id)
    if order is None or principal.kind != "subject" or \
            views.party_of(session, principal=principal, order=order) not in ("customer",
                                                                              "courier"):
        raise NotFound("no such order of yours")
    return order


def visible_orders(session: Session, *, principal: Principal) -> Select[Any]:
    """The orders the console lists to this principal: support every order, a kitchen account its merchant's,
    anyone else none."""
    statement = select(Order)
    if Role.SUPPORT_AGENT in principal.roles:
        return statement
    link = session.get(MerchantStaff, principal.id)
    if Role.MERCHANT in principal.roles and link is not None:
        return statement.where(Order.merchant_id == link.merchant_id)
    return statement.where(Order.id.is_(None))


def parties(session: Session, *, order_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    """Each named order's customer and courier: an SOS naming an order must come from one of them."""
    if not order_ids:
        return {}
    rows = session.execute(select(Order.id, Order.customer_id, Order.courier_id).where(Order.id.in_(order_ids)))
    return {order_id: (customer, courier) for order_id, customer, courier in rows}


def people_with_orders(*, completed_since: datetime | None = None) -> list[Select[Any]]:
    """Customers and couriers of orders in flight (not delivered or cancelled yet), and of orders completed
    since `completed_since`, as subqueries: retention leaves them be meanwhile."""
    recent = Order.completed_at.is_(None) if completed_since is None else or_(
        Order.completed_at.is_(None), Order.completed_at >= completed_since)
    return [select(Order.customer_id).where(recent),
            select(Order.courier_id).where(recent, Order.courier_id.is_not(None))]


def link_merchant_staff(session: Session, *, actor: Actor, merchant_id: str, staff_id: str) -> MerchantStaff:
    get_staff(session, staff_id=staff_id)  # an account that exists (404 otherwise)
    link = session.get(MerchantStaff, staff_id)
    if link is None:
        link = MerchantStaff(staff_id=staff_id, merchant_id=merchant_id)
        session.add(link)
    link.merchant_id = merchant_id
    audit.record(session, actor=actor, action="merchant.staff", target_type="staff", target_id=staff_id,
                 details={"merchant": merchant_id})
    return link
