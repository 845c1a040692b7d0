"""The erasure journal checked on use: each way a journal or its head can be damaged is refused with its own
reason, a recorded head is found in the journal only where it leads there, a line appended is known to the
byte, and a journal is started, adopted or refused as `prepare` promises."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path

import pytest

from tests.vault.test_journal_files import GENESIS, KEY, NOW, a_journal, chained, head_bytes
from tripguard.vault import journal as journal_module
from tripguard.vault.journal import HEAD_FILE, JOURNAL_FILE, Chain, Erasure, ErasureJournal, Head, JournalError

pytestmark = pytest.mark.no_database


MISSING = ("the erasure journal in %s is missing or was emptied: erasures and restores are refused until it is put "
           "back from a copy of the key folder, or an operator accepts its loss "
           "(`tripguard keys init --accept-journal-loss REASON`)")

NO_HEAD = "is missing: the erasure journal cannot be trusted; restore it (and the journal) from the key folder's copy"


def three(folder: Path) -> ErasureJournal:
    journal = a_journal(folder)
    journal.prepare(may_start=True)
    for number in range(3):
        journal.append(f"psg_{number}", "subject_request", f"rec_{number}" if number else None)
    return journal


# -- a recorded head ------------------------------------------------------------------------------------

def test_a_recorded_head_is_read_back_or_refused_as_damaged() -> None:
    assert Head.parse(None) is None
    assert Head.parse({"count": 2, "last": "ab01"}) == Head(2, "ab01")
    assert Head.parse(Head(0, GENESIS.hex()).as_dict()) == Head(0, GENESIS.hex())
    assert Head(3, "ff").as_dict() == {"count": 3, "last": "ff"}
    for damaged in ({"count": -1, "last": "ab"}, {"count": True, "last": "ab"}, {"count": "2", "last": "ab"},
                    {"last": "ab"}, {"count": 2}, {"count": 2, "last": 5}, {"count": 2, "last": "xyz"},
                    {"count": 2, "last": "abc"}, [2, "ab"], "2/ab", 0):
        with pytest.raises(JournalError, match="a recorded journal head is damaged"):
            Head.parse(damaged)


def test_a_journal_contains_each_of_its_own_heads_and_no_other(tmp_path: Path) -> None:
    chain = three(tmp_path).chain()
    assert chain.head == Head(3, chain.macs[2].hex())
    assert Chain().head == Head(0, GENESIS.hex())
    for count in range(4):
        last = chain.macs[count - 1] if count else GENESIS
        assert chain.contains(Head(count, last.hex())), count
        assert chain.contains(Head(count, last.hex().upper())), count
        assert chain.problem(Head(count, last.hex()), "this backup was made under") is None
    assert chain.problem(Head(4, chain.macs[2].hex()), "this backup was made under") == (
        "the erasure journal holds 3 erasures, fewer than the 4 this backup was made under: "
        "it was cut off, emptied or replaced by an older copy")
    assert chain.problem(Head(2, chain.macs[0].hex()), "this backup was made under") == (
        "the erasure journal does not lead to the one this backup was made under (erasure 2 differs): "
        "it was replaced or rewritten")
    assert not chain.contains(Head(0, chain.macs[0].hex()))
    assert not chain.contains(Head(1, GENESIS.hex()))


# -- a journal read end to end ---------------------------------------------------------------------------

def rewrite_head(folder: Path, count: int, last: bytes) -> None:
    (folder / HEAD_FILE).write_bytes(head_bytes(count, last))


def test_each_kind_of_damage_is_refused_with_its_reason(tmp_path: Path) -> None:
    journal = three(tmp_path)
    good = {name: (tmp_path / name).read_bytes() for name in (JOURNAL_FILE, HEAD_FILE)}
    lines = good[JOURNAL_FILE].splitlines(keepends=True)
    macs = journal.chain().macs
    moved = json.loads(lines[1]) | {"seq": 3}

    def damage(name: str, content: bytes) -> None:
        for file, original in good.items():
            (tmp_path / file).write_bytes(original)
        if name == HEAD_FILE and not content:
            (tmp_path / HEAD_FILE).unlink()
        else:
            (tmp_path / name).write_bytes(content)

    cases = [
        (HEAD_FILE, b"", f"{tmp_path / HEAD_FILE} {NO_HEAD}"),
        (HEAD_FILE, b"not json", "is damaged"),
        (HEAD_FILE, b'{"count": 3, "last": "%s"}' % macs[2].hex().encode(), "is damaged"),
        (HEAD_FILE, b'{"count": 3, "last": "zz", "mac": "00"}', "is damaged"),
        (HEAD_FILE, b'{"count": "x", "last": "00", "mac": "00"}', "is damaged"),
        (HEAD_FILE, good[HEAD_FILE].replace(b'"count":3', b'"count":2'), "was changed or made with other keys"),
        (JOURNAL_FILE, b"".join(lines[:2]), "holds 2 erasures, its head says 3: it was cut off or extended"),
        (JOURNAL_FILE, lines[0] + b"\n" + b"".join(lines[1:]), "line 2 of the erasure journal is damaged"),
        (JOURNAL_FILE, lines[0] + b"psg_1\n" + lines[2], "line 2 of the erasure journal is damaged"),
        (JOURNAL_FILE, lines[0] + b'{"seq": 2}\n' + lines[2], "line 2 of the erasure journal is damaged"),
        (JOURNAL_FILE, lines[0] + b'{"seq": 2, "mac": "zz"}\n' + lines[2], "line 2 of the erasure journal is damaged"),
        (JOURNAL_FILE, lines[0] + b'{"seq": 2, "mac": 7}\n' + lines[2], "line 2 of the erasure journal is damaged"),
        (JOURNAL_FILE, lines[0] + b"[2]\n" + lines[2], "line 2 of the erasure journal is damaged"),
        (JOURNAL_FILE, lines[0] + lines[2] + lines[1], "line 2 of the erasure journal was changed, moved or forged"),
        (JOURNAL_FILE, lines[0] + json.dumps(moved).encode() + b"\n" + lines[2],
         "line 2 of the erasure journal was changed, moved or forged"),
        (JOURNAL_FILE, lines[0] + lines[1].replace(b"psg_1", b"psg_9") + lines[2],
         "line 2 of the erasure journal was changed, moved or forged"),
    ]
    for name, content, reason in cases:
        damage(name, content)
        with pytest.raises(JournalError) as caught:
            journal.entries()
        assert reason in str(caught.value), (name, content, str(caught.value))
    # A head rewritten (with the key) to a shorter count, or to another last MAC, does not fit the lines.
    for count, last in ((2, macs[1]), (3, macs[1])):
        damage(JOURNAL_FILE, good[JOURNAL_FILE])
        rewrite_head(tmp_path, count, last)
        with pytest.raises(JournalError, match=f"holds 3 erasures, its head says {count}"):
            journal.entries()
    damage(JOURNAL_FILE, good[JOURNAL_FILE])
    assert [(e.seq, e.subject_id, e.record_id) for e in journal.entries()] == [
        (1, "psg_0", None), (2, "psg_1", "rec_1"), (3, "psg_2", "rec_2")]


def test_a_journal_made_with_other_keys_is_refused(tmp_path: Path) -> None:
    three(tmp_path)
    with pytest.raises(JournalError, match="was changed or made with other keys"):
        ErasureJournal(tmp_path, key=lambda: b"o" * 32).entries()


def test_a_head_of_no_erasures_without_its_file_is_an_empty_journal(tmp_path: Path) -> None:
    """What a crash between writing the new head and the empty file leaves."""
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    (tmp_path / JOURNAL_FILE).unlink()
    assert journal.entries() == [] and journal.chain().head == Head(0, GENESIS.hex())


# -- one erasure appended -------------------------------------------------------------------------------

def test_an_erasure_appended_is_one_known_line_and_a_new_head(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_module, "utcnow", lambda: NOW)
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    seen: list[Chain] = []
    first = journal.append("psg_0", "subject_request", then=seen.append)
    second = journal.append("psg_1", "家属申请", "rec_1", then=seen.append)

    at = NOW.isoformat().encode()
    expected, last = chained([
        b'{"at":"%s","reason":"subject_request","record_id":null,"seq":1,"subject_id":"psg_0"}' % at,
        b'{"at":"%s","reason":"\\u5bb6\\u5c5e\\u7533\\u8bf7","record_id":"rec_1","seq":2,"subject_id":"psg_1"}' % at])
    assert (tmp_path / JOURNAL_FILE).read_bytes() == expected
    assert (tmp_path / HEAD_FILE).read_bytes() == head_bytes(2, last)
    assert seen == [first, second] and second == journal.chain()
    assert second.entries == [Erasure(1, "psg_0", NOW.isoformat(), "subject_request", None),
                              Erasure(2, "psg_1", NOW.isoformat(), "家属申请", "rec_1")]
    assert second.head == Head(2, last.hex())
    assert journal.with_chain(lambda chain: (chain.head, len(chain.entries))) == (Head(2, last.hex()), 2)


def test_an_erasure_appended_where_the_file_was_never_written_makes_it_private(tmp_path: Path) -> None:
    journal = a_journal(tmp_path)
    journal.prepare(may_start=True)
    (tmp_path / JOURNAL_FILE).unlink()
    journal.append("psg_0", "subject_request")
    assert (tmp_path / JOURNAL_FILE).stat().st_mode & 0o777 == 0o600
    assert journal.subject_ids() == ["psg_0"]


# -- making a journal ready -----------------------------------------------------------------------------

def test_a_journal_is_started_in_an_unused_folder_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = a_journal(tmp_path / "new")
    assert journal.prepare(may_start=True) is True
    assert (tmp_path / "new" / JOURNAL_FILE).read_bytes() == b""
    assert (tmp_path / "new" / HEAD_FILE).read_bytes() == head_bytes(0, GENESIS)
    assert (tmp_path / "new" / HEAD_FILE).stat().st_mode & 0o777 == 0o600
    journal.append("psg_0", "subject_request")
    before = (tmp_path / "new" / HEAD_FILE).read_bytes()
    assert journal.prepare(may_start=True) is True  # a head there: left as it is
    assert (tmp_path / "new" / HEAD_FILE).read_bytes() == before

    used = tmp_path / "used"
    used.mkdir()
    (used / "backups.jsonl").write_text("")
    logger = logging.getLogger("tripguard")
    logger.addHandler(caplog.handler)
    try:
        for folder, kwargs in ((tmp_path / "restore", {"may_start": False}),
                               (used, {"may_start": True, "in_use": [used / "other", used / "backups.jsonl"]})):
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="tripguard.vault.journal"):
                assert a_journal(folder).prepare(**kwargs) is False  # type: ignore[arg-type]
            assert not (folder / HEAD_FILE).exists() and not (folder / JOURNAL_FILE).exists()
            assert {record.getMessage() for record in caplog.records} == {MISSING % folder}
        # An emptied journal (the file there, no head) is a loss too, not a new folder.
        emptied = tmp_path / "emptied"
        emptied.mkdir()
        (emptied / JOURNAL_FILE).write_bytes(b"")
        assert a_journal(emptied).prepare(may_start=True) is False
        assert not (emptied / HEAD_FILE).exists()
    finally:
        logger.removeHandler(caplog.handler)
    assert a_journal(tmp_path / "unused").prepare(may_start=True, in_use=[tmp_path / "unused" / "backups.jsonl"])


def test_only_well_formed_lines_without_macs_are_taken_for_a_journal_from_before_authentication(
        tmp_path: Path) -> None:
    v1 = b'{"subject_id": "psg_old", "at": "2026-11-01T00:00:00+00:00", "reason": "subject_request"}\n'
    for name, content in (("a mac", b'{"subject_id": "psg_old", "mac": "00"}\n'),
                          ("an empty subject", b'{"subject_id": ""}\n'),
                          ("a numeric subject", b'{"subject_id": 7}\n'),
                          ("a list", b'["psg_old"]\n'),
                          ("one bad line of two", v1 + b'{"subject_id": ""}\n'),
                          ("one unparsable line of two", v1 + b"{\n")):
        folder = tmp_path / name.replace(" ", "-")
        folder.mkdir()
        (folder / JOURNAL_FILE).write_bytes(content)
        assert a_journal(folder).prepare(may_start=True) is False, name
        assert (folder / JOURNAL_FILE).read_bytes() == content and not (folder / HEAD_FILE).exists(), name
    # Not adopted where the caller knows an authenticated journal was kept (`adopt_v1=False`) ...
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / JOURNAL_FILE).write_bytes(v1 + b"\n" + v1.replace(b"psg_old", b"psg_older"))
    assert a_journal(folder).prepare(may_start=True, adopt_v1=False) is False
    assert not (folder / HEAD_FILE).exists()
    # ... and adopted by default, even by a restore (`may_start=False`).
    assert a_journal(folder).prepare(may_start=False) is True
    assert a_journal(folder).subject_ids() == ["psg_old", "psg_older"]


def test_the_head_mac_is_keyed_on_count_and_last(tmp_path: Path) -> None:
    journal = three(tmp_path)
    head = json.loads((tmp_path / HEAD_FILE).read_bytes())
    last = bytes.fromhex(head["last"])
    assert head["mac"] == hmac.new(KEY, b"head|3|" + last, hashlib.sha256).hexdigest()
    assert head == {"count": 3, "last": journal.chain().macs[-1].hex(), "mac": head["mac"]}
