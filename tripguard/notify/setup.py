"""The notifier the settings describe."""

from __future__ import annotations

from tripguard.core.settings import Settings
from tripguard.notify.channels import Channel, RecordingChannel, WebhookChannel
from tripguard.notify.service import Notifier
from tripguard.notify.templates import use_signature


def build_notifier(settings: Settings) -> Notifier:
    use_signature(settings.sms_signature)  # every message this process renders signs with the deployment's one
    # SMS, e-mail, push and the emergency gateway (110 linkage / a RapidSOS-style API) have no provider
    # adapter yet: the recording channels stand in, by name.
    channels: dict[str, Channel] = {name: RecordingChannel(name=name) for name in ("sms", "email", "push", "emergency")}
    if settings.webhook_secret is not None:
        channels["webhook"] = WebhookChannel(secret=settings.webhook_secret.get_secret_value())
    return Notifier(channels=channels, concurrency=settings.outbox_concurrency,
                    emergency_concurrency=settings.outbox_emergency_concurrency)
