"""What privacy gives the packages below it at start-up (`tripguard.wiring`): who a subject token's id was
recorded as (security), what a restore re-applies (vault), and the outbox's retention rule (notify sits
below privacy, so privacy schedules the rule; notify's own code deletes its rows)."""

from __future__ import annotations

from datetime import timedelta

from tripguard.core.settings import Settings
from tripguard.notify.retention import finished_messages
from tripguard.privacy import indexes, retention, service
from tripguard.security import auth
from tripguard.vault import backup


def _sent_messages(settings: Settings) -> retention.Rule:
    keep = timedelta(days=settings.retention_messages_days)
    return retention.Rule("sent_messages", "sent or abandoned outbox messages (they carry contact details)", keep,
                          finished_messages(keep))


def register() -> None:
    auth.register_recorded_kind(service.recorded_kind)
    backup.register_restore_steps(backup.RestoreSteps(after_erasures=service.reapply_erasures,
                                                      rebuild_blind_indexes=indexes.rebuild))
    retention.register_rule("sent_messages", order=90, rule=_sent_messages)
