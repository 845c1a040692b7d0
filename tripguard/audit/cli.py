"""`tripguard audit verify|head|prove`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tripguard.core.cli_support import clean_errors, cli_session, err

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
out = Console(soft_wrap=True)


@audit_app.command("verify")
def verify(
    heads: Annotated[Path | None, typer.Option(help="Tree heads a supervisor kept (JSON array or lines)")] = None,
) -> None:
    """Rebuild the Merkle tree from the stored rows; check every kept signed tree head.

    Exits 1 naming the first bad entry when a row was changed, deleted, inserted or reordered.
    """
    from tripguard.audit.signing import load_signing_key
    from tripguard.audit.verify import load_heads_file, verify_log
    from tripguard.core.settings import get_settings

    settings = get_settings()
    with clean_errors(), cli_session(settings) as session:
        kept = load_heads_file(heads) if heads else []
        report = verify_log(session, public_key=load_signing_key(settings).public_key(),
                            extra_heads=kept)
    if report.ok:
        pending = f"; {report.pending} entries await sequencing" if report.pending else ""
        out.print(f"OK: {report.tree_size} entries, root {report.root_hash.hex()}, "
                  f"{report.heads_checked} signed tree heads match{pending}")
        return
    where = f" (first bad entry: {report.first_bad_seq})" if report.first_bad_seq is not None else ""
    err.print(f"[red]FAILED[/red]{where}")
    for problem in report.problems:
        err.print(f"  - {problem}")
    raise typer.Exit(1)


@audit_app.command("head")
def head(sign: Annotated[bool, typer.Option("--sign", help="Sign a new head first")] = False) -> None:
    """Print the latest signed tree head as JSON (the form to keep outside TripGuard)."""
    from tripguard.audit import service
    from tripguard.audit.schemas import TreeHeadRead
    from tripguard.audit.signing import load_signing_key
    from tripguard.core.settings import get_settings

    settings = get_settings()
    with clean_errors(), cli_session(settings) as session:
        latest = service.sign_new_head(session, key=load_signing_key(settings)) if sign \
            else service.latest_head(session)
        if latest is None:
            err.print("no tree head signed yet; use --sign")
            raise typer.Exit(1)
        print(TreeHeadRead.of(latest).model_dump_json())


@audit_app.command("prove")
def prove(
    index: Annotated[int | None, typer.Option(help="Inclusion proof of this entry")] = None,
    first: Annotated[int | None, typer.Option(help="Consistency proof from this tree size")] = None,
    size: Annotated[int | None, typer.Option(help="Tree size (default: current)")] = None,
) -> None:
    """Print an inclusion proof (--index) or a consistency proof (--first) as JSON."""
    from tripguard.audit import service
    from tripguard.audit.schemas import ConsistencyProofRead, InclusionProofRead

    if (index is None) == (first is None):
        err.print("[red]error:[/red] give exactly one of --index and --first")
        raise typer.Exit(2)
    with clean_errors(), cli_session() as session:
        if index is not None:
            body = InclusionProofRead.of(service.prove_inclusion(session, index=index, size=size)).model_dump()
        else:
            assert first is not None
            body = ConsistencyProofRead.of(service.prove_consistency(session, first=first, second=size)).model_dump()
    print(json.dumps(body))
