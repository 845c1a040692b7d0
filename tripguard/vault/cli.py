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
from tripguard.vault.keybackup import BackupKeysDamaged

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from tripguard.vault.backup import BackupSummary, JournalOverride
    from tripguard.vault.service import Vault

out = Console(soft_wrap=True)
keys_app = typer.Typer(help="Keys: the audit signing key and the key-encryption keys.", no_args_is_help=True)
backup_app = typer.Typer(help="Encrypted, authenticated backups.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


ACCEPT_JOURNAL_LOSS = "--accept-journal-loss"


@keys_app.command("init")
def keys_init(
    accept_journal_loss: Annotated[str | None, typer.Option(
        ACCEPT_JOURNAL_LOSS, metavar="REASON",
        help="Start a new, empty erasure journal in place of a missing or damaged one in a key folder already in "
             "use. Every backup made before stays refused on restore without this flag; people erased before "
             "can come back from them. Recorded in the audit log with REASON")] = None,
) -> None:
    """Create the audit signing key, the keyring and the erasure journal (each once; none is ever overwritten)."""
    from tripguard.audit.signing import KEY_FILE, create_key_file
    from tripguard.core.settings import get_settings
    from tripguard.vault.journal import JournalError
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
    try:
        out.print(f"erasure journal: {len(vault.journal.entries())} erasures, verified")
    except JournalError as exc:
        _restart_journal(vault, str(exc), accept_journal_loss)


def _restart_journal(vault: Vault, problem: str, reason: str | None) -> None:
    """A key folder in use whose journal is lost: refused, unless the operator accepts the loss (audited)."""
    from tripguard.audit import service as audit
    from tripguard.core.cli_support import cli_session
    from tripguard.core.types import visible_reason

    try:
        reason = visible_reason(reason or "")
    except ValueError as exc:
        raise _fail(f"{problem}\nPut erasure-journal.jsonl and erasure-journal.head back from a copy of the key "
                    "folder taken after the last erasure. Only if they are lost for good: "
                    f"`tripguard keys init {ACCEPT_JOURNAL_LOSS} REASON` starts a new journal (audited); "
                    "REASON holds at least 5 letters or digits.") from exc
    with clean_errors(), cli_session() as session:
        audit.record(session, actor=CLI_ACTOR, action="keys.journal.restart", target_type="erasure_journal",
                     target_id=vault.journal.folder.name[:64],
                     details={"reason": reason[:300], "problem": problem[:300],
                              "salvageable": len(vault.journal.salvage())})
        kept = vault.journal.start_after_loss()
        # The database remembers every key it shredded: the new journal starts with them, so that a restore
        # of a backup made from now on keeps those people erased (and the self-assessment can pass again).
        shredded = vault.shredded_not_journaled(session, set(), limit=10**9)
        vault.journal.append_many([(subject_id, "journal restart: shredded in the database")
                                   for subject_id in shredded])
    err.print(f"[yellow]warning:[/yellow] started a new, empty erasure journal ({problem}). Backups made before "
              f"it are refused on restore unless {ACCEPT_JOURNAL_LOSS} is given, and people erased before it may "
              "then come back: erase them again. " + (f"Kept: {', '.join(str(k) for k in kept)}" if kept else ""))


@keys_app.command("status")
def keys_status() -> None:
    from tripguard.core.db import engine_for, make_sessionmaker
    from tripguard.core.settings import get_settings
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    vault = build_vault(settings)
    engine = engine_for(settings, "maintenance")
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
    from tripguard.core.db import engine_for, make_sessionmaker
    from tripguard.core.settings import get_settings
    from tripguard.vault.keys import build_vault
    from tripguard.vault.keysource import KeySourceError

    settings = get_settings()
    engine = engine_for(settings, "maintenance")
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
        todo = rotation.remaining(factory, vault=vault)
        with Progress(TextColumn("rewrapping data keys"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=err) as progress:
            task = progress.add_task("rewrap", total=todo)
            done = rotation.rewrap_all(factory, vault=vault, batch=batch,
                                       progress=lambda n: progress.advance(task, n))
        with unit_of_work(factory) as session:
            audit.record(session, actor=CLI_ACTOR, action="keys.rotate", target_type="kek",
                         target_id=str(vault.keys.current_version()), details={"rewrapped": done})
        out.print(f"rewrapped {done} data keys under version {vault.keys.current_version()}")


@keys_app.command("retire")
def keys_retire(
    version: int,
    force: Annotated[bool, typer.Option("--force", help="Retire even though kept backups need it (they die)")] = False,
) -> None:
    """Destroy an old key-encryption key version; refused while any data key or kept backup needs it."""
    from tripguard.audit import service as audit
    from tripguard.core.db import unit_of_work
    from tripguard.vault import rotation

    with _vault_and_database() as (vault, factory):
        try:
            needing = vault.register.needing(version)
        except BackupKeysDamaged as exc:
            raise _fail(str(exc)) from exc
        if needing and not force:
            names = "\n  ".join(f"{r.name} ({r.kind}, kept until {r.keep_until:%Y-%m-%d})" for r in needing)
            raise _fail(f"version {version} is needed by {len(needing)} backups still kept; retiring it kills "
                        f"them:\n  {names}\nrun again with --force to retire it anyway")
        rotation.retire(factory, vault=vault, version=version)
        for record in needing:
            err.print(f"[yellow]no longer opens:[/yellow] {record.name}")
        with unit_of_work(factory) as session:
            audit.record(session, actor=CLI_ACTOR, action="keys.retire", target_type="kek", target_id=str(version))
        out.print(f"retired version {version}")


def _run_backup(action: str, path: Path, keys: Path | None = None,
                accept_journal_loss: str | None = None) -> BackupSummary:
    """Create or restore, then record it in the audit log."""
    from tripguard.audit import service as audit
    from tripguard.core.db import engine_for, make_sessionmaker, unit_of_work
    from tripguard.core.errors import InvalidInput
    from tripguard.core.settings import get_settings
    from tripguard.vault import backup
    from tripguard.vault.journal import JournalError
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    engine = engine_for(settings, "maintenance")
    try:
        # A restore never starts a journal: a missing one must stop it (check_journal_for_restore).
        vault = build_vault(settings, journal_may_start=action == "create")
        if action == "create":
            summary = backup.create_backup(engine, vault, path, retention_days=settings.backup_retention_days)
        else:
            steps = backup.restore_steps()
            summary = backup.restore_backup(engine, vault, path, keys_path=keys, after_erasures=steps.after_erasures,
                                            rebuild_blind_indexes=steps.rebuild_blind_indexes,
                                            accept_journal_loss=accept_journal_loss)
        with unit_of_work(make_sessionmaker(engine)) as session:
            audit.record(session, actor=CLI_ACTOR, action=f"backup.{action}", target_type="backup",
                         target_id=path.name[:64], details={"rows": sum(summary.rows.values()),
                                                            "schema": summary.schema_revision,
                                                            "erasures_applied": summary.erasures})
            if summary.journal_override is not None:
                _audit_journal_override(session, path, summary.journal_override)
        return summary
    except (backup.BackupError, JournalError, BackupKeysDamaged, OSError) as exc:
        raise _fail(str(exc)) from exc
    except InvalidInput as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()


@backup_app.command("create")
def backup_create(path: Path) -> None:
    """Write an encrypted snapshot to PATH (no data keys) and its key backup to PATH.keys."""
    summary = _run_backup("create", path)
    out.print(f"backup written to {path}: {sum(summary.rows.values())} rows; key backup {summary.keys_path} "
              f"(opens for {_window_days()} days, then never again)")


def _audit_journal_override(session: Session, path: Path, override: JournalOverride) -> None:
    from tripguard.audit import service as audit

    audit.record(session, actor=CLI_ACTOR, action="backup.restore.journal_override", target_type="backup",
                 target_id=path.name[:64],
                 details={"reason": override.reason[:300], "problem": override.problem[:300],
                          **{f"head_{name}": count for name, count in override.heads.items()},
                          "journal_count": override.journal_count, "erasures_reapplied": override.reapplied})


@backup_app.command("restore")
def backup_restore(
    path: Path,
    keys: Annotated[Path | None, typer.Option(
        help="A key backup made with or after PATH (default: PATH.keys); `tripguard keys backup` makes one")] = None,
    accept_journal_loss: Annotated[str | None, typer.Option(
        ACCEPT_JOURNAL_LOSS, metavar="REASON",
        help="Restore even though the erasure journal is missing, damaged or older than PATH. People erased after "
             "PATH was made may become readable again. Recorded in the audit log with REASON")] = None,
) -> None:
    """Restore PATH into an empty, migrated database; re-apply every erasure in the journal."""
    summary = _run_backup("restore", path, keys, accept_journal_loss)
    out.print(f"restored {sum(summary.rows.values())} rows from {path}; {summary.erasures} erasures re-applied")
    if (override := summary.journal_override) is not None:
        err.print(f"[yellow]warning:[/yellow] restored without a complete erasure journal ({override.problem}); "
                  f"{override.reapplied} erasures could still be re-applied. People erased after {path.name} was "
                  "made may be readable again: erase them again (from your records of requests). Recorded in the "
                  "audit log as backup.restore.journal_override.")
        if override.journal_count is None:
            err.print(f"[yellow]warning:[/yellow] erasures are refused until the journal is put back or restarted: "
                      f"`tripguard keys init {ACCEPT_JOURNAL_LOSS} REASON`.")


@backup_app.command("verify")
def backup_verify(
    path: Path,
    keys: Annotated[Path | None, typer.Option(
        help="The key backup to check with PATH (default: PATH.keys, which must be the one made with it)")] = None,
) -> None:
    """Check PATH and its key backup whole without restoring (writes to no database): every chunk, the
    headers, the schema's tables, every row's types, the row counts. Exits 2 on any damage."""
    from tripguard.core.settings import get_settings
    from tripguard.vault.backup import BackupError
    from tripguard.vault.backup_verify import verify_backup
    from tripguard.vault.keys import build_vault
    from tripguard.vault.keysource import KeySourceError

    try:
        report = verify_backup(build_vault(get_settings()), path, keys_path=keys)
    except (BackupError, KeySourceError, BackupKeysDamaged, OSError) as exc:
        raise _fail(f"{path} does not verify: {exc}") from exc
    table = Table("table", "rows")
    for name, count in sorted(report.rows.items()):
        if count:
            table.add_row(name, str(count))
    out.print(table)
    opens = (f"opens until {report.key_backup_opens_until:%Y-%m-%d %H:%M} UTC" if report.key_backup_opens_until
             else "opens no longer")
    counts = "match the counts taken in its snapshot" if report.counts_recorded \
        else "(this older format records no counts)"
    out.print(f"{path}: OK — made {report.created_at}, schema {report.schema_revision}, {len(report.rows)} tables, "
              f"{sum(report.rows.values())} rows {counts}; key backup {report.keys_path}: OK, {report.data_keys} data "
              f"keys, {opens}")


@backup_app.command("drill")
def backup_drill(
    path: Path,
    keys: Annotated[Path | None, typer.Option(
        help="A key backup made with or after PATH (default: PATH.keys)")] = None,
) -> None:
    """Restore PATH into a throw-away scratch database (never the live one), count every table against the
    backup, drop the scratch database, and record the drill in the live audit log (the evidence
    `tripguard security check` looks for)."""
    from tripguard.audit import service as audit
    from tripguard.core.db import engine_for, make_sessionmaker, unit_of_work
    from tripguard.core.errors import InvalidInput
    from tripguard.core.settings import get_settings
    from tripguard.vault.backup import BackupError, restore_steps
    from tripguard.vault.drill import run_drill
    from tripguard.vault.journal import JournalError
    from tripguard.vault.keys import build_vault
    from tripguard.vault.keysource import KeySourceError

    settings = get_settings()
    engine = engine_for(settings, "maintenance")
    try:
        def record(action: str, details: dict[str, str | int | float | bool | None]) -> None:
            with unit_of_work(make_sessionmaker(engine)) as session:
                audit.record(session, actor=CLI_ACTOR, action=action, target_type="backup", target_id=path.name[:64],
                             details=details)

        try:
            steps = restore_steps()
            report = run_drill(settings, build_vault(settings), path, keys_path=keys,
                               after_erasures=steps.after_erasures, rebuild_blind_indexes=steps.rebuild_blind_indexes)
        except (BackupError, JournalError, InvalidInput, KeySourceError, BackupKeysDamaged, OSError) as exc:
            record("backup.drill_failed", {"error": str(exc)[:300]})
            raise _fail(f"restore drill failed: {exc}") from exc
        summary = report.summary
        record("backup.drill", {"rows": sum(summary.rows.values()), "tables": len(summary.rows),
                                "schema": summary.schema_revision, "erasures_applied": summary.erasures,
                                "backend": report.backend, "seconds": round(report.seconds, 1)})
    finally:
        engine.dispose()
    changed = ", ".join(f"{name} {delta:+d}" for name, delta in sorted(report.added_by_restore.items()))
    out.print(f"restore drill passed: {sum(summary.rows.values())} rows in {len(summary.rows)} tables restored from "
              f"{path} into a scratch {report.backend} database and counted; {summary.erasures} erasures re-applied"
              f"{f' ({changed})' if changed else ''}; scratch database dropped; recorded in the audit log")


def _window_days() -> int:
    from tripguard.core.settings import get_settings

    return get_settings().key_backup_window_days


@keys_app.command("backup")
def keys_backup(path: Path) -> None:
    """Write today's data keys to PATH (a key backup, openable for the key-backup window only)."""
    from tripguard.core.db import engine_for
    from tripguard.core.settings import get_settings
    from tripguard.vault import backup
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    engine = engine_for(settings, "maintenance")
    try:
        rows = backup.create_key_backup(engine, build_vault(settings), path)
    except (backup.BackupError, BackupKeysDamaged, OSError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()
    out.print(f"key backup written to {path}: {rows} data keys (opens for {settings.key_backup_window_days} days)")
