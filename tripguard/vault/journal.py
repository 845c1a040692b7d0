"""The erasure journal: which subjects were crypto-shredded, kept in the key folder, outside data backups.

A key backup made before an erasure still holds the subject's wrapped data key. Restoring it must
not bring the subject back, so every restore re-applies this journal (no setting turns that off).

The journal is authenticated, so it cannot be quietly shortened: each line carries a MAC chained to
the line before (`mac_n = HMAC(k, mac_{n-1} || line_n)`), and `erasure-journal.head` holds the line
count and the last MAC under its own MAC. A changed, reordered, removed or cut-off line, a missing
head, or a head that does not match stops the restore. `k` is derived from the keyring's index key,
so the journal cannot be rewritten without the keys. It holds ids, times, reasons and record ids only.

It cannot be silently reset either: a journal replaced whole by an older or another valid one is
caught by the heads recorded elsewhere (`Head`: every backup's header, and every key-backup key in
`backup-keys.json`, bound into its wrapping; see keybackup.py), and a journal is started fresh only
in a key folder that shows no sign of use (`prepare`); a lost one is restarted only by an operator
(`tripguard keys init --accept-journal-loss REASON`, audited).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tripguard.core.clock import utcnow
from tripguard.vault.files import locked, write_private

JOURNAL_FILE = "erasure-journal.jsonl"
HEAD_FILE = "erasure-journal.head"
_GENESIS = b"tripguard/erasure-journal/v2"
GENESIS_MAC = hashlib.sha256(_GENESIS).digest()

logger = logging.getLogger("tripguard.vault.journal")
T = TypeVar("T")


class JournalError(RuntimeError):
    """The journal or its head was changed, cut off or removed: restores stop until it is resolved."""


@dataclass(frozen=True)
class Erasure:
    seq: int
    subject_id: str
    at: str
    reason: str
    record_id: str | None


@dataclass(frozen=True)
class Head:
    """A point of the journal: `count` erasures, the last of them carrying the MAC `last` (hex; the
    genesis digest when there are none). Recorded by backups and key-backup keys, checked on restore."""

    count: int
    last: str

    def as_dict(self) -> dict[str, object]:
        return {"count": self.count, "last": self.last}

    @classmethod
    def parse(cls, value: object) -> Head | None:
        """The head a backup header or key entry recorded; None when it recorded none (made before heads)."""
        if value is None:
            return None
        count = value.get("count") if isinstance(value, dict) else None
        last = value.get("last") if isinstance(value, dict) else None
        if type(count) is not int or count < 0 or not isinstance(last, str) or not _is_hex(last):
            raise JournalError(f"a recorded journal head is damaged: {value!r}")
        return cls(count, last)


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Chain:
    """A journal read and verified end to end: its erasures and each one's MAC."""

    entries: list[Erasure] = field(default_factory=list)
    macs: list[bytes] = field(default_factory=list)

    @property
    def head(self) -> Head:
        return Head(len(self.macs), (self.macs[-1] if self.macs else GENESIS_MAC).hex())

    def contains(self, head: Head) -> bool:
        return self.problem(head, "") is None

    def problem(self, head: Head, what: str) -> str | None:
        """Why this journal is not (an extension of) the one `what` ("this backup was made under") names;
        None when it is."""
        if head.count > len(self.macs):
            return (f"the erasure journal holds {len(self.macs)} erasures, fewer than the {head.count} {what}: "
                    "it was cut off, emptied or replaced by an older copy")
        mac = self.macs[head.count - 1] if head.count else GENESIS_MAC
        if not hmac.compare_digest(mac.hex(), head.last.lower()):
            return (f"the erasure journal does not lead to the one {what} (erasure {head.count} differs): "
                    "it was replaced or rewritten")
        return None


def _canonical(entry: dict[str, object]) -> bytes:
    return json.dumps(entry, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ErasureJournal:
    """`key` comes from the key source (a callable, so building the vault opens no keyring)."""

    folder: Path
    key: Callable[[], bytes]

    @property
    def path(self) -> Path:
        return self.folder / JOURNAL_FILE

    @property
    def head_path(self) -> Path:
        return self.folder / HEAD_FILE

    def _mac(self, previous: bytes, line: bytes) -> bytes:
        return hmac.new(self.key(), previous + line, hashlib.sha256).digest()

    def _head_mac(self, count: int, last: bytes) -> str:
        return hmac.new(self.key(), b"head|" + str(count).encode() + b"|" + last, hashlib.sha256).hexdigest()

    def _write_head(self, count: int, last: bytes) -> None:
        head = {"count": count, "last": last.hex(), "mac": self._head_mac(count, last)}
        write_private(self.head_path, _canonical(head) + b"\n")

    # -- creation ---------------------------------------------------------------------------
    def prepare(self, *, may_start: bool, in_use: Iterable[Path] = (), adopt_v1: bool = True) -> bool:
        """Make the journal ready to use; True when it is there (not yet verified: that is done on use).

        A journal is started fresh only when `may_start` and the key folder shows no sign of use: no
        journal file, no head, none of `in_use` (the backup register, the key-backup keys). Anywhere
        else a missing journal is a loss: it is logged, never recreated, and erasures and restores are
        refused until an operator restores it or accepts the loss. A journal from before it was
        authenticated (lines without MACs, no head) is adopted once, if it holds at least one erasure
        and `adopt_v1` (no sign that an authenticated journal was kept here before)."""
        with locked(self.folder, JOURNAL_FILE):
            if self.head_path.exists():
                return True
            if adopt_v1 and self._is_unauthenticated_v1():
                self._adopt_v1()
                return True
            if may_start and not self.path.exists() and not any(path.exists() for path in in_use):
                self._start()
                return True
        logger.error("the erasure journal in %s is missing or was emptied: erasures and restores are refused "
                     "until it is put back from a copy of the key folder, or an operator accepts its loss "
                     "(`tripguard keys init --accept-journal-loss REASON`)", self.folder)
        return False

    def _start(self) -> None:
        # The head first: a crash in between leaves a head of 0 erasures, which a missing file matches.
        self._write_head(0, GENESIS_MAC)
        write_private(self.path, b"")

    def start_after_loss(self) -> list[Path]:
        """Start a new, empty journal in place of a missing or unreadable one (an operator's decision,
        audited by the caller); what was there is kept beside it, renamed. Returns the kept files."""
        with locked(self.folder, JOURNAL_FILE):
            stamp = utcnow().strftime("%Y%m%dT%H%M%S")
            kept = []
            for path in (self.path, self.head_path):
                if path.exists():
                    target = path.with_name(f"{path.name}.lost-{stamp}")
                    path.replace(target)
                    kept.append(target)
            self._start()
            return kept

    def _is_unauthenticated_v1(self) -> bool:
        """A non-empty journal of well-formed lines without MACs; an empty or emptied file is no journal."""
        if not self.path.exists():
            return False
        lines = [line for line in self.path.read_bytes().splitlines() if line.strip()]
        try:
            parsed = [json.loads(line) for line in lines]
        except ValueError:
            return False
        return bool(parsed) and all(isinstance(entry, dict) and "mac" not in entry
                                    and isinstance(entry.get("subject_id"), str) and entry["subject_id"]
                                    for entry in parsed)

    def _adopt_v1(self) -> None:
        """A journal from before it was authenticated (no MACs, no head): taken as it stands, once, and
        authenticated from now on (trust on first use; the operations guide says so)."""
        last = GENESIS_MAC
        out = []
        for number, line in enumerate((ln for ln in self.path.read_bytes().splitlines() if ln.strip()), start=1):
            old = json.loads(line)
            entry: dict[str, object] = {"seq": number, "subject_id": str(old["subject_id"]),
                                        "at": str(old.get("at", "")), "reason": str(old.get("reason", "")),
                                        "record_id": None}
            last = self._mac(last, _canonical(entry))
            out.append(_canonical(entry | {"mac": last.hex()}) + b"\n")
        write_private(self.path, b"".join(out))
        self._write_head(len(out), last)

    # -- use --------------------------------------------------------------------------------
    def append(self, subject_id: str, reason: str, record_id: str | None = None, *,
               then: Callable[[Chain], None] | None = None) -> Chain:
        """Written (and synced) before the erasure commits: a crash errs on the side of erasing.

        `then` runs with the new journal while the journal is still locked (the vault moves the
        key-backup keys' heads forward there, so two erasures cannot move them out of order)."""
        with locked(self.folder, JOURNAL_FILE):
            chain = self._read_verified()
            entry: dict[str, object] = {"seq": len(chain.entries) + 1, "subject_id": subject_id,
                                        "at": utcnow().isoformat(), "reason": reason, "record_id": record_id}
            mac = self._mac(chain.macs[-1] if chain.macs else GENESIS_MAC, _canonical(entry))
            line = _canonical(entry | {"mac": mac.hex()}) + b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self._write_head(len(chain.entries) + 1, mac)
            grown = Chain([*chain.entries, self._erasure(len(chain.entries) + 1, entry)], [*chain.macs, mac])
            if then is not None:
                then(grown)
            return grown

    def append_many(self, erasures: list[tuple[str, str]]) -> int:
        """Journal (subject_id, reason) pairs at once, under one lock and one head (a restarted journal takes
        in the keys the database shows shredded). Returns how many were appended."""
        if not erasures:
            return 0
        with locked(self.folder, JOURNAL_FILE):
            chain = self._read_verified()
            last, count, lines = chain.macs[-1] if chain.macs else GENESIS_MAC, len(chain.entries), []
            for subject_id, reason in erasures:
                count += 1
                entry: dict[str, object] = {"seq": count, "subject_id": subject_id, "at": utcnow().isoformat(),
                                            "reason": reason, "record_id": None}
                last = self._mac(last, _canonical(entry))
                lines.append(_canonical(entry | {"mac": last.hex()}) + b"\n")
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as handle:
                handle.write(b"".join(lines))
                handle.flush()
                os.fsync(handle.fileno())
            self._write_head(count, last)
            return len(lines)

    def with_chain(self, use: Callable[[Chain], T]) -> T:
        """Run `use` with the verified journal while no erasure can be appended."""
        with locked(self.folder, JOURNAL_FILE):
            return use(self._read_verified())

    @staticmethod
    def _erasure(number: int, entry: dict[str, object]) -> Erasure:
        record_id = entry.get("record_id")
        return Erasure(seq=number, subject_id=str(entry["subject_id"]), at=str(entry["at"]),
                       reason=str(entry["reason"]), record_id=None if record_id is None else str(record_id))

    def _lines(self) -> Iterable[tuple[int, dict[str, object], bytes]]:
        """(number, entry, mac) of each line whose MAC holds, in order; raises JournalError at the first
        that does not."""
        last = GENESIS_MAC
        raw = self.path.read_bytes() if self.path.exists() else b""
        for number, line in enumerate(raw.splitlines(), start=1):
            try:
                entry = json.loads(line)
                mac = bytes.fromhex(entry.pop("mac"))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise JournalError(f"line {number} of the erasure journal is damaged") from exc
            if entry.get("seq") != number or not hmac.compare_digest(mac, self._mac(last, _canonical(entry))):
                raise JournalError(f"line {number} of the erasure journal was changed, moved or forged")
            last = mac
            yield number, entry, mac

    def _read_verified(self) -> Chain:
        if not self.head_path.exists():
            raise JournalError(f"{self.head_path} is missing: the erasure journal cannot be trusted; "
                               "restore it (and the journal) from the key folder's copy")
        try:
            head = json.loads(self.head_path.read_bytes())
            count, head_last = int(head["count"]), bytes.fromhex(head["last"])
            head_ok = hmac.compare_digest(str(head["mac"]), self._head_mac(count, head_last))
        except (ValueError, KeyError, TypeError) as exc:
            raise JournalError(f"{self.head_path} is damaged") from exc
        if not head_ok:
            raise JournalError(f"{self.head_path} was changed or made with other keys")
        chain = Chain()
        for number, entry, mac in self._lines():
            chain.entries.append(self._erasure(number, entry))
            chain.macs.append(mac)
        if len(chain.entries) != count or (chain.macs[-1] if chain.macs else GENESIS_MAC) != head_last:
            raise JournalError(f"the erasure journal holds {len(chain.entries)} erasures, its head says {count}: "
                               "it was cut off or extended")
        return chain

    def chain(self) -> Chain:
        """The journal, checked end to end; raises JournalError if anything does not hold."""
        with locked(self.folder, JOURNAL_FILE):
            return self._read_verified()

    def entries(self) -> list[Erasure]:
        """Every erasure, checked end to end; raises JournalError if anything does not hold."""
        return self.chain().entries

    def subject_ids(self) -> list[str]:
        return [entry.subject_id for entry in self.entries()]

    def salvage(self) -> list[Erasure]:
        """The erasures of the longest beginning of the journal whose MACs hold, head or no head: what a
        restore that goes on despite a damaged journal can still re-apply (never anything forged)."""
        out: list[Erasure] = []
        with locked(self.folder, JOURNAL_FILE):
            try:
                for number, entry, _ in self._lines():
                    out.append(self._erasure(number, entry))
            except JournalError:
                pass
        return out
