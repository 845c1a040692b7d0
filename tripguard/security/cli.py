"""`tripguard staff …`, `tripguard apikey …` and `tripguard security scan` (known vulnerabilities in the
installed dependencies, recorded as evidence; in the shell's `security` group, tripguard/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.cli_support import clean_errors, cli_session, err
from tripguard.security.permissions import API_KEY_SCOPES, Permission, Role

out = Console(soft_wrap=True)
staff_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
apikey_app = typer.Typer(help="Integration API keys for the operator's backend.", no_args_is_help=True)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@staff_app.command("create")
def staff_create(
    username: str,
    display_name: Annotated[str, typer.Option("--name", help="Display name")],
    role: Annotated[list[Role], typer.Option("--role", help="Repeat for several roles")] = [],  # noqa: B006
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Create a staff account (the password is read from stdin or prompted, never an argument)."""
    from tripguard.security import service

    password = _read_password(password_stdin)
    with clean_errors(), cli_session() as session:
        staff = service.create_staff(session, actor=CLI_ACTOR, username=username, display_name=display_name,
                                     password=password, roles=set(role))
        out.print(f"created {staff.username} ({staff.id}) roles: {', '.join(staff.roles) or 'none'}")


@staff_app.command("list")
def staff_list() -> None:
    from tripguard.security import service

    with cli_session() as session:
        table = Table("user name", "name", "roles", "2FA", "state")
        for staff in service.list_staff(session):
            state = "disabled" if staff.disabled_at else "active"
            table.add_row(staff.username, staff.display_name, ", ".join(staff.roles),
                          "yes" if staff.totp_secret else "no", state)
        out.print(table)


@apikey_app.command("create")
def apikey_create(
    name: str,
    scope: Annotated[list[Permission], typer.Option("--scope", help="Default: every integration scope")] = [],  # noqa: B006
) -> None:
    """Create a key and print it once; TripGuard keeps only a keyed hash."""
    from tripguard.core.settings import get_settings
    from tripguard.security import service

    settings = get_settings()
    with clean_errors(), cli_session(settings) as session:
        key, secret = service.create_api_key(session, settings=settings, actor=CLI_ACTOR, name=name,
                                             scopes=set(scope) or set(API_KEY_SCOPES))
    err.print(f"API key {key.id} ({', '.join(key.scopes)}); shown once:")
    print(secret)


@apikey_app.command("revoke")
def apikey_revoke(key_id: str) -> None:
    from tripguard.security import service

    with clean_errors(), cli_session() as session:
        key = service.revoke_api_key(session, actor=CLI_ACTOR, key_id=key_id)
        out.print(f"revoked {key.id}")


def dependency_scan() -> None:
    """Audit the installed dependencies with pip-audit (PyPI's vulnerability data: needs the network) and
    record the result as evidence. A dependency that could not be audited is reported as such, not as safe."""
    pip_audit = Path(sys.executable).with_name("pip-audit")
    run = subprocess.run([str(pip_audit), "--local", "-f", "json", "--progress-spinner", "off"],  # noqa: S603 - ours
                         capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        err.print(f"[red]error:[/red] pip-audit gave no report: {run.stderr.strip()[-500:]}")
        raise typer.Exit(2) from None
    dependencies = report.get("dependencies", [])
    skipped = [d["name"] for d in dependencies if d.get("skip_reason")]
    vulnerable = {d["name"]: [v["id"] for v in d.get("vulns", [])] for d in dependencies if d.get("vulns")}
    audited = len(dependencies) - len(skipped)
    from tripguard.audit import service as audit  # here: every other command starts without the ORM

    with clean_errors(), cli_session() as session:
        audit.record(session, actor=CLI_ACTOR, action="security.scan", target_type="dependencies",
                     target_id="pip-audit",
                     outcome="success" if not vulnerable and not skipped else "denied",
                     details={"audited": audited, "vulnerable": len(vulnerable), "skipped": len(skipped),
                              "findings": ",".join(f"{n}:{'/'.join(ids)}"
                                                   for n, ids in sorted(vulnerable.items()))[:900]})
    out.print(f"{audited} dependencies audited, {len(vulnerable)} vulnerable, {len(skipped)} not audited")
    for name, ids in sorted(vulnerable.items()):
        out.print(f"  [red]{name}[/red]: {', '.join(ids)}")
    if skipped:
        out.print(f"  not audited (the vulnerability service did not know them, or was unreachable): "
                  f"{', '.join(skipped[:20])}{' …' if len(skipped) > 20 else ''}")
    if vulnerable or skipped:
        raise typer.Exit(1)
