"""What feedback gives the platform at start-up (`tripguard.wiring`): the retention rule for complaints."""

from __future__ import annotations

from datetime import timedelta

from tripguard.core.settings import Settings
from tripguard.feedback import service
from tripguard.privacy import retention


def _complaints(settings: Settings) -> retention.Rule:
    keep = timedelta(days=settings.retention_trip_data_days)
    return retention.Rule("complaints", "complaints and ratings past the trip-data period, unless their author is "
                          "on hold", keep, service.expired(keep, retention.held_subjects))


def register() -> None:
    retention.register_rule("complaints", order=80, rule=_complaints)
