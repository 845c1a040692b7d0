"""Audit log benchmark: append throughput through the real path, verification and head signing.

Every audited request appends through `audit.service.record` under the log lock, so this bounds
how many audited writes per second one database can take.

    .venv/bin/python -m bench.audit [--entries 20000] [--backends sqlite,postgres] [--proof-entries 1000000]

It also times inclusion and consistency proofs over a log of --proof-entries (SQLite): each reads
O(log n) stored subtree hashes, so the time should not grow with the log.

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
            audit.sign_new_head(session, key=key)
            session.commit()
            results["sign_head_s"] = time.perf_counter() - started
            started = time.perf_counter()
            report = verify_log(session, public_key=key.public_key())
            results["verify_per_s"] = size / (time.perf_counter() - started)
            if not report.ok:
                raise SystemExit(f"the log does not verify: {report.problems}")
            if session.scalar(text("SELECT count(DISTINCT seq) FROM audit_entries")) != size:
                raise SystemExit("appends from several threads must give distinct, contiguous indices")
        results["entries"] = size
        engine.dispose()
    return results


def run_proofs(entries: int, samples: int = 200) -> dict[str, float]:
    """A log of `entries` (appended through `audit.record`, committed in batches), one head, then proofs."""
    import random
    import statistics

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_url("sqlite", Path(tmp))
        upgrade(url)
        engine = make_engine(url)
        factory = make_sessionmaker(engine)
        key = create_key_file(Path(tmp) / "audit.key")
        with Progress() as progress:
            task = progress.add_task(f"proofs: appending {entries:,}", total=entries)
            for start in range(0, entries, 10_000):
                with factory() as session:
                    for i in range(start, min(entries, start + 10_000)):
                        audit.record(session, actor=Actor("staff", "stf_bench"), action="bench.append",
                                     target_type="thing", target_id=str(i))
                    session.commit()
                progress.advance(task, min(10_000, entries - start))
        with factory() as session:
            audit.sequence_all(session)
            started = time.perf_counter()
            audit.sign_new_head(session, key=key)
            session.commit()
            results["sign_head_s"] = time.perf_counter() - started
            size = audit.tree_size(session)
            rng = random.Random(7)
            inclusion, consistency = [], []
            for _ in range(samples):
                started = time.perf_counter()
                audit.prove_inclusion(session, index=rng.randrange(size))
                inclusion.append(time.perf_counter() - started)
                started = time.perf_counter()
                audit.prove_consistency(session, first=rng.randrange(1, size + 1))
                consistency.append(time.perf_counter() - started)
        engine.dispose()
    results.update(entries=size, inclusion_ms=statistics.median(inclusion) * 1000,
                   consistency_ms=statistics.median(consistency) * 1000,
                   inclusion_p99_ms=sorted(inclusion)[int(samples * 0.99) - 1] * 1000)
    return results


def write_report(rows: dict[str, dict[str, float]], entries: int,
                 proofs: dict[str, float] | None = None) -> None:
    lines = [
        "## Audit log (`bench/audit.py`)",
        "",
        f"Command: `.venv/bin/python -m bench.audit --entries {entries}`. {machine_line()}",
        "Each append is one `audit.service.record` plus its own commit, as in a request. Writers take",
        "no lock; the sequencer then gives the committed entries contiguous leaf indices in batches",
        "(`sequence`), and a head is signed over all of them (`sign`).",
        "",
        ("| backend | appends/s, 1 thread | appends/s, 4 threads | sequence (entries/s) | sign a head "
         "| verify (entries/s) | entries |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, r in rows.items():
        lines.append(
            f"| {backend} | {r['append_1_thread_per_s']:,.0f} | {r['append_4_threads_per_s']:,.0f} | "
            f"{r['sequence_per_s']:,.0f} | {r['sign_head_s'] * 1000:,.0f} ms | {r['verify_per_s']:,.0f} | "
            f"{r['entries']:,.0f} |"
        )
    if proofs:
        lines += [
            "",
            (f"Proofs over a log of {proofs['entries']:,.0f} entries (SQLite; `--proof-entries`): each reads "
            "O(log n) stored subtree hashes (`audit_tree_nodes`, written when a head is signed) instead of "
            "every leaf."),
            "",
            "| entries | inclusion proof, median | inclusion, p99 | consistency proof, median | sign the first head |",
            "| ---: | ---: | ---: | ---: | ---: |",
            (f"| {proofs['entries']:,.0f} | {proofs['inclusion_ms']:.2f} ms | {proofs['inclusion_p99_ms']:.2f} ms | "
            f"{proofs['consistency_ms']:.2f} ms | {proofs['sign_head_s']:.1f} s |"),
        ]
    write_section("audit", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--proof-entries", type=int, default=1_000_000)
    args = parser.parse_args()
    rows = {backend: run_backend(backend, args.entries) for backend in args.backends.split(",")}
    for backend, r in rows.items():
        print(backend, {k: round(v, 3) for k, v in r.items()})
    proofs = run_proofs(args.proof_entries) if args.proof_entries else None
    print("proofs", proofs)
    write_report(rows, args.entries, proofs)


if __name__ == "__main__":
    main()
