"""Vault benchmark: field seal+open per second, erasure time against data volume, export time.

    .venv/bin/python -m bench.vault [--fields 20000] [--volumes 10,1000,10000]

Writes its section of docs/benchmarks.md. Runs on SQLite under a temporary directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import Column, LargeBinary, MetaData, String, Table, insert, select

from bench.report import machine_line, write_section
from tripguard.audit.service import Actor
from tripguard.core.db import make_engine, make_sessionmaker, unit_of_work
from tripguard.core.migrations import upgrade
from tripguard.privacy import service
from tripguard.vault.crypto import DecryptionFailed, Suite
from tripguard.vault.keys import vault_in
from tripguard.vault.keysource import KeyringFile
from tripguard.vault.service import SubjectErased, Vault
from tripguard.wiring import wire

ACTOR = Actor("cli", "bench")
# Stand-in for the rows other domains will hold about a person (trips, orders): sealed the real way.
extra = MetaData()
subject_rows = Table("bench_subject_rows", extra, Column("id", String(40), primary_key=True),
                     Column("subject_id", String(64), index=True), Column("payload", LargeBinary))


def key_folder(tmp: str, name: str) -> Path:
    """A key folder of its own for each vault: its erasure journal, key-backup keys and backup register
    (the keyring is the one file they share)."""
    folder = Path(tmp) / f"keys-{name}"
    folder.mkdir(mode=0o700)
    return folder


def seal_open_rate(vault: Vault, factory, n: int, *, warm: bool) -> float:  # type: ignore[no-untyped-def]
    place = {"table": "privacy_subjects", "column": "phone"}
    started = time.perf_counter()
    with factory() as session:
        for i in range(n):
            if not warm:
                session.info.clear()  # as a new request would: the data key is unwrapped again
            subject = f"psg_{i % 50}"
            blob = vault.seal(session, subject_id=subject, row_id=subject, value="13800001234", **place)
            vault.open(session, subject_id=subject, row_id=subject, blob=blob, **place)
        session.rollback()
    return n / (time.perf_counter() - started)


def erasure_time(vault: Vault, factory, volume: int) -> float:  # type: ignore[no-untyped-def]
    subject_id = f"psg_vol_{volume}"
    with unit_of_work(factory) as session:
        service.upsert_subject(session, vault=vault, actor=ACTOR, subject_id=subject_id, kind="passenger",
                               notice_version="bench", values={"name": "王小明", "phone": "13800001234"})
        rows = [{"id": f"{subject_id}_{i}", "subject_id": subject_id,
                 "payload": vault.seal(session, subject_id=subject_id, table="bench_subject_rows", column="payload",
                                       row_id=f"{subject_id}_{i}", value=f"trip note {i}")} for i in range(volume)]
        session.execute(insert(subject_rows), rows)
    started = time.perf_counter()
    with unit_of_work(factory) as session:
        service.erase_subject(session, vault=vault, actor=ACTOR, subject_id=subject_id, reason="subject_request")
    erase_s = time.perf_counter() - started
    with factory() as session:  # every one of the subject's rows is now noise
        unreadable = 0
        for row in session.execute(select(subject_rows).where(subject_rows.c.subject_id == subject_id)):
            try:
                vault.open(session, subject_id=subject_id, table="bench_subject_rows", column="payload",
                           row_id=row.id, blob=row.payload)
            except (SubjectErased, DecryptionFailed):
                unreadable += 1
        if unreadable != volume:
            raise SystemExit(f"{volume - unreadable} of {volume} rows still open after the erasure")
    return erase_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fields", type=int, default=20_000)
    parser.add_argument("--volumes", default="10,1000,10000")
    args = parser.parse_args()
    wire()  # an erasure and an export ask the domains through what they registered
    volumes = [int(v) for v in args.volumes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        extra.create_all(engine)
        factory = make_sessionmaker(engine)
        keyring = KeyringFile(Path(tmp) / "keyring.json", "bench passphrase")
        rates = {}
        for suite in (Suite.AES, Suite.SM4):
            vault = vault_in(key_folder(tmp, suite.value), keyring, suite)
            rates[suite] = (seal_open_rate(vault, factory, args.fields, warm=True),
                            seal_open_rate(vault, factory, args.fields // 4, warm=False))
        vault = vault_in(key_folder(tmp, "erasure"), keyring, Suite.AES)
        with unit_of_work(factory) as session:
            service.publish_notice(session, actor=ACTOR, version="bench", purposes=["emergency"],
                                   categories=["user.name"], retention_zh="-", retention_en="-", text_zh="-",
                                   text_en="-")
            service.upsert_subject(session, vault=vault, actor=ACTOR, subject_id="psg_export", kind="passenger",
                                   notice_version="bench", values={"name": "李雷", "phone": "13800002222",
                                                                   "email": "lilei@example.com"})
        started = time.perf_counter()
        exports = 500
        for _ in range(exports):
            with unit_of_work(factory) as session:
                service.export_subject(session, vault=vault, actor=ACTOR, subject_id="psg_export")
        export_ms = (time.perf_counter() - started) / exports * 1000
        erasures = {volume: erasure_time(vault, factory, volume) for volume in volumes}
        engine.dispose()

    lines = [
        "## Vault (`bench/vault.py`)", "",
        (f"Command: `.venv/bin/python -m bench.vault --fields {args.fields} --volumes {args.volumes}`. "
        f"{machine_line()} SQLite."), "",
        ("| cipher suite | seal + open per second, data key already open in the request "
         "| first field of a subject in a request (key looked up and unwrapped) |"),
        "| --- | ---: | ---: |",
    ]
    for suite, (warm, cold) in rates.items():
        lines.append(f"| {suite.value} | {warm:,.0f} | {cold:,.0f} |")
    lines += ["", ("Erasure (crypto-shredding the subject's data key, clearing their record, writing the deletion "
              "record and the journal), against how many sealed rows the subject has:"), "",
              "| rows held about the subject | erasure time |", "| ---: | ---: |"]
    lines += [f"| {volume:,} | {seconds * 1000:,.1f} ms |" for volume, seconds in erasures.items()]
    lines += ["", f"Export of one subject's record (decrypted, audited, committed): {export_ms:.2f} ms."]
    write_section("vault", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
