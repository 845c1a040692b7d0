"""Audit log benchmark: append throughput through the real path, verification and head signing.

Every audited request appends through `audit.service.record` under the log lock, so this bounds
how many audited writes per second one database can take.

    .venv/bin/python -m bench.audit [--entries 20000] [--backends sqlite,postgres]

Writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from rich.progress import Progress
from sqlalchemy import create_engine, text

from bench.report import machine_line, write_section
from tripguard.audit import service as audit
from tripguard.audit.service import Actor
from tripguard.audit.signing import create_key_file
from tripguard.audit.verify import verify_log
from tripguard.core.db import make_engine, make_sessionmaker
from tripguard.core.migrations import upgrade

POSTGRES_ADMIN = os.environ.get("TRIPGUARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def fresh_url(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text('DROP DATABASE IF EXISTS "tg_bench" WITH (FORCE)'))
        connection.execute(text('CREATE DATABASE "tg_bench"'))
    admin.dispose()
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + "/tg_bench"


def append(factory, count: int, worker: int, progress=None, task=None) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        with factory() as session:
            audit.record(session, actor=Actor("staff", f"stf_{worker}"), action="bench.append",
                         target_type="thing", target_id=str(i), details={"i": i})
            session.commit()
        if progress is not None:
            progress.advance(task)


def run_backend(backend: str, entries: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_url(backend, Path(tmp))
        upgrade(url)
        engine = make_engine(url, pool_size=8) if backend == "postgres" else make_engine(url)
        factory = make_sessionmaker(engine)
        key = create_key_file(Path(tmp) / "audit.key")

        with Progress(transient=True) as progress:
            task = progress.add_task(f"{backend}: 1 thread", total=entries)
            started = time.perf_counter()
            append(factory, entries, 0, progress, task)
            results["append_1_thread_per_s"] = entries / (time.perf_counter() - started)

            threads_n = 4
            per_thread = entries // threads_n
            task = progress.add_task(f"{backend}: {threads_n} threads", total=per_thread * threads_n)
            threads = [threading.Thread(target=append, args=(factory, per_thread, w, progress, task))
                       for w in range(threads_n)]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results["append_4_threads_per_s"] = per_thread * threads_n / (time.perf_counter() - started)

        with factory() as session:
            started = time.perf_counter()
            sequenced = audit.sequence_all(session)
            session.commit()
            results["sequence_per_s"] = sequenced / (time.perf_counter() - started)
            size = audit.tree_size(session)
            started = time.perf_counter()
            audit.sign_new_head(session, key)
            session.commit()
            results["sign_head_s"] = time.perf_counter() - started
            started = time.perf_counter()
            report = verify_log(session, key.public_key())
            results["verify_per_s"] = size / (time.perf_counter() - started)
            assert report.ok, report.problems
            seqs_ok = session.scalar(text("SELECT count(DISTINCT seq) FROM audit_entries")) == size
            assert seqs_ok, "appends from several threads must give distinct, contiguous indices"
        results["entries"] = size
        engine.dispose()
    return results


def write_report(rows: dict[str, dict[str, float]], entries: int) -> None:
    lines = [
        "## Audit log (`bench/audit.py`)",
        "",
        f"Command: `.venv/bin/python -m bench.audit --entries {entries}`. {machine_line()}",
        "Each append is one `audit.service.record` plus its own commit, as in a request. Writers take",
        "no lock; the sequencer then gives the committed entries contiguous leaf indices in batches",
        "(`sequence`), and a head is signed over all of them (`sign`).",
        "",
        "| backend | appends/s, 1 thread | appends/s, 4 threads | sequence (entries/s) | sign a head | verify (entries/s) | entries |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, r in rows.items():
        lines.append(
            f"| {backend} | {r['append_1_thread_per_s']:,.0f} | {r['append_4_threads_per_s']:,.0f} | "
            f"{r['sequence_per_s']:,.0f} | {r['sign_head_s'] * 1000:,.0f} ms | {r['verify_per_s']:,.0f} | "
            f"{r['entries']:,.0f} |"
        )
    write_section("audit", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    rows = {backend: run_backend(backend, args.entries) for backend in args.backends.split(",")}
    for backend, r in rows.items():
        print(backend, {k: round(v, 3) for k, v in r.items()})
    write_report(rows, args.entries)


if __name__ == "__main__":
    main()
