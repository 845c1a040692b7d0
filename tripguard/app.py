"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from zoneinfo import ZoneInfo

import xstatic.pkg.leaflet
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from tripguard.audit import api as audit_api
from tripguard.audit import tasks as audit_tasks
from tripguard.audit.service import Actor
from tripguard.audit.signing import load_signing_key
from tripguard.console import audit_pages, notify_pages, privacy_pages, security_pages
from tripguard.console.shell import STATIC_DIR, render_console_error, root_router
from tripguard.console.shell import router as shell_router
from tripguard.core.admission import Admission, AdmitFirst, Limits
from tripguard.core.basemap import tile_origins
from tripguard.core.bookkeeping import OncePer, Tally
from tripguard.core.db import engine_for, make_sessionmaker, unit_of_work
from tripguard.core.db_timeouts import interrupt_busy_connections
from tripguard.core.errors import install_error_handlers
from tripguard.core.fastread import make_fast_reader
from tripguard.core.logging import configure_logging
from tripguard.core.messaging import NatsLink
from tripguard.core.middleware import BodyFirstMiddleware, RequestContextMiddleware
from tripguard.core.migrations import head_revision
from tripguard.core.openapi import install_openapi
from tripguard.core.processes import ProcessPool
from tripguard.core.readfeed import make_read_cache
from tripguard.core.routes import ServingAppMiddleware, ServingAppOverrides
from tripguard.core.scheduler import Job
from tripguard.core.settings import Settings, get_settings
from tripguard.delivery import console as delivery_console
from tripguard.delivery import label_render
from tripguard.delivery import numbers as delivery_numbers
from tripguard.delivery.api import router as delivery_router
from tripguard.delivery.intake import OrderIntake
from tripguard.feedback import console as feedback_console
from tripguard.feedback.api import router as feedback_router
from tripguard.notify.senders import OutboxSenders, OutboxWake
from tripguard.notify.setup import build_notifier
from tripguard.privacy.api import router as privacy_router
from tripguard.privacy.retention import run_retention
from tripguard.regulator import setup as regulator_setup
from tripguard.regulator.api import router as regulator_router
from tripguard.regulator.feed import SenderThread
from tripguard.reporting import console as reporting_console
from tripguard.reporting import digests as reporting_digests
from tripguard.reporting import snapshots as reporting_snapshots
from tripguard.reporting.api import router as reporting_router
from tripguard.safety import console as safety_console
from tripguard.safety import contact_rights, sos
from tripguard.safety.api import router as safety_router
from tripguard.safety.contacts import share_automatically
from tripguard.safety.intake import SosIntake
from tripguard.safety.models import Incident
from tripguard.safety.service import escalate_overdue, feed_item, open_for_alert, open_for_check_in
from tripguard.safety.sos import SosDesk, link_claims
from tripguard.safety.telephony import build_telephony
from tripguard.screening import adjudication as screening_adjudication
from tripguard.screening import agency as screening_agency
from tripguard.screening import console as screening_console
from tripguard.screening import gate as screening_gate
from tripguard.screening import pages as screening_pages
from tripguard.screening import workers as screening_workers
from tripguard.screening.api import eligibility_router
from tripguard.screening.api import router as screening_router
from tripguard.screening.providers import SimulatedFaceMatcher, build_agency
from tripguard.screening.service import rules_from as screening_rules_from
from tripguard.security.api import router as security_router
from tripguard.security.auth import AUDIT_GATE, declared_permission, request_credential
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.security.rate_limit import SlidingWindowLimiter
from tripguard.security.service import SESSION_TOUCH_INTERVAL
from tripguard.sim.demo import DemoCity, close_interrupted
from tripguard.telematics import console as telematics_console
from tripguard.telematics import service as telematics_service
from tripguard.telematics.api import router as telematics_router
from tripguard.telematics.detection import checkins
from tripguard.telematics.detection.embedded import EmbeddedMonitor
from tripguard.telematics.detection.fast_monitor import BatchMonitor
from tripguard.telematics.detection.feed import connect_feed
from tripguard.telematics.detection.monitor import Alert, config_with
from tripguard.telematics.detection.worker import MonitorSite
from tripguard.telematics.ingest.bus import NatsBus
from tripguard.telematics.ingest.events import format_ts
from tripguard.telematics.ingest.inbox import InboxBus
from tripguard.telematics.models import Trip, TripAlert
from tripguard.telematics.service import IngestOptions, LiveMonitor
from tripguard.vault.keys import build_vault
from tripguard.web.health import router as health_router
from tripguard.web.home import router as home_router
from tripguard.web.share import router as share_router
from tripguard.wiring import wire
from tripguard.workforce import console as workforce_console
from tripguard.workforce import pages as workforce_pages
from tripguard.workforce import supervision as workforce_supervision
from tripguard.workforce.api import router as workforce_router

# Each domain's console pages, rendered in the web shell.
CONSOLE_ROUTERS = [security_pages.router, audit_pages.router(AUDIT_GATE), privacy_pages.router,
                   telematics_console.router, telematics_console.trips_router,
                   telematics_console.devices_router, telematics_console.check_ins_router, safety_console.router,
                   feedback_console.router, screening_console.router, delivery_console.router,
                   workforce_console.router, reporting_console.router, notify_pages.router]

logger = logging.getLogger("tripguard.app")

DESCRIPTION = """TripGuard: safety and privacy platform for ride-hailing and food-delivery operators.

Authenticate with `Authorization: Bearer tg_...` (an integration API key), a subject token (a JWT
minted by the operator for its app users), or the console's session cookie. Every operation names
the permission it needs in `x-permission`. Errors are RFC 9457 `application/problem+json`.
"""


async def _every(job: Job, thread: Executor) -> None:
    """Run a background job on its schedule, on its own thread (never the request thread pool, which busy
    requests may hold), logging (not dying on) failures."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            await loop.run_in_executor(thread, job.run)
        except Exception:
            logger.exception("background job failed", extra={"event": job.name})
        if job.wake is None:
            await asyncio.sleep(job.every)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.wake.wait(), job.every)
        await asyncio.sleep(max(0.0, started + job.soonest - loop.time()))
        job.wake.clear()  # wake-ups until now are served by the next run


def _escalate_incidents(app: FastAPI) -> None:
    for item in escalate_overdue(app.state.sessionmaker, webhook_url=app.state.settings.webhook_url):
        app.state.live_monitor.feed.publish(item)


def _expire_check_ins(app: FastAPI) -> None:
    expired = checkins.expire_due(app.state.sessionmaker, webhook_url=app.state.settings.webhook_url)
    feed = app.state.live_monitor.feed
    if not expired:
        return
    opened = []
    with unit_of_work(app.state.sessionmaker) as session:  # no answer in time: a case for the safety centre
        for payload in expired:
            check_in = telematics_service.check_in(session, check_in_id=str(payload["check_in_id"]))
            incident = check_in and open_for_check_in(session, check_in=check_in,
                                                      ack_seconds=app.state.settings.incident_ack_seconds)
            if incident:
                opened.append(feed_item(incident))
    for item in [{"type": "check_in", **p} for p in expired] + opened:
        feed.publish(item)


def sos_desk(app: FastAPI) -> SosDesk:
    settings: Settings = app.state.settings
    return SosDesk(vault=app.state.vault, live=app.state.live_monitor, ack_seconds=settings.incident_ack_seconds,
                   secret_key=settings.secret_key.get_secret_value(), base_url=settings.base_url)


def _sos_stored(app: FastAPI, incidents: list[Incident]) -> None:
    """New SOS cases: on the agents' queue now; their SMS and police payload leave now, not next tick."""
    app.state.live_monitor.feed.publish_many([feed_item(i) for i in incidents])
    app.state.outbox_wake.set()


def monitor_site(settings: Settings) -> MonitorSite:
    """What `tripguard worker monitor` runs on: this process's app, composed as the API's is."""
    app = create_app(settings)
    return MonitorSite(engine=app.state.engine, vault=app.state.vault, feed=app.state.live_monitor.feed,
                       options=ingest_options(app))


def ingest_options(app: FastAPI) -> IngestOptions:
    settings: Settings = app.state.settings
    feed = app.state.live_monitor.feed

    def on_alert(session: Session, alert: TripAlert) -> None:
        incident = open_for_alert(session, alert=alert, ack_seconds=settings.incident_ack_seconds)
        if incident is not None:
            feed.publish(feed_item(incident))

    def on_trip_started(session: Session, trip: Trip) -> None:
        share_automatically(session, vault=app.state.vault, secret_key=settings.secret_key.get_secret_value(),
                            trip=trip, base_url=settings.base_url, zone=ZoneInfo(settings.timezone))
        for incident in link_claims(session, trip=trip):  # an SOS that named this trip before it arrived
            feed.publish(feed_item(incident))

    return IngestOptions(webhook_url=settings.webhook_url, check_in_minutes=settings.check_in_answer_minutes,
                         max_lateness_seconds=settings.ingest_max_lateness_seconds,
                         on_alert=on_alert, on_trip_started=on_trip_started,
                         check_trip=ineligible_on_trip if settings.trip_start_gate else None,
                         write_slice=settings.ingest_write_slice,
                         between_slices=Session.commit)  # between slices a waiting SOS gets the SQLite writer


def ineligible_on_trip(session: Session, trip: Trip, *, with_vehicle: bool = True) -> list[Alert]:
    """The safety net: a trip started by a driver, or in a vehicle, the dispatch gate refuses is an
    `ineligible_driver` alert (high: a case for the safety centre), dated at the trip's start (sent again,
    it is kept once). The evidence names the blockers, not what lies behind them. `with_vehicle=False`: the
    driver only (the demo city on a faster clock, whose heartbeats are dated in the past)."""
    blockers = screening_gate.at_trip_start(session, driver_id=trip.driver_id,
                                            vehicle_id=trip.vehicle_id if with_vehicle else None)
    if not blockers or trip.started_at is None:
        return []
    return [Alert(trip.id, "ineligible_driver", trip.started_at.timestamp(), None, None, {
        "since": format_ts(trip.started_at.timestamp()), "driver_id": trip.driver_id, "vehicle_id": trip.vehicle_id,
        "blockers": [b.code for b in blockers]})]


def _demo_press(app: FastAPI, passenger_id: str, trip_id: str) -> None:
    """A demo passenger presses SOS on their trip, through the SOS service as the app's press would."""
    caller = Principal.for_roles("subject", passenger_id, frozenset({Role.PASSENGER}))
    with unit_of_work(app.state.emergency_sessionmaker) as session:
        raised = sos.raise_many(session, desk=sos_desk(app), presses=[sos.Press(caller, trip_id=trip_id,
                                                                                 idempotency_key=f"demo:{trip_id}")])
    _sos_stored(app, [r.incident for r in raised if r.new])


def demo_ingest_options(app: FastAPI) -> IngestOptions:
    """The operator's ingest, safety net included; on a faster clock the net asks about the driver only."""
    options = ingest_options(app)
    if options.check_trip is not None and app.state.settings.demo_speed != 1:
        options = dataclasses.replace(options, check_trip=functools.partial(ineligible_on_trip, with_vehicle=False))
    return options


def _start_demo_city(app: FastAPI) -> DemoCity:
    """The demo city, its drivers screened, trained and signed by `tripguard demo bootstrap` and its devices
    heartbeating: the trip-start safety net stays on. On a faster clock (TRIPGUARD_DEMO_SPEED) the lap's
    events, heartbeats included, are dated in the past, which the gate's look at the vehicle's device (by the
    wall clock) would take for silence: it then asks about the driver only."""
    settings: Settings = app.state.settings
    demo = DemoCity(app.state.sessionmaker, app.state.live_monitor, app.state.vault, demo_ingest_options(app),
                    speed=settings.demo_speed, press=functools.partial(_demo_press, app))
    demo.start()
    return demo


def _screening_round(app: FastAPI) -> None:
    """Ask the agency for what is queued, stop the clock of notices that could not be delivered, close
    notices whose window passed, schedule re-screenings."""
    settings: Settings = app.state.settings
    factory, vault, agency = app.state.sessionmaker, app.state.vault, app.state.screening_agency
    rules = screening_rules_from(settings)
    screening_workers.schedule_rescreens(factory, agency=agency.name)
    screening_adjudication.watch_notices(factory, rules=rules)
    screening_adjudication.expire_notices(factory, vault=vault, rules=rules)
    screening_agency.dispatch_reports(factory, vault=vault, agency=agency, rules=rules,
                                      max_attempts=settings.screening_max_attempts,
                                      timeout_seconds=settings.screening_timeout_seconds)


def background_jobs(app: FastAPI) -> list[Job]:
    settings: Settings = app.state.settings
    factory = app.state.sessionmaker
    jobs: list[Job] = []
    if settings.audit_sequence_interval_seconds > 0:
        jobs.append(Job(settings.audit_sequence_interval_seconds,
                        lambda: audit_tasks.sequence_entries(factory), "audit.sequence"))
    if settings.audit_head_interval_seconds > 0:
        jobs.append(Job(settings.audit_head_interval_seconds,
                        lambda: audit_tasks.sign_head_if_grown(factory, key=app.state.audit_key), "audit.sign_head"))
    if settings.retention_interval_seconds > 0:
        jobs.append(Job(settings.retention_interval_seconds,
                        lambda: run_retention(factory, vault=app.state.vault, settings=settings, dry_run=False,
                                              actor=Actor("system", "scheduler")), "privacy.retention"))
    if settings.incident_interval_seconds > 0:
        jobs.append(Job(settings.incident_interval_seconds, lambda: _escalate_incidents(app), "safety.escalate"))
    if settings.check_in_interval_seconds > 0:
        jobs.append(Job(settings.check_in_interval_seconds, lambda: _expire_check_ins(app), "telematics.check_ins"))
    if settings.screening_interval_seconds > 0:  # woken by a new applicant
        jobs.append(Job(settings.screening_interval_seconds, lambda: _screening_round(app), "screening.round",
                        wake=app.state.screening_wake, soonest=min(0.2, settings.screening_interval_seconds)))
    if settings.supervision_interval_seconds > 0:
        limits = workforce_supervision.Thresholds(timezone=settings.timezone)
        jobs.append(Job(settings.supervision_interval_seconds,
                        lambda: workforce_supervision.run_rules(factory, limits=limits), "workforce.supervision"))
    if settings.digest_interval_seconds > 0:  # hourly by default: the day's device snapshot, then any digest due
        jobs.append(Job(settings.digest_interval_seconds,
                        lambda: reporting_snapshots.take(factory, timezone=settings.timezone), "reporting.snapshots"))
        jobs.append(Job(settings.digest_interval_seconds,
                        lambda: reporting_digests.run(factory, vault=app.state.vault,
                                                      settings=settings), "reporting.digests"))
    if settings.delivery_interval_seconds > 0:
        quiet = timedelta(hours=settings.delivery_number_quiet_hours)
        jobs.append(Job(settings.delivery_interval_seconds, lambda: delivery_numbers.expire_due(factory, quiet=quiet),
                        "delivery.numbers"))
    if settings.regulator_start is not None and settings.regulator_interval_seconds > 0:
        jobs.append(Job(settings.regulator_interval_seconds,
                        lambda: regulator_setup.produce_job(settings, factory, app.state.vault), "regulator.produce"))
    # The outbox is not a job: its senders run on threads of their own (`outbox_senders`, `tripguard worker outbox`).
    return jobs


def outbox_senders(app: FastAPI) -> OutboxSenders:
    """The outbox's senders, woken by `app.state.outbox_wake` (an SOS stored here) and by NOTIFY (elsewhere)."""
    settings: Settings = app.state.settings
    return OutboxSenders(app.state.sessionmaker, app.state.vault, app.state.notifier,
                         database_url=settings.database_url, wake=app.state.outbox_wake,
                         poll=settings.outbox_interval_seconds,
                         claim_for=timedelta(seconds=settings.outbox_claim_seconds),
                         emergency_factory=app.state.emergency_sessionmaker)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    link: NatsLink | None = app.state.nats
    if link is None and app.state.settings.demo_city:  # a stopped demo's trips will never be finished
        closed = await run_in_threadpool(close_interrupted, app.state.sessionmaker, vault=app.state.vault)
        if closed:
            logger.info("demo trips closed", extra={"event": f"{closed} trips the last run left under way"})
    embedded: EmbeddedMonitor | None = app.state.embedded_monitor
    if embedded is not None:  # the monitor runs here (else in `tripguard worker monitor`, from its checkpoints)
        await run_in_threadpool(embedded.start if app.state.settings.monitor_thread else embedded.start_state)
    if link is not None:
        link.start()
    # Emergency contacts stored before contacts were data subjects get theirs (nothing to do after the first
    # run). A failure is logged and tried again at the next start: it never keeps the server (and SOS) down.
    try:
        linked = await run_in_threadpool(contact_rights.link_existing, app.state.sessionmaker, vault=app.state.vault)
    except SQLAlchemyError:
        logger.exception("emergency contacts not registered; tried again at the next start")
    else:
        if linked:
            logger.info("emergency contacts registered", extra={"event": f"{linked} contacts linked to their subjects"})
    if app.state.read_cache is not None:
        app.state.read_cache.start()
    if app.state.settings.freeze_gc_at_startup:
        # What startup built lives as long as the process: keep it out of the cyclic garbage collector's
        # full passes, which otherwise walk it every time (~100 ms, the whole process stopped).
        gc.collect()
        gc.freeze()
    jobs = background_jobs(app) if app.state.settings.run_jobs else []  # else `tripguard scheduler` runs them
    threads = [ThreadPoolExecutor(1, thread_name_prefix=f"job {job.name}") for job in jobs]
    tasks = [asyncio.create_task(_every(job, thread)) for job, thread in zip(jobs, threads, strict=True)]
    senders = None  # else `tripguard worker outbox` sends
    if app.state.settings.run_jobs and app.state.settings.outbox_interval_seconds > 0:
        senders = outbox_senders(app)
        senders.start()
    regulator = None  # the regulator feed's sender, like the outbox's (else `tripguard worker regulator`)
    if app.state.settings.run_jobs:
        built = regulator_setup.build_sender(app.state.settings, app.state.sessionmaker, app.state.vault)
        regulator = SenderThread(built) if built is not None else None
        if regulator is not None:
            regulator.start()
    demo = _start_demo_city(app) if app.state.settings.demo_city and link is None else None
    try:
        yield
    finally:
        if demo is not None:
            demo.stop()
        if embedded is not None:  # a clean stop: the next start resumes from this checkpoint
            await run_in_threadpool(embedded.stop)
        if senders is not None:
            await run_in_threadpool(senders.stop)
        if regulator is not None:
            await run_in_threadpool(regulator.stop)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for thread in threads:
            thread.shutdown(wait=False)
        if link is not None:
            await link.close()
        await app.state.sos_intake.close()
        await app.state.order_intake.close()
        app.state.label_pool.close()
        await app.state.fast_reader.close()
        if app.state.read_cache is not None:
            await run_in_threadpool(app.state.read_cache.stop)


@functools.cache
def api_routes() -> tuple[BaseRoute, ...]:
    """Every router of the app, included once per process: FastAPI builds an included router's routes on
    the first request that needs them, and keeps them in the inclusion (`core.routes`, "Routes built once
    per process"). Every app made in this process serves these same inclusions."""
    router = APIRouter(dependencies=[AdmitFirst], dependency_overrides_provider=ServingAppOverrides())
    # Routes are matched in order (twice per request); the busiest machine paths go first: the dispatch
    # gate (asked before every dispatch), SOS and ingest.
    for included in (eligibility_router, safety_router, telematics_router, health_router, security_router,
                     audit_api.router(AUDIT_GATE), privacy_router, feedback_router, screening_router,
                     delivery_router, workforce_router, reporting_router, regulator_router, home_router,
                     shell_router, root_router,
                     *CONSOLE_ROUTERS, share_router, screening_pages.router, workforce_pages.router):
        router.include_router(included)
    routes = tuple(router.routes)
    # Built now, at start-up (about 0.4 s of CPU), not on the event loop by the first request of each kind,
    # where a router's first request held every request behind it, an SOS too, for 0.1-0.3 s of CPU.
    for _ in iter_route_contexts(routes):
        pass
    return routes


def create_app(settings: Settings | None = None, *, session_factory: sessionmaker[Session] | None = None) -> FastAPI:
    wire()  # every package's registrations, before the settings are checked
    settings = settings or get_settings()
    settings.check_safe_to_start()
    configure_logging(settings.log_level, settings.log_json)

    app = FastAPI(
        title="TripGuard", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
        openapi_url="/api/v1/openapi.json", docs_url="/docs", redoc_url=None,
        # Metrics are Prometheus (/metrics, core/middleware.py); FastAPI's own OpenTelemetry hooks would
        # only cost time on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        dependencies=[AdmitFirst],  # every route's first dependency: SOS first, bulk bounded, bursts refused
    )
    app.state.settings = settings
    app.state.admission = Admission(Limits(
        per_principal=settings.admission_principal_requests, per_api_key=settings.admission_api_key_requests,
        bulk=settings.admission_bulk_requests, busy=settings.admission_busy_requests,
        retry_after=settings.admission_retry_after_seconds, running=settings.admission_running_requests,
        queue_seconds=settings.admission_queue_seconds), request_credential)
    app.state.engine = engine_for(settings)
    app.state.sessionmaker = session_factory or make_sessionmaker(app.state.engine)
    # The emergency lane's own connections: a pool exhausted by bulk work never holds up an SOS.
    app.state.emergency_engine = engine_for(settings, "emergency")
    emergency_sessionmaker = session_factory or make_sessionmaker(app.state.emergency_engine)
    app.state.emergency_sessionmaker = emergency_sessionmaker
    app.state.fast_reader = make_fast_reader(settings, session_factory)
    app.state.read_cache = make_read_cache(settings, bound_to_session=session_factory is not None)
    app.state.audit_key = load_signing_key(settings)
    app.state.vault = build_vault(settings)
    app.state.notifier = build_notifier(settings)
    app.state.live_monitor = LiveMonitor(monitor=BatchMonitor(config_with(settings.monitor_thresholds)))
    app.state.nats = None if settings.bus_url == "memory://" else connect_feed(app.state.live_monitor.feed, settings)
    app.state.embedded_monitor = None if app.state.nats is not None else EmbeddedMonitor(
        app.state.sessionmaker, live=app.state.live_monitor, vault=app.state.vault,
        options=lambda: ingest_options(app), config=config_with(settings.monitor_thresholds),
        slice_lines=settings.monitor_slice_lines, checkpoint_seconds=settings.monitor_checkpoint_seconds)
    app.state.bus = (NatsBus(app.state.nats, settings) if app.state.embedded_monitor is None else
                     InboxBus(app.state.embedded_monitor, max_lines=lambda: app.state.settings.ingest_inbox_max_lines))
    app.state.schema_head = head_revision()
    app.state.ingest_options = lambda: ingest_options(app)  # read per batch: settings may change in tests
    app.state.outbox_wake = OutboxWake()  # set when something urgent was queued (an SOS): wakes the senders
    app.state.sos_intake = SosIntake(emergency_sessionmaker, lambda: sos_desk(app),
                                     on_stored=lambda incidents: _sos_stored(app, incidents),
                                     deadline=settings.sos_deadline_seconds, threads=settings.sos_threads,
                                     interrupt=lambda: interrupt_busy_connections(app.state.emergency_engine))
    app.state.order_intake = OrderIntake(app.state.sessionmaker, app.state.vault, max_group=settings.order_group_max)
    app.state.label_pool = ProcessPool(settings.label_processes, initializer=label_render.warm, name="labels")
    app.state.screening_agency = build_agency(settings)
    app.state.face_matcher = SimulatedFaceMatcher()
    app.state.screening_wake = asyncio.Event()  # set when an applicant was queued for screening
    app.state.share_limiter = SlidingWindowLimiter(limit=60, window_seconds=60)  # per link
    # Bookkeeping writes (last seen, last used, views): at most once a minute per row and process.
    app.state.last_seen_due = OncePer(SESSION_TOUCH_INTERVAL.total_seconds())
    app.state.share_views = Tally()
    app.state.telephony = build_telephony(settings.telephony)
    app.state.sign_in_limiter = SlidingWindowLimiter(
        limit=settings.sign_in_rate_per_minute, window_seconds=60
    )
    app.state.contact_request_limiter = SlidingWindowLimiter(limit=settings.contact_request_rate_per_hour,
                                                             window_seconds=3600)

    install_error_handlers(app, html_renderer=render_console_error)
    # Added first, so it runs inside the request context: bodies are read whole before any route or session.
    app.add_middleware(BodyFirstMiddleware, max_bytes=settings.max_body_bytes,
                       timeout_seconds=settings.body_timeout_seconds)
    app.add_middleware(RequestContextMiddleware, hsts=settings.uses_tls,
                       image_origins=tile_origins(settings.map_tiles_url, settings.map_tiles_subdomains))
    app.add_middleware(ServingAppMiddleware)  # the shared routes read this app's dependency overrides
    app.router.routes.extend(api_routes())
    app.mount("/static/leaflet", StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR), name="leaflet")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_openapi(app, declared_permission)
    return app
