"""`tripguard staff …` and `tripguard apikey …`."""

from __future__ import annotations

import sys
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
        key, secret = service.create_api_key(session, settings, actor=CLI_ACTOR, name=name,
                                             scopes=set(scope) or set(API_KEY_SCOPES))
    err.print(f"API key {key.id} ({', '.join(key.scopes)}); shown once:")
    print(secret)


@apikey_app.command("revoke")
def apikey_revoke(key_id: str) -> None:
    from tripguard.security import service

    with clean_errors(), cli_session() as session:
        key = service.revoke_api_key(session, actor=CLI_ACTOR, key_id=key_id)
        out.print(f"revoked {key.id}")
