"""The erasure journal: which subjects were crypto-shredded, kept in the key folder, outside data backups.

A key backup made before an erasure still holds the subject's wrapped data key. Restoring it must
not bring the subject back, so every restore re-applies this journal (no setting turns that off).

The journal is authenticated, so it cannot be quietly shortened: each line carries a MAC chained to
the line before (`mac_n = HMAC(k, mac_{n-1} || line_n)`), and `erasure-journal.head` holds the line
count and the last MAC under its own MAC. A changed, reordered, removed or cut-off line, a missing
head, or a head that does not match stops the restore. `k` is derived from the keyring's index key,
so the journal cannot be rewritten without the keys. It holds ids, times, reasons and record ids only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tripguard.core.clock import utcnow
from tripguard.vault.files import locked, write_private

JOURNAL_FILE = "erasure-journal.jsonl"
HEAD_FILE = "erasure-journal.head"
_GENESIS = b"tripguard/erasure-journal/v2"


class JournalError(RuntimeError):
    """The journal or its head was changed, cut off or removed: restores stop until it is resolved."""


@dataclass(frozen=True)
class Erasure:
    seq: int
    subject_id: str
    at: str
    reason: str
    record_id: str | None


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

    def ensure(self) -> None:
        """Create an empty, authenticated journal once (a missing head is an error from then on)."""
        with locked(self.folder, JOURNAL_FILE):
            self._create_if_new()

    def _create_if_new(self) -> None:
        if not self.head_path.exists() and not self.path.exists():
            write_private(self.path, b"")
            self._write_head(0, hashlib.sha256(_GENESIS).digest())
        elif not self.head_path.exists() and self._is_unauthenticated_v1():
            self._adopt_v1()

    def _is_unauthenticated_v1(self) -> bool:
        lines = [line for line in self.path.read_bytes().splitlines() if line.strip()]
        try:
            return all("mac" not in json.loads(line) and "subject_id" in json.loads(line) for line in lines)
        except ValueError:
            return False

    def _adopt_v1(self) -> None:
        """A journal from before it was authenticated (no MACs, no head): taken as it stands, once, and
        authenticated from now on (trust on first use; the operations guide says so)."""
        last = hashlib.sha256(_GENESIS).digest()
        out = []
        for number, line in enumerate((ln for ln in self.path.read_bytes().splitlines() if ln.strip()), start=1):
            old = json.loads(line)
            entry: dict[str, object] = {"seq": number, "subject_id": str(old["subject_id"]), "at": str(old.get("at", "")),
                                        "reason": str(old.get("reason", "")), "record_id": None}
            last = self._mac(last, _canonical(entry))
            out.append(_canonical(entry | {"mac": last.hex()}) + b"\n")
        write_private(self.path, b"".join(out))
        self._write_head(len(out), last)

    def append(self, subject_id: str, reason: str, record_id: str | None = None) -> None:
        """Written (and synced) before the erasure commits: a crash errs on the side of erasing."""
        with locked(self.folder, JOURNAL_FILE):
            self._create_if_new()
            entries, last = self._read_verified()
            entry: dict[str, object] = {"seq": len(entries) + 1, "subject_id": subject_id,
                                        "at": utcnow().isoformat(), "reason": reason, "record_id": record_id}
            mac = self._mac(last, _canonical(entry))
            line = _canonical(entry | {"mac": mac.hex()}) + b"\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "ab") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self._write_head(len(entries) + 1, mac)

    def _read_verified(self) -> tuple[list[Erasure], bytes]:
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
        last = hashlib.sha256(_GENESIS).digest()
        entries: list[Erasure] = []
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
            entries.append(Erasure(seq=number, subject_id=str(entry["subject_id"]), at=str(entry["at"]),
                                   reason=str(entry["reason"]), record_id=entry.get("record_id")))
        if len(entries) != count or last != head_last:
            raise JournalError(f"the erasure journal holds {len(entries)} erasures, its head says {count}: "
                               "it was cut off or extended")
        return entries, last

    def entries(self) -> list[Erasure]:
        """Every erasure, checked end to end; raises JournalError if anything does not hold."""
        with locked(self.folder, JOURNAL_FILE):
            return self._read_verified()[0]

    def subject_ids(self) -> list[str]:
        return [entry.subject_id for entry in self.entries()]
