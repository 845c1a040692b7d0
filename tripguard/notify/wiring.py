"""What notify gives the packages below it at start-up (`tripguard.wiring`)."""

from __future__ import annotations

from tripguard.core import cli_support
from tripguard.core.settings import Settings
from tripguard.notify.templates import use_signature


def sign_with_deployment(settings: Settings) -> None:
    use_signature(settings.sms_signature)  # what a CLI command queues signs with the deployment's signature


def register() -> None:
    cli_support.on_cli_session(sign_with_deployment)
