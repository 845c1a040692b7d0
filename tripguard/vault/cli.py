"""`tripguard keys …` and `tripguard backup …`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.cli_support import clean_errors, err

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tripguard.vault.service import Vault

out = Console(soft_wrap=True)
keys_app = typer.Typer(help="Keys: the audit signing key and the key-encryption keys.", no_args_is_help=True)
backup_app = typer.Typer(help="Encrypted, authenticated backups.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@keys_app.command("init")
def keys_init() -> None:
    """Create the audit signing key and the keyring (each once; neither is ever overwritten)."""
    from tripguard.audit.signing import KEY_FILE, create_key_file
    from tripguard.core.settings import get_settings
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    path = settings.key_dir / KEY_FILE
    if path.exists():
        out.print(f"{path} exists already")
    else:
        create_key_file(path)
        out.print(f"created {path}")
    with clean_errors():
        vault = build_vault(settings)
    out.print(f"key source {settings.key_source}: current key-encryption key version {vault.keys.current_version()}")


@keys_app.command("status")
def keys_status() -> None:
    from tripguard.core.db import make_engine, make_sessionmaker
    from tripguard.core.settings import get_settings
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    vault = build_vault(settings)
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        in_use = set(vault.versions_in_use(session))
    table = Table("version", "created", "retired", "wraps data keys")
    for info in vault.keys.versions():
        current = " (current)" if info.version == vault.keys.current_version() else ""
        table.add_row(f"{info.version}{current}", info.created_at, info.retired_at or "",
                      "yes" if info.version in in_use else "no")
    out.print(table)
    engine.dispose()


@contextlib.contextmanager
def _vault_and_database() -> Iterator[tuple[Vault, sessionmaker[Session]]]:
    from tripguard.core.db import make_engine, make_sessionmaker
    from tripguard.core.settings import get_settings
    from tripguard.vault.keys import build_vault
    from tripguard.vault.keysource import KeySourceError

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        yield build_vault(settings), make_sessionmaker(engine)
    except KeySourceError as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()


@keys_app.command("rotate")
def keys_rotate(
    resume: Annotated[bool, typer.Option("--resume", help="Finish an interrupted rotation; add no version")] = False,
    batch: Annotated[int, typer.Option(min=1, max=10000)] = 500,
) -> None:
    """Add a key-encryption key version and rewrap every data key under it, online."""
    from tripguard.audit import service as audit
    from tripguard.core.db import unit_of_work
    from tripguard.vault import rotation

    with _vault_and_database() as (vault, factory):
        if not resume:
            version = vault.keys.add_version()
            out.print(f"added key-encryption key version {version}")
        todo = rotation.remaining(factory, vault)
        with Progress(TextColumn("rewrapping data keys"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err) as progress:
            task = progress.add_task("rewrap", total=todo)
            done = rotation.rewrap_all(factory, vault, batch=batch,
                                       progress=lambda n: progress.advance(task, n))
        with unit_of_work(factory) as session:
            audit.record(session, actor=CLI_ACTOR, action="keys.rotate", target_type="kek",
                         target_id=str(vault.keys.current_version()), details={"rewrapped": done})
        out.print(f"rewrapped {done} data keys under version {vault.keys.current_version()}")


@keys_app.command("retire")
def keys_retire(version: int) -> None:
    """Destroy an old key-encryption key version; refused while any data key still uses it."""
    from tripguard.audit import service as audit
    from tripguard.core.db import unit_of_work
    from tripguard.vault import rotation

    with _vault_and_database() as (vault, factory):
        rotation.retire(factory, vault, version)
        with unit_of_work(factory) as session:
            audit.record(session, actor=CLI_ACTOR, action="keys.retire", target_type="kek", target_id=str(version))
        out.print(f"retired version {version}")


def _run_backup(action: str, path: Path) -> int:
    """Create or restore, then record it in the audit log; returns the rows written or read."""
    from tripguard.audit import service as audit
    from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
    from tripguard.core.settings import get_settings
    from tripguard.vault import backup
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    engine = make_engine(settings.database_url)
    operation = backup.create_backup if action == "create" else backup.restore_backup
    try:
        summary = operation(engine, build_vault(settings), path)
        rows = sum(summary.rows.values())
        with unit_of_work(make_sessionmaker(engine)) as session:
            audit.record(session, actor=CLI_ACTOR, action=f"backup.{action}", target_type="backup",
                         target_id=path.name[:64], details={"rows": rows, "schema": summary.schema_revision})
        return rows
    except (backup.BackupError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()


@backup_app.command("create")
def backup_create(path: Path) -> None:
    """Write an encrypted, authenticated snapshot of the whole database to PATH."""
    rows = _run_backup("create", path)
    out.print(f"backup written to {path}: {rows} rows")


@backup_app.command("restore")
def backup_restore(path: Path) -> None:
    """Restore PATH into an empty, migrated database; re-apply every erasure made since."""
    rows = _run_backup("restore", path)
    out.print(f"restored {rows} rows from {path}")
