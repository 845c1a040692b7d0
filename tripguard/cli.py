"""The `tripguard` command: serve, database, staff, API keys, keys, backups, audit, privacy, monitoring.

Sub-command modules import their heavy libraries inside the commands, so the command starts fast.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tripguard.audit.actor import CLI_ACTOR
from tripguard.audit.cli import audit_app
from tripguard.core.cli_support import clean_errors, cli_session, err
from tripguard.delivery.cli import carrier_app
from tripguard.notify.cli import worker_app
from tripguard.privacy.cli import retention_app
from tripguard.reporting.cli import report_app, security_app
from tripguard.security.cli import apikey_app, staff_app
from tripguard.telematics.cli import monitor_app, sim_app
from tripguard.vault.cli import backup_app, keys_app

app = typer.Typer(help="TripGuard: safety and privacy platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo set-up of `make run`.", no_args_is_help=True)
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
cluster_app = typer.Typer(help="The scaled-out set on one machine.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")
out = Console(soft_wrap=True)

DEMO_ACCOUNTS = [
    ("admin", "System Administrator 系统管理员", "system_admin"),
    ("security", "Security Administrator 安全管理员", "security_admin"),
    ("auditor", "Audit Administrator 审计管理员", "audit_admin"),
    ("agent", "Safety Agent 安全专员", "safety_agent"),
    ("supervisor", "Supervisor 监督员", "supervisor"),
    ("dpo", "Privacy Officer 个人信息保护负责人", "privacy_officer"),
    ("trainer", "Trainer 培训专员", "trainer"),
    ("hr", "HR Officer 人事专员", "hr_officer"),
]
DEMO_NOTICE = {
    "version": "2026-11", "purposes": ["emergency", "delivery", "support", "subject_request"],
    "categories": ["user.name", "user.contact.phone_number", "user.contact.email"],
    "retention_zh": "行程数据保存两年；外卖联系方式在订单完成后 72 小时删除。",
    "retention_en": "Trip data is kept for two years; delivery contact details are deleted 72 hours after the order.",
    "text_zh": "为保障出行与配送安全，我们收集您的姓名和联系方式，仅用于紧急救助、订单履约和答复您的请求。",
    "text_en": "To keep trips and deliveries safe we collect your name and contact details, used only for emergency "
               "help, fulfilling your order and answering your requests.",
}


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the API and console (embedded default: SQLite, in-process bus)."""
    import uvicorn

    from tripguard.app import create_app
    from tripguard.core.settings import get_settings

    with clean_errors():
        get_settings().check_safe_to_start()
    site = create_app()

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            # Open live streams would otherwise hold the process until every viewer leaves.
            site.state.live_monitor.feed.close_viewers()
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    err.print(f"TripGuard listening on http://{host}:{port} (console: /console, API docs: /docs)")
    # X-Forwarded-For: TRIPGUARD_TRUSTED_PROXIES only
    Server(uvicorn.Config(site, host=host, port=port, proxy_headers=False, log_config=None)).run()


@app.command()
def scheduler(poll: Annotated[float, typer.Option(min=0.1, help="seconds between a standby's tries to take over")] = 1.0,
              ) -> None:
    """Run the background jobs (audit sequencing and heads, retention, escalation, check-ins) for a
    scaled-out deployment: one scheduler leads at a time (a lease it renews every few seconds; see
    TRIPGUARD_LEADER_LEASE_SECONDS), the others stand by. Start the API processes with
    TRIPGUARD_RUN_JOBS=false; `tripguard worker outbox` sends."""
    import signal
    import threading

    from tripguard.app import background_jobs, create_app
    from tripguard.core.leader import Lease, fenced_sessionmaker
    from tripguard.core.messaging import start_in_thread
    from tripguard.core.scheduler import run_jobs
    from tripguard.core.settings import get_settings
    from tripguard.telematics.feed import connect_feed

    with clean_errors():
        settings = get_settings()
        settings.check_safe_to_start()
    site = create_app(settings)
    if settings.bus_url != "memory://":  # escalations and expired check-ins reach every console replica
        start_in_thread(connect_feed(site.state.live_monitor.feed, settings, name="tripguard-scheduler",
                                     viewers=False))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    lease = Lease(site.state.engine, seconds=settings.leader_lease_seconds)
    site.state.sessionmaker = fenced_sessionmaker(site.state.engine, lease)  # every job's transactions
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
) -> None:
    """Development only: create the demo staff accounts once, and print how to sign in."""
    from tripguard.core.settings import get_settings
    from tripguard.privacy import service as privacy_service
    from tripguard.security import service as security_service
    from tripguard.security.permissions import Role

    settings = get_settings()
    if settings.env != "development":
        err.print("[red]error:[/red] demo accounts exist only in development")
        raise typer.Exit(2)
    with clean_errors(), cli_session(settings) as session:
        if not security_service.list_staff(session):
            lines = []
            for username, name, role in DEMO_ACCOUNTS:
                password = secrets.token_urlsafe(12)
                security_service.create_staff(session, actor=CLI_ACTOR, username=username,
                                              display_name=name, password=password, roles={Role(role)})
                lines.append(f"{username:<11} {password:<18} {role}")
            privacy_service.publish_notice(session, actor=CLI_ACTOR, **DEMO_NOTICE)  # type: ignore[arg-type]
            credentials_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write("\n".join(lines) + "\n")
    if credentials_file.exists():
        out.print(f"\n[bold]TripGuard console:[/bold] {settings.base_url}/console   API docs: {settings.base_url}/docs")
        out.print(f"Demo accounts (from {credentials_file}; privileged roles enrol an authenticator app "
                  "at first sign-in, and everyone signs the confidentiality agreement, Agreement in the menu, "
                  "before opening personal data):")
        out.print(credentials_file.read_text())


@demo_app.command("token")
def demo_token(
    role: Annotated[str, typer.Option(help="passenger, customer, driver or courier")] = "passenger",
    sub: Annotated[str, typer.Option(help="the person's id, as the operator's app would send it")] = "P1",
    minutes: Annotated[int, typer.Option(min=1, max=60)] = 60,
) -> None:
    """Development only: print an app token, as the operator's backend would mint it, to try SOS, contacts, shares."""
    import jwt

    from tripguard.core.clock import utcnow
    from tripguard.core.identifiers import is_identifier
    from tripguard.core.settings import get_settings
    from tripguard.security.permissions import SUBJECT_ROLES

    settings = get_settings()
    if settings.env != "development" or settings.subject_token_secret is None:
        err.print("[red]error:[/red] demo tokens exist only in development, with the generated shared secret")
        raise typer.Exit(2)
    if role not in {r.value for r in SUBJECT_ROLES} or not is_identifier(sub):
        err.print("[red]error:[/red] --role must be passenger, customer, driver or courier, and --sub an id")
        raise typer.Exit(2)
    now = utcnow()
    minutes = min(minutes, settings.subject_token_max_ttl_seconds // 60)
    claims = {"sub": sub, "role": role, "aud": settings.subject_token_audience, "iat": now,
              "exp": now + timedelta(minutes=minutes)}
    if settings.subject_token_issuer:
        claims["iss"] = settings.subject_token_issuer
    print(jwt.encode(claims, settings.subject_token_secret.get_secret_value(), algorithm="HS256"))


def main() -> None:
    app()
