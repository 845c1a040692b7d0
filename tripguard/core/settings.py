"""Settings from the environment (prefix ``TRIPGUARD_``) and an optional ``.env`` file."""

from __future__ import annotations

import os
import re
import secrets
from datetime import datetime
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tripguard.core.basemap import BaseMap, TileCrs, attribution_url_problem, tile_template_problem


def _this_host() -> list[IPv4Network | IPv6Network]:
    return [IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")]


# The development defaults, named so that production refuses them (see the validators below).
DEV_SECRET = "tripguard-development-secret-do-not-use-in-production"  # noqa: S105
DEV_KEYRING_PASSPHRASE = "tripguard-development-keyring"  # noqa: S105
CATEGORY_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"  # an item's category, as the operator's backend names it
# What a bag should not tell whoever carries or sees it: health, sex and pregnancy (PIPL Art. 28's
# sensitive personal information, read off a receipt).
SENSITIVE_ITEM_CATEGORIES = ("medicine", "pharmacy", "medical_device", "health", "adult", "sexual_health",
                             "contraception", "pregnancy")

MONITOR_THRESHOLDS: set[str] = set()
# The trip monitor's threshold names (`TRIPGUARD_MONITOR_THRESHOLDS`), registered by telematics at start-up
# (`tripguard.wiring`): the settings hold no domain types, yet a misspelt name fails as the settings load.


def register_monitor_thresholds(names: set[str] | frozenset[str]) -> None:
    MONITOR_THRESHOLDS.update(names)


class SettingsError(RuntimeError):
    """Raised when the settings are not safe to start with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIPGUARD_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./var/tripguard.db"
    # Every database wait is bounded (docs/operations.md, "Database timeouts and the emergency connections").
    db_connect_timeout_seconds: int = Field(default=5, ge=2, le=300, description="connecting to PostgreSQL "
                                            "(libpq connect_timeout; 2 at least)")
    db_statement_timeout_seconds: float = Field(default=60, ge=0, description="PostgreSQL statement_timeout for "
                                                "requests, jobs and workers (0: none); migrations and backups "
                                                "have none")
    db_lock_timeout_seconds: float = Field(default=10, ge=0, description="PostgreSQL lock_timeout (0: none); on "
                                           "SQLite, a writer's longest wait for the file (1 at least)")
    db_idle_in_transaction_timeout_seconds: float = Field(default=60, ge=0, description="PostgreSQL ends a session "
                                                          "left idle inside a transaction this long (0: never)")
    db_keepalives_idle_seconds: int = Field(default=10, ge=1, le=3600, description="TCP keepalive: first probe "
                                            "after this much silence")
    db_keepalives_interval_seconds: int = Field(default=3, ge=1, le=600, description="TCP keepalive: between probes")
    db_keepalives_count: int = Field(default=3, ge=1, le=100, description="TCP keepalive: unanswered probes before "
                                     "the connection is dead")
    db_tcp_user_timeout_seconds: float = Field(default=15, ge=0, le=3600, description="data sent and not "
                                               "acknowledged this long: the connection is dead (Linux; 0: the "
                                               "kernel's ~15 min)")
    db_emergency_pool_size: int = Field(default=4, ge=1, le=64, description="connections kept for SOS intake alone")
    db_emergency_connect_timeout_seconds: int = Field(default=2, ge=2, le=30, description="SOS intake: connecting")
    db_emergency_statement_timeout_seconds: float = Field(default=2, gt=0, le=30, description="SOS intake: "
                                                          "statement_timeout")
    db_emergency_lock_timeout_seconds: float = Field(default=1, gt=0, le=30, description="SOS intake: lock_timeout")
    db_emergency_tcp_user_timeout_seconds: float = Field(default=2, gt=0, le=30, description="SOS intake: "
                                                         "tcp_user_timeout")
    sos_deadline_seconds: float = Field(default=2.5, gt=0, le=30, description="an SOS press not stored in this long "
                                        "is answered 503 with Retry-After, so the app can dial 110 instead")
    sos_threads: int = Field(default=4, ge=1, le=64, description="threads that store SOS presses (shared with "
                                                                  "nothing else)")
    bus_url: str = Field(default="memory://", description="memory:// (one process: ingest runs the monitor "
                         "itself) or nats://host:4222 (scale-out: NATS JetStream carries events to "
                         "`tripguard worker monitor` processes)")
    bus_name: str = Field(default="tripguard", pattern=r"^[a-z][a-z0-9_]{0,30}$",
                          description="NATS subject prefix, and the JetStream stream's name in capitals")
    bus_shards: int = Field(default=8, ge=1, le=1024, description="event subjects (trip id hash); fixed for the "
                            "stream's life: a monitor worker owns whole shards")
    bus_retention_minutes: int = Field(default=60, ge=1, description="how long the stream keeps events: a shard "
                                       "left without a worker this long loses its oldest events")
    bus_publish_timeout_seconds: float = Field(default=2.0, gt=0, le=30, description="ingest answers 503 when "
                                               "JetStream has not confirmed a batch in this long")
    ingest_write_slice: int = Field(default=50, ge=1, le=10_000, description="embedded (memory://): an ingest "
                                    "batch's trips are stored this many per transaction, so an SOS waits for the "
                                    "SQLite writer at most one slice")
    ingest_max_lateness_seconds: int = Field(default=3600, ge=60, le=7 * 86_400, description="an event further "
                                             "than this behind the stream (the newest event time taken) is refused "
                                             "per line: it would find the monitor's watermark long past it")
    monitor_checkpoint_seconds: float = Field(default=5.0, gt=0, le=3600, description="a monitor worker saves "
                                              "each shard's state this often; a worker taking over replays "
                                              "the events since")
    monitor_rebalance_seconds: float = Field(default=20.0, ge=1, le=3600, description="a monitor worker that "
                                             "joins (or comes back) is given its share of the shards within "
                                             "this; a shard no worker with room takes is run past the share "
                                             "after this")
    monitor_slice_lines: int = Field(default=1000, ge=1, le=10_000, description="embedded (memory://): the "
                                     "monitor thread applies the inbox at most this many lines per transaction, "
                                     "so an SOS waits for the SQLite writer at most one slice")
    ingest_inbox_max_lines: int = Field(default=300_000, ge=1, description="embedded (memory://): ingest answers "
                                        "503 with Retry-After while the inbox holds more lines than this not yet "
                                        "applied by the monitor")
    monitor_thread: bool = Field(default=True, description="embedded (memory://): run the monitor thread that "
                                 "applies the inbox (off: tests apply it with `EmbeddedMonitor.drain`)")
    key_dir: Path = Path("./var/keys")
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    audit_signing_key: SecretStr | None = Field(
        default=None, description="base64 of a raw 32-byte Ed25519 seed; else read from key_dir"
    )
    key_source: Literal["keyring", "env"] = "keyring"
    keyring_passphrase: SecretStr = SecretStr(DEV_KEYRING_PASSPHRASE)
    keks: SecretStr | None = Field(default=None, description='env key source: "1:<base64>,2:<base64>"')
    blind_index_key: SecretStr | None = Field(default=None, description="env key source: base64, 32 bytes")
    crypto_suite: Literal["aes256gcm", "sm4gcm"] = "aes256gcm"
    key_backup_window_days: int = Field(
        default=30, ge=1, le=365,
        description="after this, a key backup can no longer be opened (its key is destroyed): erased people "
                    "are then unreadable from every backup")
    backup_retention_days: int = Field(default=90, ge=1, le=3650,
                                       description="how long data backups are kept (keys retire checks it)")
    # The base map under every map (docs/operations.md, "Base map"; checked at start-up by core.basemap).
    map_tiles_url: str = Field(default="", max_length=500, description="tile URL template, e.g. "
                               "https://tile.openstreetmap.org/{z}/{x}/{y}.png; empty: no base map (each map "
                               "says so)")
    map_tiles_attribution: str = Field(default="", max_length=300, description="the tile provider's credit, "
                                       "shown on every map (plain text); required with a tile URL")
    map_tiles_attribution_url: str = Field(default="", max_length=300, description="where the credit links to, "
                                           "e.g. https://www.openstreetmap.org/copyright")
    map_tiles_max_zoom: int = Field(default=19, ge=1, le=22, description="the deepest zoom the tiles exist for")
    map_tiles_subdomains: str = Field(default="abc", description="what {s} in the URL stands for, one character "
                                      "each (Amap: 1234)")
    map_tiles_crs: TileCrs = Field(default="wgs84", description="the tiles' coordinate system: wgs84, or gcj02 "
                                   "for Chinese providers (AutoNavi/Amap, Tencent): positions are then shifted "
                                   "to GCJ-02 for display")
    base_url: str = "http://127.0.0.1:8000"
    locale: Literal["zh_CN", "en"] = "zh_CN"

    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    sign_in_max_failures: int = Field(default=5, ge=1)
    sign_in_lockout_minutes: int = Field(default=15, ge=1)
    sign_in_rate_per_minute: int = Field(default=20, ge=1)
    contact_request_rate_per_hour: int = Field(
        default=10, ge=1, description="the public route of emergency contacts' requests (asking for a code, "
                                      "giving it): at most this many an hour from one address, and for one phone")
    allow_recording_channels: bool = Field(
        default=False, description="production only: start although SMS, e-mail, push and the emergency gateway "
                                   "only record (no provider adapter configured); never set this for real service")
    max_body_bytes: int = Field(default=16 * 1024 * 1024 + 65536, ge=1024,
                                description="largest request body taken (an ingest batch is at most 16 MiB)")
    body_timeout_seconds: float = Field(default=30, gt=0, le=600,
                                        description="a request body must arrive within this, or 408")
    admission_principal_requests: int = Field(
        default=8, ge=1, le=10_000, description="requests in flight per staff session or subject token, per "
                                                 "process; the next is 429 with Retry-After (SOS never)")
    admission_api_key_requests: int = Field(default=64, ge=1, le=10_000,
                                            description="the same per API key (an operator's whole integration)")
    admission_bulk_requests: int = Field(
        default=4, ge=1, le=1000, description="bulk requests (ingest, exports, reports, labels, documents) in "
                                              "flight per process; the next is 503 with Retry-After")
    admission_busy_requests: int = Field(
        default=32, ge=1, le=10_000, description="requests in flight (SOS not counted) at which a process is "
                                                 "saturated: bulk requests are then refused (503), before anything "
                                                 "else")
    admission_running_requests: int = Field(
        default=24, ge=1, le=32, description="requests running at once per process (SOS not counted); more wait "
                                             "their turn without a thread. Kept below the thread pool's 40, so a "
                                             "request holding the database always finds a thread to finish on")
    admission_queue_seconds: float = Field(default=10, gt=0, le=120,
                                           description="how long a request waits for its turn before a 503")
    admission_retry_after_seconds: int = Field(default=1, ge=1, le=300,
                                               description="the Retry-After of a 429 or 503 from admission")
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="addresses (CIDR) of your reverse proxies: X-Forwarded-For is believed only from these")
    # /metrics holds SOS, breach and alert counts: served to the monitoring network or with a token only.
    metrics_allow: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=_this_host,
        description="networks (CIDR, comma-separated) whose Prometheus may read /metrics without a token "
                    "(default: this host only); empty: the token alone")
    metrics_token: SecretStr | None = Field(
        default=None, description="a bearer token (at least 24 characters) that reads /metrics from anywhere")

    subject_token_secret: SecretStr | None = None
    subject_token_public_key_file: Path | None = None
    subject_token_issuer: str | None = None
    subject_token_audience: str = "tripguard"  # noqa: S105 - an audience name, not a secret
    subject_token_max_ttl_seconds: int = Field(default=3600, ge=60)

    sms_signature: str = Field(
        default="行安卫士", min_length=2, max_length=12, pattern=r"^[^\[\]【】\s]+$",
        description="the one SMS signature (签名) of this deployment, registered with the SMS provider: every text "
                    "begins with it, in Chinese and English alike (【行安卫士】)")
    webhook_url: str | None = Field(default=None, description="the operator's endpoint for TripGuard events")
    webhook_secret: SecretStr | None = Field(default=None, description="signs webhook bodies (HMAC-SHA-256)")
    retention_delivery_contact_hours: int = Field(default=72, ge=1)
    retention_trip_data_days: int = Field(default=730, ge=730, description="trip data: 2 years at least")
    retention_recording_days: int = Field(default=7, ge=1, description="in-car recordings (DiDi keeps 7 days)")
    retention_recording_complaint_days: int = Field(default=16, ge=1,
                                                    description="in-car recordings of a trip complained about")
    retention_messages_days: int = Field(default=30, ge=1)
    retention_interval_seconds: float = Field(default=3600, ge=0, description="0: not in this process")
    outbox_interval_seconds: float = Field(default=1.0, ge=0, description="0: not in this process")
    outbox_claim_seconds: float = Field(default=120, ge=1, le=3600,
                                        description="a claimed message not marked sent in this long (its worker died) "
                                                    "is sent again; longer than the slowest send")
    outbox_concurrency: int = Field(default=4, ge=1, le=64,
                                    description="sends in flight per destination (a webhook host, the SMS provider, "
                                                "the emergency gateway), per lane")
    outbox_emergency_concurrency: int = Field(default=16, ge=1, le=256,
                                              description="the same in the emergency lane (police gateway, "
                                                          "an SOS's contact SMS)")
    audit_sequence_interval_seconds: float = Field(default=1.0, ge=0, description="0: not in this process")
    audit_head_interval_seconds: int = Field(default=60, ge=0, description="0: not in this process")
    monitor_thresholds: dict[str, float] = Field(
        default_factory=dict, description='the trip monitor\'s thresholds to change, as JSON: {"stop_seconds": 900}; '
                                          "names and defaults in tripguard.telematics.detection.monitor.MonitorConfig")
    timezone: str = Field(default="Asia/Shanghai", description="the operator's local time (night trips, reports)")
    telephony: Literal["record-only"] = Field(
        default="record-only", description="the console's click-to-call adapter; record-only (built in) dials "
                                           "nobody: it records the request and the agent dials by hand")
    incident_ack_seconds: int = Field(default=60, ge=5, le=3600,
                                      description="acknowledge an SOS within this, or escalate")
    incident_interval_seconds: float = Field(default=5, ge=0, description="0: not in this process")
    trip_start_gate: bool = Field(
        default=True, description="a trip that starts with a driver or vehicle the dispatch gate refuses raises an "
                                  "`ineligible_driver` alert and a case; off only where TripGuard does not screen "
                                  "the drivers")
    read_cache: bool = Field(default=True, description="keep the dispatch gate's reads per process, dropped at once "
                                                       "on any change (docs/architecture.md, \"The read cache\")")
    read_cache_entries: int = Field(default=50_000, ge=1, le=10_000_000,
                                    description="the read cache's size: at most this many workers (and as many "
                                                "vehicles) kept, the least recently asked dropped first")
    check_in_answer_minutes: int = Field(default=3, ge=1, le=60, description="unanswered after this: agents step in")
    check_in_interval_seconds: float = Field(default=15, ge=0, description="0: not in this process")
    screening_agency: Literal["simulated", "http"] = Field(
        default="simulated", description="who screens applicants: simulated (development only: answers are chosen "
                                         "by the test ID number) or http (a real agency's API)")
    screening_agency_url: str | None = Field(default=None, description="the agency's API (screening_agency=http)")
    screening_agency_api_key: SecretStr | None = None
    screening_callback_secret: SecretStr | None = Field(
        default=None, description="verifies the agency's signed callbacks (X-Screening-Signature); without it "
                                  "every callback is refused")
    screening_timeout_seconds: float = Field(default=10, gt=0, le=120)
    screening_max_attempts: int = Field(default=8, ge=1, le=50, description="asking an agency that does not "
                                                                           "answer; then the report is failed")
    screening_dispute_days: int = Field(default=7, ge=1, le=60, description="the window to dispute a pre-adverse "
                                                                          "notice")
    screening_rescreen_days: int = Field(default=365, ge=30, description="a worker is screened again after this")
    screening_policy_dir: Path = Field(
        default=Path("./var/screening-policies"),
        description="the operator's city overlays, one <city>.json each (Art. 14 (四)), read before the package's; "
                    "a city with none is screened under Art. 14 alone. Shared by every process that screens")
    screening_interval_seconds: float = Field(default=5, ge=0, description="0: not in this process")
    allow_simulated_screening: bool = Field(
        default=False, description="production only: start with the simulated screening agency and face match "
                                   "(nobody is really screened); never set this for real service")
    delivery_number_grace_minutes: int = Field(default=30, ge=0, le=1440, description="a virtual number still "
                                               "bridges this long after its order completes")
    delivery_number_quiet_hours: int = Field(default=24, ge=1, le=720, description="a released virtual number rests "
                                             "this long before it is bound again")
    label_hide_item_names: bool = Field(default=False, description="the privacy label never names the items, only "
                                        "how many (\"3 items\"); for a shop whose every item says too much")
    label_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
                                 description="worker processes that render privacy labels (PDF, PNG), started at "
                                             "the first label; default: one per core")
    order_group_max: int = Field(default=256, ge=1, le=4096, description="order intake: most orders stored in "
                                 "one transaction (a burst is stored in groups)")
    label_sensitive_categories: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(SENSITIVE_ITEM_CATEGORIES),
        description="item categories (an order's items[].category) the label never names: an order holding one "
                    "shows only how many items it has; comma-separated, replaces the default list")
    supervision_interval_seconds: float = Field(default=60, ge=0, description="supervision rules over the audit "
                                                                              "log; 0: not in this process")
    dashboard_quarter_cache_seconds: float = Field(default=300, ge=0, le=3600, description="the home board's "
                                                   "quarter figures are recomputed at most this often per process")
    digest_interval_seconds: float = Field(default=3600, ge=0, description="how often the scheduler snapshots the "
                                           "device registry for the day and looks for a finished week or month "
                                           "to summarise (0: never)")
    delivery_interval_seconds: float = Field(default=60, ge=0, description="expiring virtual-number bindings; "
                                                                           "0: not in this process")
    run_jobs: bool = Field(default=True, description="run the background jobs in this API process; false when "
                                                    "`tripguard scheduler` runs them (scale-out)")
    leader_lease_seconds: float = Field(default=10, ge=1, le=300, description="`tripguard scheduler` and the "
                                        "monitor workers' shards: how long a holder that stops renewing (stopped, "
                                        "hung, cut off) keeps the lead before a standby takes over; it renews "
                                        "every third of this")
    demo_city: bool = Field(default=False, description="replay the Porto trips live (make run); development only")
    demo_speed: float = Field(default=1.0, gt=0, le=100, description="demo city clock: 1 is real time")
    freeze_gc_at_startup: bool = Field(
        default=True, description="keep what startup built out of the garbage collector's full passes "
                                  "(each would stop the server ~100 ms); tests that start many apps turn it off")
    # The regulator's feed (网约车监管信息交互平台, issue #31; docs/operations.md "Connecting to the regulator's
    # platform"). Off until `regulator_start`: nothing is produced or sent before it.
    regulator_start: datetime | None = Field(
        default=None, description="when the feed starts (00:00 on the day after licensing, with its offset: "
                                  "2026-03-02T00:00+08:00); unset: no feed")
    regulator_transport: Literal["recording", "http", "file"] = Field(
        default="recording", description="how batches reach the platform: http (POST, gzipped, signed), file (a "
                                         "folder another program carries over, one file and manifest a batch) or "
                                         "recording (keeps them in memory and sends nothing; refused in production "
                                         "unless TRIPGUARD_REGULATOR_ALLOW_RECORDING)")
    regulator_allow_recording: bool = Field(default=False, description="production only: run the feed on the "
                                            "recording transport (the platform receives nothing)")
    regulator_company_id: str = Field(default="", max_length=64,
                                      description="CompanyId, assigned by the platform (部平台统一分配)")
    regulator_source: str = Field(default="", max_length=64, description="the envelope's Source field")
    regulator_url: str | None = Field(default=None, description="http transport: the platform's endpoint")
    regulator_signing_key: SecretStr | None = Field(default=None, description="http transport: the HMAC-SHA256 "
                                                    "key of the signature header")
    regulator_company_header: str = Field(default="X-Company-Id", description="http: the company id's header")
    regulator_signature_header: str = Field(default="X-Signature", description="http: the signature's header "
                                            "(hex HMAC-SHA256 of the body as sent)")
    regulator_ack_field: str | None = Field(default=None, description="http: a 2xx counts only if its JSON body "
                                            "has this field equal to regulator_ack_value (else any 2xx)")
    regulator_ack_value: str = Field(default="0", description="http: the acknowledging value of regulator_ack_field")
    regulator_timeout_seconds: float = Field(default=10, gt=0, le=300, description="http: one batch's answer")
    regulator_directory: Path = Field(default=Path("./var/regulator-outbox"),
                                      description="file transport: where batches and manifests are written")
    regulator_batch: int = Field(default=500, ge=1, le=10_000, description="uploads of one type in a batch")
    regulator_interval_seconds: float = Field(default=10, ge=0, description="the exporters run over what happened "
                                              "since their watermark this often; 0: not in this process")
    regulator_lateness_seconds: float = Field(default=60, ge=0, le=3600, description="the exporters stop this far "
                                              "behind the clock: what happened later may not be stored yet")
    regulator_send_interval_seconds: float = Field(default=1.0, ge=0, description="the sender's poll when idle; 0: "
                                                   "not in this process")
    regulator_claim_seconds: float = Field(default=120, ge=1, le=3600, description="a batch sent and not answered "
                                           "in this long (its sender died) is sent again")
    regulator_max_backoff_seconds: float = Field(default=600, ge=1, le=86_400,
                                                 description="the longest wait between tries of a failed batch")
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("regulator_start")
    @classmethod
    def _zoned_start(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("regulator_start needs its offset (2026-03-02T00:00+08:00)")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("monitor_thresholds")
    @classmethod
    def _known_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        known = MONITOR_THRESHOLDS  # the names the trip monitor registers (`tripguard.wiring`)
        unknown = sorted(set(value) - known)
        if unknown and known:
            raise ValueError(f"unknown monitor thresholds {unknown}; known: {sorted(known)}")
        if any(v <= 0 for v in value.values()):
            raise ValueError("monitor thresholds must be positive")
        return value

    @field_validator("bus_url")
    @classmethod
    def _known_bus(cls, value: str) -> str:
        if not (value == "memory://" or value.startswith(("nats://", "tls://"))):
            raise ValueError("bus_url must be memory:// or a nats:// URL")
        return value

    @field_validator("trusted_proxies", "metrics_allow", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # TRIPGUARD_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("the metrics token must be at least 24 characters")
        return value

    @field_validator("label_sensitive_categories", mode="before")
    @classmethod
    def _categories(cls, value: object) -> object:
        # TRIPGUARD_LABEL_SENSITIVE_CATEGORIES=medicine,adult
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, list | tuple):
            return parts
        categories = [str(part).strip().lower() for part in parts if str(part).strip()]
        bad = [c for c in categories if not re.fullmatch(CATEGORY_PATTERN, c)]
        if bad:
            raise ValueError(f"not item categories: {bad} (lower-case letters, digits, _ and -)")
        return categories

    @model_validator(mode="after")
    def _usable_base_map(self) -> Settings:
        """A tile source that cannot work is a start-up error, not a grey map found later."""
        problem = None
        if self.map_tiles_url:
            problem = tile_template_problem(self.map_tiles_url, self.map_tiles_subdomains)
            if problem is None and not self.map_tiles_attribution.strip():
                problem = ("TRIPGUARD_MAP_TILES_ATTRIBUTION is required with a tile URL: every tile provider "
                           "asks for its credit on the map (OpenStreetMap: \"© OpenStreetMap contributors\")")
            if problem is not None:
                raise ValueError(f"TRIPGUARD_MAP_TILES_URL={self.map_tiles_url!r}: {problem}")
        problem = attribution_url_problem(self.map_tiles_attribution_url)
        if problem is not None:
            raise ValueError(f"TRIPGUARD_MAP_TILES_ATTRIBUTION_URL: {problem}")
        return self

    @property
    def base_map(self) -> BaseMap:
        return BaseMap(tiles=self.map_tiles_url, attribution=self.map_tiles_attribution.strip(),
                       attribution_url=self.map_tiles_attribution_url, max_zoom=self.map_tiles_max_zoom,
                       subdomains=self.map_tiles_subdomains, crs=self.map_tiles_crs)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def uses_tls(self) -> bool:
        return self.base_url.startswith("https://")

    def regulator_problems(self) -> list[str]:
        """What keeps the regulator's feed from running in production (nothing while it is off)."""
        if self.regulator_start is None:
            return []
        problems = []
        if not self.regulator_company_id:
            problems.append("the regulator's feed needs TRIPGUARD_REGULATOR_COMPANY_ID (assigned by the platform)")
        if self.regulator_transport == "recording" and not self.regulator_allow_recording:
            problems.append("the regulator's feed would only be recorded (TRIPGUARD_REGULATOR_TRANSPORT=recording): "
                            "set http or file, or TRIPGUARD_REGULATOR_ALLOW_RECORDING=true knowing that the platform "
                            "receives nothing")
        if self.regulator_transport == "http" and not (self.regulator_url and self.regulator_signing_key):
            problems.append("the http regulator transport needs TRIPGUARD_REGULATOR_URL and "
                            "TRIPGUARD_REGULATOR_SIGNING_KEY")
        return problems

    def check_safe_to_start(self) -> None:
        """Outside development, refuse default secrets and missing keys."""
        if self.env == "development" or self.env == "test":
            return
        problems: list[str] = []
        if self.demo_city:
            problems.append("TRIPGUARD_DEMO_CITY replays simulated trips: development only")
        secret = self.secret_key.get_secret_value()
        if secret == DEV_SECRET or len(secret) < 32:
            problems.append("TRIPGUARD_SECRET_KEY must be set to a random value of 32+ characters")
        if self.audit_signing_key is None and not (self.key_dir / "audit-signing.key").exists():
            problems.append(
                f"no audit signing key: set TRIPGUARD_AUDIT_SIGNING_KEY or create "
                f"{self.key_dir / 'audit-signing.key'} with `tripguard keys init`"
            )
        if self.key_source == "keyring" and self.keyring_passphrase.get_secret_value() == DEV_KEYRING_PASSPHRASE:
            problems.append("TRIPGUARD_KEYRING_PASSPHRASE must be set (the keyring holds the data keys' keys)")
        if self.key_source == "env" and (self.keks is None or self.blind_index_key is None):
            problems.append("the env key source needs TRIPGUARD_KEKS and TRIPGUARD_BLIND_INDEX_KEY")
        if not self.allow_recording_channels:  # no provider adapter exists to configure yet
            problems.append("SMS, e-mail, push and the emergency gateway would only be recorded, not sent (no "
                            "provider adapter is configured): set TRIPGUARD_ALLOW_RECORDING_CHANNELS=true to start "
                            "anyway, knowing that nobody is told")
        if self.screening_agency == "simulated" and not self.allow_simulated_screening:
            problems.append("applicants would be screened by the simulated agency (nobody is really checked): set "
                            "TRIPGUARD_SCREENING_AGENCY=http with its URL, key and callback secret, or "
                            "TRIPGUARD_ALLOW_SIMULATED_SCREENING=true knowing it")
        if self.screening_agency == "http" and not (self.screening_agency_url and self.screening_agency_api_key
                                                    and self.screening_callback_secret):
            problems.append("the http screening agency needs TRIPGUARD_SCREENING_AGENCY_URL, "
                            "TRIPGUARD_SCREENING_AGENCY_API_KEY and TRIPGUARD_SCREENING_CALLBACK_SECRET")
        problems += self.regulator_problems()
        if problems:
            raise SettingsError("refusing to start in production: " + "; ".join(problems))


def _generated_secret(folder: Path, name: str) -> str:
    """A random secret kept in the key folder (0600), made the first time it is asked for."""
    path = folder / name
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def with_generated_secrets(settings: Settings) -> Settings:
    """No public constant ever signs or protects anything: a secret not configured is generated once into the
    key folder. The session secret always; in development also the keyring passphrase (unless an older keyring
    made with the development passphrase is there), the subject-token secret, so that the demo's app tokens
    work (`tripguard demo token`), and the screening agency's callback secret, so that its signed callbacks
    (continuous monitoring) can be tried (`tripguard demo agency-push`). Production still refuses to start
    without an explicit keyring passphrase."""
    if settings.env == "test":
        return settings
    updates: dict[str, object] = {}
    if settings.secret_key.get_secret_value() == DEV_SECRET:
        updates["secret_key"] = SecretStr(_generated_secret(settings.key_dir, "secret-key"))
    if settings.env == "development":
        legacy_keyring = (settings.key_dir / "keyring.json").exists() \
            and not (settings.key_dir / "keyring-passphrase").exists()
        if settings.keyring_passphrase.get_secret_value() == DEV_KEYRING_PASSPHRASE and not legacy_keyring:
            updates["keyring_passphrase"] = SecretStr(_generated_secret(settings.key_dir, "keyring-passphrase"))
        if settings.subject_token_secret is None and settings.subject_token_public_key_file is None:
            updates["subject_token_secret"] = SecretStr(_generated_secret(settings.key_dir, "subject-token-secret"))
        # continuous monitoring can be tried (`tripguard demo agency-push`)
        if settings.screening_callback_secret is None:
            updates["screening_callback_secret"] = SecretStr(_generated_secret(settings.key_dir,
                                                                               "screening-callback-secret"))
    return settings.model_copy(update=updates) if updates else settings


# The demo's base map: OpenStreetMap's own tile server, whose tile usage policy
# (https://operations.osmfoundation.org/policies/tiles/) allows light, interactive use such as a developer's
# demo with the credit shown and a Referer sent (the pages send their origin with tile requests), and asks
# that the URL can be changed without a software update (TRIPGUARD_MAP_TILES_URL). Never a production default.
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"


def with_demo_base_map(settings: Settings) -> Settings:
    """`make run`'s demo city (development only) is drawn on OpenStreetMap's tiles unless
    TRIPGUARD_MAP_TILES_URL is set, to a tile source or to nothing (empty: no base map)."""
    if settings.env != "development" or not settings.demo_city or "map_tiles_url" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"map_tiles_url": OSM_TILES, "map_tiles_attribution": OSM_ATTRIBUTION,
                                       "map_tiles_attribution_url": OSM_COPYRIGHT, "map_tiles_max_zoom": 19,
                                       "map_tiles_crs": "wgs84"})


@lru_cache
def get_settings() -> Settings:
    return with_demo_base_map(with_generated_secrets(Settings()))
