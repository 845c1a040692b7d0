"""The `tripguard` command: serve, database, staff, API keys, keys, backups, audit, privacy, monitoring.

Sub-command modules import their heavy libraries inside the commands, so the command starts fast.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tripguard.audit.cli import audit_app
from tripguard.core.cli_support import clean_errors, err
from tripguard.delivery.cli import carrier_app
from tripguard.notify.cli import outbox
from tripguard.privacy.cli import retention_app
from tripguard.regulator.cli import regulator_app
from tripguard.reporting.cli import report_app, security_check
from tripguard.security.cli import apikey_app, dependency_scan, staff_app
from tripguard.sim.cli import sim_app
from tripguard.telematics import cli as telematics_cli
from tripguard.telematics.cli import monitor_app, worker_monitor
from tripguard.vault.cli import backup_app, keys_app

if TYPE_CHECKING:
    from tripguard.core.settings import Settings
    from tripguard.telematics.detection.worker import MonitorSite

app = typer.Typer(help="TripGuard: safety and privacy platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo set-up of `make run`.", no_args_is_help=True)
# Groups whose commands come from several packages, each command from the package whose work it does.
worker_app = typer.Typer(help="Background workers for scale-out.", no_args_is_help=True)
worker_app.command("outbox")(outbox)
worker_app.command("monitor")(worker_monitor)


def _monitor_site(settings: Settings) -> MonitorSite:
    from tripguard.app import monitor_site  # imported by the one command that runs it: every command starts fast

    return monitor_site(settings)


telematics_cli.register_site(_monitor_site)
security_app = typer.Typer(help="The security self-assessment and dependency scan.", no_args_is_help=True)
security_app.command("check")(security_check)
security_app.command("scan")(dependency_scan)
app.add_typer(db_app, name="db")
app.add_typer(staff_app, name="staff")
app.add_typer(apikey_app, name="apikey")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(backup_app, name="backup")
app.add_typer(worker_app, name="worker")
app.add_typer(retention_app, name="retention")
app.add_typer(monitor_app, name="monitor")
app.add_typer(sim_app, name="sim")
app.add_typer(carrier_app, name="carrier")
app.add_typer(demo_app, name="demo")
app.add_typer(security_app, name="security")
app.add_typer(report_app, name="report")
app.add_typer(regulator_app, name="regulator")
cluster_app = typer.Typer(help="The scaled-out set on one machine.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")
out = Console(soft_wrap=True)

# Commands that read files only (no database, no settings): they start without loading every package.
WITHOUT_WIRING = frozenset({"monitor", "sim"})


@app.callback()
def start(ctx: typer.Context) -> None:
    """TripGuard: safety and privacy platform."""
    if ctx.invoked_subcommand not in WITHOUT_WIRING:
        from tripguard.wiring import wire

        wire()  # every command (the workers and the scheduler among them) runs with every registration

@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the API and console (embedded default: SQLite, the monitor in-process behind a durable inbox)."""
    import uvicorn

    from tripguard.app import create_app
    from tripguard.core.settings import get_settings
    from tripguard.telematics.deps import live_monitor_of

    with clean_errors():
        get_settings().check_safe_to_start()
    site = create_app()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            # Open live streams would otherwise hold the process until every viewer leaves.
            live_monitor_of(site).feed.close_viewers()
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    err.print(f"TripGuard listening on http://{host}:{port} (console: /console, API docs: /docs)")
    # X-Forwarded-For: TRIPGUARD_TRUSTED_PROXIES only
    Server(uvicorn.Config(site, host=host, port=port, proxy_headers=False, log_config=None)).run()


@app.command()
def scheduler(poll: Annotated[float, typer.Option(
        min=0.1, help="seconds between a standby's tries to take over")] = 1.0) -> None:
    """Run the background jobs (audit sequencing and heads, retention, escalation, check-ins) for a
    scaled-out deployment: one scheduler leads at a time (a lease it renews every few seconds; see
    TRIPGUARD_LEADER_LEASE_SECONDS), the others stand by. Start the API processes with
    TRIPGUARD_RUN_JOBS=false; `tripguard worker outbox` sends."""
    import signal
    import threading

    from tripguard.app import background_jobs, create_app
    from tripguard.core.deps import engine_of, use_sessions
    from tripguard.core.leader import Lease, fenced_sessionmaker
    from tripguard.core.messaging import start_in_thread
    from tripguard.core.scheduler import run_jobs
    from tripguard.core.settings import get_settings
    from tripguard.telematics.deps import live_monitor_of
    from tripguard.telematics.detection.feed import connect_feed

    with clean_errors():
        settings = get_settings()
        settings.check_safe_to_start()
    site = create_app(settings)
    if settings.bus_url != "memory://":  # escalations and expired check-ins reach every console replica
        start_in_thread(connect_feed(live_monitor_of(site).feed, settings, name="tripguard-scheduler",
                                     viewers=False))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    lease = Lease(engine_of(site), seconds=settings.leader_lease_seconds)
    use_sessions(site, fenced_sessionmaker(engine_of(site), lease))  # every job's transactions
    run_jobs(background_jobs(site), lease, poll=poll, renew_every=settings.leader_lease_seconds / 3, stop=stop)


@cluster_app.command("up")
def cluster_up(
    ports: Annotated[str, typer.Option(help="the two API replicas' ports")] = "8001,8002",
    print_only: Annotated[bool, typer.Option("--print", help="print each process's command (a Procfile), "
                                                              "start nothing")] = False,
    run_dir: Annotated[Path, typer.Option(help="supervisord's configuration, socket and the processes' logs")]
    = Path("var/cluster"),
) -> None:
    """Start 2 API replicas, 2 monitor workers, the outbox worker and the scheduler against the
    configured PostgreSQL (TRIPGUARD_DATABASE_URL) and NATS (TRIPGUARD_BUS_URL), after migrating the
    database, under supervisord: a process that dies is restarted and the others keep running;
    Ctrl-C stops them all."""
    from tripguard.core import cluster, migrations
    from tripguard.core.settings import get_settings

    with clean_errors():
        settings = get_settings()
        try:
            first, second = (int(p) for p in ports.split(","))
        except ValueError as exc:
            raise typer.BadParameter("two ports, as 8001,8002") from exc
        processes = cluster.procfile(shards=settings.bus_shards, ports=(first, second))
        if print_only:
            for name, command in processes.items():
                out.print(f"{name}: {command}", highlight=False)
            return
        if not settings.database_url.startswith("postgresql"):
            raise typer.BadParameter("a cluster shares one PostgreSQL: set TRIPGUARD_DATABASE_URL=postgresql+psycopg://…")
        if settings.bus_url == "memory://":
            raise typer.BadParameter("a cluster shares one NATS: set TRIPGUARD_BUS_URL=nats://127.0.0.1:4222")
        settings.check_safe_to_start()
    migrations.upgrade(settings.database_url)
    env = {**os.environ, "TRIPGUARD_RUN_JOBS": "false"}  # the scheduler runs them (it ignores this)
    cluster.run(processes, env, run_dir.resolve())


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the migrations up to REVISION (default: the newest)."""
    from tripguard.core import migrations
    from tripguard.core.settings import get_settings

    migrations.upgrade(get_settings().database_url, revision)
    out.print(f"database at {migrations.head_revision() if revision == 'head' else revision}")


@demo_app.command("bootstrap")
def demo_bootstrap(
    credentials_file: Annotated[Path, typer.Option()] = Path("var/demo-credentials.txt"),
    trips: Annotated[int | None, typer.Option(min=1, help="the first Porto trips the demo city replays "
                                                          "(default: all): their drivers are screened")] = None,
) -> None:
    """Development only: the demo's accounts (one per role), the operator backend's API key, app tokens and
    the demo's people, added where missing; then how to sign in and what to try."""
    from tripguard.core.settings import get_settings
    from tripguard.sim.bootstrap import bootstrap
    from tripguard.sim.console_text import print_demo

    settings = get_settings()
    if settings.env != "development":
        err.print("[red]error:[/red] demo accounts exist only in development")
        raise typer.Exit(2)
    err.print("Setting up the demo (its fleet is screened, trained and signed: half a minute the first time)…")
    with clean_errors():
        demo = bootstrap(settings, credentials_file=credentials_file, trips=trips)
    print_demo(out, settings, demo, credentials_file)


@demo_app.command("token")
def demo_token(
    role: Annotated[str, typer.Option(help="passenger, customer, driver or courier")] = "passenger",
    sub: Annotated[str, typer.Option(help="the person's id, as the operator's app would send it")] = "P-DEMO-001",
    minutes: Annotated[int, typer.Option(min=1, max=60)] = 60,
) -> None:
    """Development only: print an app token, as the operator's backend would mint it, to try SOS, contacts, shares."""
    from tripguard.core.identifiers import is_identifier
    from tripguard.core.settings import get_settings
    from tripguard.security.permissions import SUBJECT_ROLES
    from tripguard.sim.bootstrap import app_token

    settings = get_settings()
    if settings.env != "development" or settings.subject_token_secret is None:
        err.print("[red]error:[/red] demo tokens exist only in development, with the generated shared secret")
        raise typer.Exit(2)
    if role not in {r.value for r in SUBJECT_ROLES} or not is_identifier(sub):
        err.print("[red]error:[/red] --role must be passenger, customer, driver or courier, and --sub an id")
        raise typer.Exit(2)
    print(app_token(settings, role=role, sub=sub, minutes=minutes))


@demo_app.command("agency-push")
def demo_agency_push(
    worker: Annotated[str, typer.Option(help="the worker the simulated agency found a new record of")],
    record: Annotated[str, typer.Option(help="the record's category, e.g. drink_driving, drug_use, "
                                             "violent_crime")] = "drink_driving",
) -> None:
    """Development only: the simulated screening agency's continuous monitoring pushes a new record of a
    worker to the running TripGuard, as a signed callback (the generated callback secret): a disqualifying
    record suspends them at once, with a notice they may dispute, and their next trip raises a case."""
    import json
    import time

    import httpx2 as httpx

    from tripguard.core.settings import get_settings
    from tripguard.screening.providers import SIGNATURE_HEADER, sign

    settings = get_settings()
    secret = settings.screening_callback_secret
    if settings.env != "development" or secret is None:
        err.print("[red]error:[/red] the simulated agency pushes only in development, with the generated secret")
        raise typer.Exit(2)
    body = json.dumps({"id": f"demo-{secrets.token_hex(8)}", "type": "record.found", "worker": worker,
                       "records": [record]}).encode()
    url = f"{settings.base_url}/api/v1/screening/callbacks"
    try:
        answer = httpx.post(url, content=body, timeout=10, headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret.get_secret_value().encode(), body, int(time.time()))})
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/red] TripGuard does not answer at {url} ({type(exc).__name__}): is it running?")
        raise typer.Exit(1) from exc
    out.print(f"{url}: {answer.status_code} {answer.text}", highlight=False)
    if answer.status_code >= 300:
        raise typer.Exit(1)


def main() -> None:
    app()
