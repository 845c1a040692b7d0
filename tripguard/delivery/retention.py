"""After an order: its contact and address are erased on schedule (72 hours by default), leaving an
anonymous record (city, items, states and times) for statistics. The sealed columns are emptied, so
nothing of them is in the database, the API, a label or a backup taken afterwards. An order whose customer
is under a legal hold, has another order in flight or a safety case open keeps them meanwhile (`held`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import CompoundSelect, Select, func, select
from sqlalchemy.orm import Session

from tripguard.delivery.models import Binding, Order
from tripguard.vault.service import Vault

BATCH = 200
ERASED_COLUMNS = ("customer_name", "customer_phone", "address", "notes", "proof_photo", "merchant_phone")


def expired(keep: timedelta, held: Callable[[], Select[str] | CompoundSelect[str]],
            ) -> Callable[[Session, Vault, datetime, bool], tuple[int, int]]:
    def run(session: Session, vault: Vault, now: datetime, dry_run: bool) -> tuple[int, int]:
        due = (Order.completed_at.is_not(None), Order.completed_at < now - keep, Order.contact_erased_at.is_(None))
        on_hold = Order.customer_id.in_(held())
        held_back = session.scalar(select(func.count()).select_from(Order).where(*due, on_hold)) or 0
        if dry_run:
            return session.scalar(select(func.count()).select_from(Order).where(*due, ~on_hold)) or 0, held_back
        orders = session.scalars(select(Order).where(*due, ~on_hold).order_by(Order.completed_at).limit(BATCH)).all()
        for order in orders:
            for column in ERASED_COLUMNS:
                setattr(order, column, None)
            order.contact_erased_at = now
            for binding in session.scalars(select(Binding).where(Binding.order_id == order.id)):
                binding.courier_phone = None
        return len(orders), held_back
    return run
