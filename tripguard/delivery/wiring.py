"""What delivery gives the platform at start-up (`tripguard.wiring`): the retention rule that empties its
orders' contacts, and the people retention must leave be while their order is in flight."""

from __future__ import annotations

from datetime import timedelta

from tripguard.core.settings import Settings
from tripguard.delivery import retention as delivery_retention
from tripguard.delivery.service import people_with_orders
from tripguard.privacy import retention


def _orders(settings: Settings) -> retention.Rule:
    keep = timedelta(hours=settings.retention_delivery_contact_hours)
    return retention.Rule("delivery_orders", "orders' contact, address and notes after the order (an anonymous "
                          "record stays)", keep, delivery_retention.expired(keep, retention.held_or_busy))


def register() -> None:
    retention.register_rule("delivery_orders", order=20, rule=_orders)
    retention.register_busy("delivery", lambda active_since: people_with_orders(completed_since=active_since))
