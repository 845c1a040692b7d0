"""What the erasure journal writes, byte for byte: a journal from before authentication adopted, erasures
appended in a batch, a lost journal set aside, and what a damaged one still yields.

Each line is `{"at","mac","reason","record_id","seq","subject_id"}` (keys sorted, no spaces) and its MAC is
`HMAC-SHA-256(k, previous MAC || the line without "mac")`, starting from SHA-256 of the genesis label; the
head is `{"count","last","mac"}` with `mac = HMAC-SHA-256(k, "head|" count "|" last)`. The expected bytes are
written out here, so a renamed key, a lost default or a broken chain shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tripguard.vault import journal as journal_module
from tripguard.vault.journal import HEAD_FILE, JOURNAL_FILE, Erasure, ErasureJournal

pytestmark = pytest.mark.no_database

KEY = b"k" * 32
GENESIS = hashlib.sha256(b"tripguard/erasure-journal/v2").digest()
NOW = datetime(2026, 12, 7, 8, 30, 15, 123456, tzinfo=UTC)


def mac(previous: bytes, body: bytes) -> bytes:
    return hmac.new(KEY, previous + body, hashlib.sha256).digest()


def chained(bodies: list[bytes], start: bytes = GENESIS) -> tuple[bytes, bytes]:
    """The journal lines for these bodies (each line's JSON without its MAC) and the last MAC."""
    out, last = b"", start
    for body in bodies:
        last = mac(last, body)
        out += body.replace(b',"reason"', b',"mac":"' + last.hex().encode() + b'","reason"', 1) + b"\n"
    return out, last


def head_bytes(count: int, last: bytes) -> bytes:
    head_mac = hmac.new(KEY, b"head|" + str(count).encode() + b"|" + last, hashlib.sha256).hexdigest()
    return b'{"count":%d,"last":"%s","mac":"%s"}\n' % (count, last.hex().encode(), head_mac.encode())


def lines_of(folder: Path) -> list[bytes]:
    return (folder / JOURNAL_FILE).read_bytes().splitlines()


def a_journal(folder: Path) -> ErasureJournal:
    return ErasureJournal(folder, key=lambda: KEY)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    monkeypatch.setattr(journal_module, "utcnow", lambda: NOW)
    return NOW


# -- adoption of a journal from before it was authenticated ----------------------------------------------------

def test_a_journal_from_before_authentication_is_adopted_line_for_line(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_FILE).write_bytes(
        b'{"subject_id": "psg_old", "at": "2026-11-01T00:00:00+00:00", "reason": "subject_request", "x": 1}\n'
        b"\n  \n"
        b'{"subject_id": "psg_bare"}\n'  # a v1 line without time or reason: both become ""
        b'{"subject_id": "psg_third", "at": "2026-11-03T00:00:00+00:00", "reason": "retention",'
        b' "record_id": "rec_ignored"}\n')
    journal = a_journal(tmp_path)
    assert journal.prepare(may_start=False) is True

    bodies = [(b'{"at":"2026-11-01T00:00:00+00:00","reason":"subject_request","record_id":null,"seq":1,'
               b'"subject_id":"psg_old"}'),
              b'{"at":"","reason":"","record_id":null,"seq":2,"subject_id":"psg_bare"}',
              (b'{"at":"2026-11-03T00:00:00+00:00","reason":"retention","record_id":null,"seq":3,'
               b'"subject_id":"psg_third"}')]
    expected, last = chained(bodies)
    assert (tmp_path / JOURNAL_FILE).read_bytes() == expected
    assert (tmp_path / HEAD_FILE).read_bytes() == head_bytes(3, last)
    assert journal.entries() == [
        Erasure(1, "psg_old", "2026-11-01T00:00:00+00:00", "subject_request", None),
        Erasure(2, "psg_bare", "", "", None),
        Erasure(3, "psg_third", "2026-11-03T00:00:00+00:00", "retention", None)]
    assert journal.chain().macs[-1] == last
    # Adopted once: a second prepare leaves it as it is.
    before = (tmp_path / JOURNAL_FILE).read_bytes()
    assert journal.prepare(may_start=False) is True
    assert (tmp_path / JOURNAL_FILE).read_bytes() == before


# -- a batch of erasures (the database's shredded keys taken into a restarted journal) --------------------------

def test_a_batch_of_erasures_continues_the_chain_one_line_each(tmp_path: Path, frozen: datetime) -> None:
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    for number in range(3):  # three, so that neither the first nor the second MAC is the last
        journal.append(f"psg_{number}", "subject_request", f"rec_{number}")
    before = (tmp_path / JOURNAL_FILE).read_bytes()
    start = journal.chain().macs[-1]

    assert journal.append_many([("psg_a", "journal restart"), ("psg_b", "journal restart"),
                                ("psg_c", "retention")]) == 3

    at = frozen.isoformat().encode()
    bodies = [b'{"at":"%s","reason":"%s","record_id":null,"seq":%d,"subject_id":"%s"}' % (at, reason, seq, subject)
              for seq, subject, reason in ((4, b"psg_a", b"journal restart"), (5, b"psg_b", b"journal restart"),
                                           (6, b"psg_c", b"retention"))]
    added, last = chained(bodies, start)
    assert (tmp_path / JOURNAL_FILE).read_bytes() == before + added  # appended, the earlier lines untouched
    assert (tmp_path / HEAD_FILE).read_bytes() == head_bytes(6, last)
    assert [(e.seq, e.subject_id, e.reason, e.record_id) for e in journal.entries()] == [
        (1, "psg_0", "subject_request", "rec_0"), (2, "psg_1", "subject_request", "rec_1"),
        (3, "psg_2", "subject_request", "rec_2"), (4, "psg_a", "journal restart", None),
        (5, "psg_b", "journal restart", None), (6, "psg_c", "retention", None)]


def test_an_empty_batch_appends_nothing(tmp_path: Path) -> None:
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    journal.append("psg_0", "subject_request")
    files = {name: (tmp_path / name).read_bytes() for name in (JOURNAL_FILE, HEAD_FILE)}
    assert journal.append_many([]) == 0
    assert {name: (tmp_path / name).read_bytes() for name in (JOURNAL_FILE, HEAD_FILE)} == files


def test_a_batch_into_a_journal_whose_file_was_never_written_makes_it_private(tmp_path: Path) -> None:
    """A crash between the new head (0 erasures) and the empty file leaves only the head: the batch creates
    the file, readable by its owner only."""
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    (tmp_path / JOURNAL_FILE).unlink()
    assert journal.append_many([("psg_a", "journal restart"), ("psg_b", "journal restart")]) == 2
    assert (tmp_path / JOURNAL_FILE).stat().st_mode & 0o777 == 0o600
    assert journal.subject_ids() == ["psg_a", "psg_b"]


# -- a lost journal set aside ---------------------------------------------------------------------------------

def test_a_journal_restarted_after_a_loss_keeps_the_old_files_beside_it_by_time(tmp_path: Path,
                                                                                frozen: datetime) -> None:
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    journal.append("psg_0", "subject_request")
    old = {name: (tmp_path / name).read_bytes() for name in (JOURNAL_FILE, HEAD_FILE)}

    kept = journal.start_after_loss()

    assert kept == [tmp_path / f"{JOURNAL_FILE}.lost-20261207T083015", tmp_path / f"{HEAD_FILE}.lost-20261207T083015"]
    assert [path.read_bytes() for path in kept] == [old[JOURNAL_FILE], old[HEAD_FILE]]
    assert journal.entries() == []
    assert (tmp_path / HEAD_FILE).read_bytes() == head_bytes(0, GENESIS)
    # Only what was there is kept: a journal whose file is gone keeps its head alone.
    (tmp_path / JOURNAL_FILE).unlink()
    assert [path.name for path in journal.start_after_loss()] == [f"{HEAD_FILE}.lost-20261207T083015"]


# -- what a damaged journal still yields ----------------------------------------------------------------------

def test_salvage_yields_each_erasure_before_the_first_damaged_line(tmp_path: Path) -> None:
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    for number in range(4):
        journal.append(f"psg_{number}", f"reason_{number}", f"rec_{number}")
    kept = journal.entries()
    lines = lines_of(tmp_path)
    forged = json.loads(lines[2]) | {"subject_id": "psg_forged"}
    (tmp_path / JOURNAL_FILE).write_bytes(b"\n".join([*lines[:2], json.dumps(forged).encode(), lines[3]]) + b"\n")
    (tmp_path / HEAD_FILE).unlink()

    salvaged = journal.salvage()

    assert salvaged == kept[:2]
    assert [(e.seq, e.subject_id, e.reason, e.record_id) for e in salvaged] == [
        (1, "psg_0", "reason_0", "rec_0"), (2, "psg_1", "reason_1", "rec_1")]
