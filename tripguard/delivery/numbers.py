"""Virtual numbers (AXB, as the carriers' 隐私号 and Twilio Proxy bind them): each city has a pool; an
order's courier (B) is bound to its customer (A) through one number (X), and to its merchant through
another when the merchant gave a phone, from the courier's assignment until the order completes plus
a grace. The telephony provider asks `route` whom to bridge a call to;
after expiry, from a number that is neither party, or while the access gate refuses the courier (as it
refuses them the order), it is refused. A released number stays quiet
before it is bound again, so a late call never reaches a stranger. Every call is an interaction,
recorded without the real numbers. An empty pool raises an alert and the order goes on without a
binding (the apps fall back to support)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.core.errors import PermissionDenied
from tripguard.core.ids import new_id
from tripguard.delivery.models import Binding, Interaction, Order, VirtualNumber
from tripguard.privacy import access
from tripguard.security.permissions import Purpose
from tripguard.vault.service import SubjectErased, Vault

logger = logging.getLogger("tripguard.delivery")
POOL_EXHAUSTED = Counter("tripguard_virtual_number_pool_exhausted_total",
                         "assignments that found no virtual number free in their city (alert on any increase)",
                         ["city"])
OnExhausted = Callable[[Session, str], None]  # (session, city): the pool of that city is empty


@dataclass(frozen=True)
class Route:
    action: str  # bridge | refuse
    to: str | None = None  # the real number to bridge to
    reason: str | None = None  # no_binding | expired | courier_not_cleared | unknown_caller


def digits(phone: str) -> str:
    """A number as its national digits: +86 138-0000-1111 and 13800001111 are the same."""
    only = re.sub(r"\D", "", phone)
    return only[2:] if only.startswith("86") and len(only) == 13 else only


def add_numbers(session: Session, *, city: str, numbers: list[str]) -> int:
    added = 0
    for number in numbers:
        if session.get(VirtualNumber, number) is None:
            session.add(VirtualNumber(number=number, city=city, status="free"))
            added += 1
    return added


def _available(city: str, now: datetime) -> Select[VirtualNumber]:
    return select(VirtualNumber).where(
        VirtualNumber.city == city,
        or_(VirtualNumber.status == "free", and_(VirtualNumber.status == "quiet", VirtualNumber.quiet_until <= now)))


def bind(session: Session, *, vault: Vault, order: Order, courier_phone: str, party: str,
         on_exhausted: OnExhausted) -> Binding | None:
    """Bind the order's courier and `party` (customer or merchant) through a free number of the city."""
    now = utcnow()
    # SKIP LOCKED (PostgreSQL): two assignments at once never take the same number.
    number = session.scalar(_available(order.city, now).order_by(VirtualNumber.quiet_until.nulls_first())
                            .limit(1).with_for_update(skip_locked=True))
    if number is None:
        on_exhausted(session, order.city)
        return None
    assert order.courier_id is not None
    binding = Binding(id=new_id("bnd"), order_id=order.id, number=number.number, party=party,
                      courier_id=order.courier_id, status="active", created_at=now)
    session.add(binding)
    session.flush()
    access.write_field(vault, session, binding, "courier_phone", courier_phone)
    number.status, number.binding_id, number.quiet_until = "bound", binding.id, None
    return binding


def release_for(session: Session, *, order_id: str, completed_at: datetime, grace: timedelta) -> None:
    """The order completed (or its courier changed): its bindings end after the grace."""
    for binding in session.scalars(select(Binding).where(Binding.order_id == order_id, Binding.status == "active")):
        binding.expires_at = completed_at + grace


def expire(session: Session, *, quiet: timedelta, now: datetime | None = None) -> int:
    """Bindings past their end: expired, and their numbers put to rest."""
    moment = now or utcnow()
    done = session.scalars(select(Binding).where(Binding.status == "active", Binding.expires_at <= moment)).all()
    for binding in done:
        binding.status = "expired"
        number = session.get(VirtualNumber, binding.number)
        if number is not None and number.binding_id == binding.id:
            number.status, number.quiet_until, number.binding_id = "quiet", moment + quiet, None
    return len(done)


def expire_due(factory: sessionmaker[Session], *, quiet: timedelta) -> int:
    with unit_of_work(factory) as session:
        return expire(session, quiet=quiet)


def binding_of(session: Session, *, order_id: str, party: str = "customer") -> Binding | None:
    """The order's latest binding between its courier and `party`."""
    return session.scalar(select(Binding).where(Binding.order_id == order_id, Binding.party == party)
                          .order_by(Binding.created_at.desc()).limit(1))


def call_counts(session: Session, *, order_id: str) -> dict[str, dict[str, int]]:
    """The order's calls, counted per binding and outcome."""
    rows = session.execute(select(Interaction.binding_id, Interaction.outcome, func.count())
                           .where(Interaction.order_id == order_id)
                           .group_by(Interaction.binding_id, Interaction.outcome)).all()
    counts: dict[str, dict[str, int]] = {}
    for binding_id, outcome, count in rows:
        counts.setdefault(str(binding_id), {})[outcome] = int(count)
    return counts


def route(session: Session, *, vault: Vault, actor: Actor, number: str, caller: str) -> Route:
    """Whom a call to `number` from `caller` is bridged to, if anyone. Recorded, without real numbers;
    the real numbers opened to decide are audited as `actor`'s use (the telephony provider's key)."""
    now = utcnow()
    binding = session.scalar(select(Binding).where(Binding.number == number, Binding.status == "active")
                             .order_by(Binding.created_at.desc()).limit(1))
    party, result = "unknown", Route("refuse", reason="no_binding")
    if binding is not None and binding.expires_at is not None and binding.expires_at <= now:
        result = Route("refuse", reason="expired")
    elif binding is not None and not _courier_cleared(session, binding):
        result = Route("refuse", reason="courier_not_cleared")  # no real number is opened
    elif binding is not None:
        order = session.get(Order, binding.order_id)
        column = "customer_phone" if binding.party == "customer" else "merchant_phone"
        try:
            other = access.open_field(vault, session, order, column) if order else None
            courier = access.open_field(vault, session, binding, "courier_phone")
        except SubjectErased:
            other = courier = None
        if other and digits(caller) == digits(other) and courier:
            party, result = binding.party, Route("bridge", to=courier)
        elif courier and digits(caller) == digits(courier) and other:
            party, result = "courier", Route("bridge", to=other)
        else:
            result = Route("refuse", reason="unknown_caller")
        _record_use(session, actor, order if other is not None else None, column,
                    binding if courier is not None else None, party if result.action == "bridge" else None)
    session.add(Interaction(id=new_id("itr"), binding_id=binding.id if binding else None,
                            order_id=binding.order_id if binding else None, number=number, caller=party,
                            outcome="bridged" if result.action == "bridge" else "refused", reason=result.reason,
                            at=now))
    return result


def overridden_codes(order: Order) -> frozenset[str] | None:
    """The gate's blockers the order's override lifts for its courier (`access.check_worker`): None
    without an override."""
    return access.overridden_codes(order.courier_override_at, order.courier_override_blockers)


def _courier_cleared(session: Session, binding: Binding) -> bool:
    """The access gate's answer for the binding's courier, asked once per call (`access.check_worker`, as
    their read of the order asks it): a courier it refuses is put through to no one, and no one to them.
    An order given to this courier over the gate with a reason lets them past only the blockers overridden."""
    order = session.get(Order, binding.order_id)  # (a replaced courier's line is dead)
    overridden = None if order is None else overridden_codes(order)
    try:
        access.check_worker(session, worker_id=binding.courier_id, overridden=overridden)
    except PermissionDenied:
        return False
    return True


def _record_use(session: Session, actor: Actor, order: Order | None, column: str, binding: Binding | None,
                bridged: str | None) -> None:
    """Each record whose number was opened: what was opened, and what went back to the provider (the
    courier's number to the party calling, or the party's number to the courier)."""
    if order is not None:
        access.record_use(session, actor=actor, row=order, columns=[column], purpose=Purpose.DELIVERY,
                          use="telephony_route", disclosed=[column] if bridged == "courier" else [])
    if binding is not None:
        access.record_use(session, actor=actor, row=binding, columns=["courier_phone"], purpose=Purpose.DELIVERY,
                          use="telephony_route",
                          disclosed=["courier_phone"] if bridged not in (None, "courier") else [])


def pool_status(session: Session, *, city: str) -> dict[str, int]:
    now = utcnow()
    free = len(session.scalars(_available(city, now)).all())
    bound = len(session.scalars(select(VirtualNumber.number).where(VirtualNumber.city == city,
                                                                   VirtualNumber.status == "bound")).all())
    return {"available": free, "bound": bound}


def alert_exhausted(session: Session, city: str) -> None:  # the on_exhausted callback: called positionally
    """The default alert: a metric to page on and a log line (the order goes on without a binding)."""
    POOL_EXHAUSTED.labels(city).inc()
    logger.warning("virtual-number pool exhausted", extra={"event": city})
