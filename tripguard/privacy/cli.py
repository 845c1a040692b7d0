"""`tripguard retention run [--dry-run]`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tripguard.audit.actor import CLI_ACTOR

retention_app = typer.Typer(help="Retention: erase what has been kept long enough.", no_args_is_help=True)
out = Console(soft_wrap=True)


@retention_app.command("run")
def run(dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only; erase nothing")] = False) -> None:
    """Apply every retention rule (legal holds are respected) and print the report."""
    from tripguard.core.db import engine_for, make_sessionmaker
    from tripguard.core.settings import get_settings
    from tripguard.privacy.retention import rules, run_retention
    from tripguard.vault.keys import build_vault

    settings = get_settings()
    engine = engine_for(settings, "maintenance")
    try:
        with out.status("applying retention rules…"):
            result = run_retention(make_sessionmaker(engine), vault=build_vault(settings), settings=settings,
                                   dry_run=dry_run, actor=CLI_ACTOR)
    finally:
        engine.dispose()
    descriptions = {rule.name: rule.description for rule in rules(settings)}
    descriptions["key_backup_keys"] = "keys of key backups past the key-backup window (those backups die)"
    table = Table("rule", "kept for (days)", "would erase" if dry_run else "erased", "held", "what")
    for name, counts in result.report.items():
        assert isinstance(counts, dict)
        table.add_row(name, str(counts["keep_days"]), str(counts.get("would_erase", counts.get("erased"))),
                      str(counts["held"]), descriptions[name])
    out.print(table)
    out.print(f"run {result.id}{' (dry run)' if dry_run else ''}")
