"""What every CLI command needs: a session that commits, and a clean error exit.

Heavy libraries are imported inside the functions, so that `tripguard --help` and light commands
(`monitor replay`, `sim porto`) start in well under a second.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tripguard.core.settings import Settings

err = Console(stderr=True, soft_wrap=True)

SESSION_SETUP: list[Callable[[Settings], None]] = []
# What a command's settings set up before its session opens, registered by the packages that need it
# (notify: the deployment's SMS signature) at start-up (`tripguard.wiring`).


def on_cli_session(setup: Callable[[Settings], None]) -> None:
    if setup not in SESSION_SETUP:
        SESSION_SETUP.append(setup)


@contextlib.contextmanager
def cli_session(settings: Settings | None = None) -> Iterator[Session]:
    """A unit of work on the configured database, for one CLI command."""
    from tripguard.core.db import engine_for, make_sessionmaker, unit_of_work
    from tripguard.core.settings import get_settings

    settings = settings or get_settings()
    for setup in SESSION_SETUP:  # what this command queues signs with the deployment's signature
        setup(settings)
    engine = engine_for(settings)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()


@contextlib.contextmanager
def clean_errors() -> Iterator[None]:
    """Domain and settings errors (a bad setting: one line each, named as in the environment) become red lines
    and exit code 2, not a traceback."""
    from pydantic import ValidationError
    from rich.markup import escape

    from tripguard.core.errors import DomainError
    from tripguard.core.settings import SettingsError

    try:
        yield
    except DomainError as exc:
        detail = exc.detail or exc.title
        if exc.errors:
            detail += ": " + "; ".join(f"{e.field} {e.message}" for e in exc.errors)
        err.print(f"[red]error:[/red] {detail}")
        raise typer.Exit(2) from exc
    except SettingsError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ValidationError as exc:  # a setting from the environment or .env: which one, and why
        if exc.title != "Settings":
            raise
        for problem in exc.errors(include_url=False, include_input=False):
            field = "_".join(str(part) for part in problem["loc"]).upper()
            message = problem["msg"].removeprefix("Value error, ")
            err.print(f"[red]error:[/red] {escape(f'TRIPGUARD_{field}: ' if field else '')}{escape(message)}")
        raise typer.Exit(2) from exc
