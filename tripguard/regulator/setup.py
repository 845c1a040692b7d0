"""The feed as the settings build it: its transport, its envelope, its sender and its producing job."""

from __future__ import annotations

import functools
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from tripguard.core.settings import Settings, SettingsError
from tripguard.regulator import envelope, feed
from tripguard.regulator.feed import Pack, Sender
from tripguard.regulator.transports import FileDropTransport, HttpTransport, RecordingTransport, Transport
from tripguard.vault.service import Vault


def build_transport(settings: Settings) -> Transport:
    """The transport the settings name. Production never gets the recording one unless it was allowed."""
    if settings.regulator_transport == "http":
        if not settings.regulator_url or settings.regulator_signing_key is None:
            raise SettingsError("the http regulator transport needs TRIPGUARD_REGULATOR_URL and "
                                "TRIPGUARD_REGULATOR_SIGNING_KEY")
        return HttpTransport(
            url=settings.regulator_url, company_id=settings.regulator_company_id,
            signing_key=settings.regulator_signing_key.get_secret_value().encode(),
            company_header=settings.regulator_company_header, signature_header=settings.regulator_signature_header,
            ack_field=settings.regulator_ack_field, ack_value=settings.regulator_ack_value,
            timeout_seconds=settings.regulator_timeout_seconds)
    if settings.regulator_transport == "file":
        return FileDropTransport(settings.regulator_directory)
    if settings.env == "production" and not settings.regulator_allow_recording:
        raise SettingsError("refusing to start in production: the regulator's feed would only be recorded; set "
                            "TRIPGUARD_REGULATOR_TRANSPORT=http or file, or TRIPGUARD_REGULATOR_ALLOW_RECORDING=true")
    return RecordingTransport()


def envelope_pack(settings: Settings) -> Pack:
    """`envelope.pack` (the `OTIpcList` of a batch) bound to the company and source."""
    pack: Pack = functools.partial(envelope.pack, company_id=settings.regulator_company_id,
                                   source=settings.regulator_source)
    return pack


def build_sender(settings: Settings, factory: sessionmaker[Session], vault: Vault, *,
                 transport: Transport | None = None, pack: Pack | None = None) -> Sender | None:
    """The sender, or None when the feed is off (no TRIPGUARD_REGULATOR_START), not sent from this process
    (TRIPGUARD_REGULATOR_SEND_INTERVAL_SECONDS=0)."""
    if settings.regulator_start is None or settings.regulator_send_interval_seconds <= 0:
        return None
    pack = pack or envelope_pack(settings)
    return Sender(factory, vault, transport or build_transport(settings), pack, batch=settings.regulator_batch,
                  claim_for=timedelta(seconds=settings.regulator_claim_seconds),
                  max_backoff=timedelta(seconds=settings.regulator_max_backoff_seconds),
                  poll=settings.regulator_send_interval_seconds)


def produce_job(settings: Settings, factory: sessionmaker[Session], vault: Vault) -> dict[str, int]:
    """The scheduler's job: every exporter from its watermark to TRIPGUARD_REGULATOR_LATENESS_SECONDS ago."""
    assert settings.regulator_start is not None
    return feed.produce(factory, vault=vault, since=settings.regulator_start,
                        lateness=timedelta(seconds=settings.regulator_lateness_seconds))
