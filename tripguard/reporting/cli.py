"""`tripguard report …` and `tripguard security check` (the 等保 self-assessment: reporting's
`security_check`, in the shell's `security` group beside security's `scan`, tripguard/cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tripguard.audit.actor import CLI_ACTOR
from tripguard.core.cli_support import clean_errors, cli_session, err
from tripguard.core.clock import utcnow

out = Console(soft_wrap=True)


def security_check() -> None:
    """The 等保 2.0 level-3 controls an application answers for, against evidence from this system.
    Exits 1 when a control fails."""
    from tripguard.core.settings import get_settings
    from tripguard.reporting.security_check import assess
    from tripguard.vault.keys import key_source

    settings = get_settings()
    with clean_errors(), cli_session(settings) as session:
        assessment = assess(session, settings=settings, keys=key_source(settings), now=utcnow())
    table = Table(title=f"Security self-assessment: {assessment.score * 100:.0f} % of controls met")
    for column in ("control", "area", "", "evidence", "to do"):
        table.add_column(column)
    for control, evidence in assessment.results:
        table.add_row(control.key, control.clause, "[green]pass[/green]" if evidence.passed else "[red]FAIL[/red]",
                      evidence.found % evidence.values, evidence.gap or "")
    out.print(table)
    if not assessment.passed:
        raise typer.Exit(1)


report_app = typer.Typer(help="Evaluation reports.", no_args_is_help=True)


@report_app.command("quarterly")
def quarterly(
    quarter: Annotated[str, typer.Option(help="e.g. 2026Q3 (the current quarter by default)")] = "",
    fmt: Annotated[str, typer.Option("--format", help="html, pdf or csv")] = "html",
    out_path: Annotated[Path | None, typer.Option("--out", help="the file to write (default: "
                                                                  "report-<quarter>.<format>)")] = None,
    lang: Annotated[str, typer.Option(help="zh_CN or en")] = "zh_CN",
) -> None:
    """The quarterly evaluation: every KPI against its target with four quarters of trend, the plan's
    five risks, and the security self-assessment."""
    from rich.progress import Progress

    from tripguard.core import i18n
    from tripguard.core.settings import get_settings
    from tripguard.reporting import periods, render
    from tripguard.reporting import quarterly as quarterly_report
    from tripguard.vault.keys import key_source

    if fmt not in render.FORMATS:
        err.print(f"[red]error:[/red] --format is one of {', '.join(render.FORMATS)}")
        raise typer.Exit(2)
    if lang not in i18n.LOCALES:
        err.print(f"[red]error:[/red] --lang is one of {', '.join(i18n.LOCALES)}")
        raise typer.Exit(2)
    if out_path is not None and out_path.suffix.lower() in {f".{f}" for f in render.FORMATS} \
            and out_path.suffix.lower() != f".{fmt}":
        err.print(f"[red]error:[/red] --out {out_path} names a .{out_path.suffix[1:]} file for a {fmt} report")
        raise typer.Exit(2)
    settings = get_settings()
    now = utcnow()
    label = quarter or periods.current_quarter(now, settings.timezone)
    out_path = out_path or Path(f"report-{label}.{fmt}")
    with clean_errors(), cli_session(settings) as session, Progress(transient=True) as bar:
        task = bar.add_task(f"quarterly report {label}", total=quarterly_report.TREND_QUARTERS + 2)

        def step(what: str) -> None:
            bar.update(task, advance=1, description=f"{label}: {what}")

        report = quarterly_report.build(session, settings=settings, keys=key_source(settings),
                                        quarter=label, now=now, progress=step)
        data = render.render(report, fmt, lang, settings.timezone)
        bar.update(task, advance=1, description=f"{label}: written")
    out_path.write_bytes(data)
    out.print(f"{out_path}: the {label} report ({fmt}, {lang}, {len(data):,} bytes)")


@report_app.command("close")
def close(quarter: Annotated[str, typer.Option(help="the finished quarter to close, e.g. 2026Q3")]) -> None:
    """Close a finished quarter: compute its figures from its records once more and freeze them; every
    later report shows them. Closing a closed quarter changes nothing."""
    from tripguard.core.settings import get_settings
    from tripguard.reporting import closing

    settings = get_settings()
    with clean_errors(), cli_session(settings) as session:
        row, made = closing.close(session, label=quarter, actor=CLI_ACTOR, now=utcnow(),
                                  timezone=settings.timezone,
                                  ack_seconds=settings.incident_ack_seconds)
        version, count = row.version, len(row.figures)
    out.print(f"{quarter}: {'closed' if made else 'already closed'}, version {version} ({count} figures frozen)")


@report_app.command("restate")
def restate(
    quarter: Annotated[str, typer.Option(help="the closed quarter, e.g. 2026Q3")],
    version: Annotated[int, typer.Option(help="the version being restated (the latest)", min=1)],
    reason: Annotated[str, typer.Option(help="why the figures are restated (kept and audited)")],
) -> None:
    """Restate a closed quarter: recompute its figures as the next version, for a reason (audited)."""
    from tripguard.core.settings import get_settings
    from tripguard.reporting import closing

    settings = get_settings()
    with clean_errors(), cli_session(settings) as session:
        row = closing.restate(session, label=quarter, version=version, reason=reason,
                              actor=CLI_ACTOR, now=utcnow(),
                              timezone=settings.timezone, ack_seconds=settings.incident_ack_seconds)
        made = row.version
    out.print(f"{quarter}: restated as version {made}")
