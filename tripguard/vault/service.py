"""The vault: per-subject data keys, field encryption bound to its place, blind indexes, shredding.

Every personal field is sealed with its subject's data key and associated data naming the subject,
table, column and row, so a ciphertext copied anywhere else does not open. Erasing a subject
destroys its data key (crypto-shredding). Data backups hold no data keys; key backups die after the
key-backup window (see keybackup.py), so once it has passed every copy of the person's data is noise.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from cachetools import TTLCache
from sqlalchemy import Connection, event, select
from sqlalchemy.orm import Session

from tripguard.core.clock import utcnow
from tripguard.core.errors import DomainError
from tripguard.core.sqlite_scrub import scrub_after_commit
from tripguard.vault import crypto
from tripguard.vault.crypto import Suite
from tripguard.vault.journal import Chain, Erasure, ErasureJournal, Head, JournalError
from tripguard.vault.keybackup import BackupKeyStore, BackupRegister, KeyBackupKeyChanged, SealedKey
from tripguard.vault.keysource import KeySource
from tripguard.vault.models import DataKey

_CACHE = "tripguard.vault.data_keys"
logger = logging.getLogger("tripguard.vault")
# Column info key of a blind index (`privacy.catalogue.blind_index_column`): data backups leave its
# values out, a restore rebuilds them from the sealed fields that still open.
BLIND_INDEX_INFO = "tripguard.blind_index"
# MACs from `Vault.subject_mac` start with this; older ones (32 hex digits, keyed by the keyring's
# index key) are kept where they were written (the audit log is never rewritten) and never confirmed.
SUBJECT_MAC_PREFIX = "dk1:"
_SCRUB = "tripguard.vault.scrub_wal"


class SubjectErased(DomainError):
    status, type, title = 410, "/problems/subject-erased", "Erased"


class ErasureJournalUnavailable(DomainError):
    """Nobody is erased while the erasure journal is missing or damaged: a restore would bring them back."""

    status, type, title = 503, "/problems/erasure-journal-unavailable", "Erasure unavailable"


def field_context(*, subject_id: str, table: str, column: str, row_id: str) -> bytes:
    return f"tripguard/v1|{subject_id}|{table}|{column}|{row_id}".encode()


def _wrap_context(subject_id: str, kek_version: int, suite: str) -> bytes:
    return f"tripguard/dek|{subject_id}|{kek_version}|{suite}".encode()


# Trips' data keys, opened, kept for the process a short while (ingest and the monitor workers seal
# every trip's positions batch after batch). Only trips': a person's key must stop working in every
# process the moment they are erased, and only retention shreds a trip's key, years after the trip
# ended and together with every row it sealed. A shred in this process evicts it at once.
TRIP_KEY_TTL_SECONDS = 300
TRIP_KEYS_CACHED = 200_000


def _process_cached(subject_id: str) -> bool:
    return subject_id.startswith(("trip:", "trip#"))


def _scrub_wal_on_commit(session: Session) -> None:
    """On SQLite, once this session's transaction commits, empty the write-ahead log, which still holds the
    shredded key's old page (sqlite_scrub.py); after the commit, so never inside the erasure's write lock."""
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        return
    session.info[_SCRUB] = path
    if not event.contains(session, "after_commit", _scrub_committed):
        event.listen(session, "after_commit", _scrub_committed)


def _scrub_committed(session: Session) -> None:
    path = session.info.pop(_SCRUB, None)
    if path is not None:
        scrub_after_commit(path)


@dataclass
class Vault:
    keys: KeySource
    suite: Suite
    journal: ErasureJournal
    backup_keys: BackupKeyStore
    register: BackupRegister
    trip_keys: TTLCache[str, bytes] = field(
        default_factory=lambda: TTLCache(maxsize=TRIP_KEYS_CACHED, ttl=TRIP_KEY_TTL_SECONDS))
    _trip_keys_lock: threading.Lock = field(default_factory=threading.Lock)

    def _remember(self, subject_id: str, key: bytes | None) -> None:
        if key is not None and _process_cached(subject_id):
            with self._trip_keys_lock:
                self.trip_keys[subject_id] = key

    def _recall(self, subject_id: str) -> bytes | None:
        if not _process_cached(subject_id):
            return None
        with self._trip_keys_lock:
            return self.trip_keys.get(subject_id)

    # -- data keys ------------------------------------------------------------------------
    def _wrap_key(self, version: int, suite: Suite) -> bytes:
        # Not cached: a version retired by another process must stop working at once.
        return crypto.derive(self.keys.kek(version), info="tripguard/wrap", suite=suite)

    def _cache(self, session: Session) -> dict[str, bytes | None]:
        cache: dict[str, bytes | None] = session.info.setdefault(_CACHE, {})
        return cache

    def data_key(self, session: Session, subject_id: str, *, create: bool) -> bytes | None:
        """The subject's unwrapped data key; None when it has none (and create is False) or was shredded.

        Cached for the session only: another process's shredding is seen by the next request.
        """
        cache = self._cache(session)
        if subject_id in cache:
            return cache[subject_id]
        if (known := self._recall(subject_id)) is not None:
            cache[subject_id] = known
            return known
        record = session.get(DataKey, subject_id)
        if record is None:
            return self._create_key(session, subject_id) if create else None
        cache[subject_id] = self._unwrap(record)
        self._remember(subject_id, cache[subject_id])
        return cache[subject_id]

    def _create_key(self, session: Session, subject_id: str, *, wrap: tuple[int, bytes] | None = None) -> bytes:
        """`wrap`: the current key-encryption version and its wrap key, derived once for a batch of new keys
        (each key is still the subject's own, and wrapped under a context naming them)."""
        key = crypto.new_key(self.suite)
        version, wrap_key = wrap or self.current_wrap()
        session.add(DataKey(
            subject_id=subject_id, suite=self.suite.value, kek_version=version,
            wrapped_key=crypto.encrypt(self.suite, wrap_key, key,
                                       _wrap_context(subject_id, version, self.suite.value)),
            created_at=utcnow(),
        ))
        self._cache(session)[subject_id] = key  # not remembered for the process: its transaction may roll back
        return key

    def current_wrap(self) -> tuple[int, bytes]:
        version = self.keys.current_version()
        return version, self._wrap_key(version, self.suite)

    def prefetch(self, session: Session, subject_ids: list[str], *, create_missing: bool = False) -> None:
        """Open many subjects' data keys with one query (a batch of trips, say) into the session's cache;
        `create_missing` gives a key to each subject that has none yet."""
        cache = self._cache(session)
        for subject_id in subject_ids:
            if subject_id not in cache and (known := self._recall(subject_id)) is not None:
                cache[subject_id] = known
        wanted = sorted({s for s in subject_ids if s not in cache})
        wrap_keys: dict[tuple[int, str], bytes] = {}  # derived once for the whole batch
        for start in range(0, len(wanted), 500):
            for record in session.scalars(select(DataKey).where(DataKey.subject_id.in_(wanted[start:start + 500]))):
                if record.wrapped_key is None:
                    cache[record.subject_id] = None
                    continue
                version = (record.kek_version, record.suite)
                if version not in wrap_keys:
                    wrap_keys[version] = self._wrap_key(record.kek_version, Suite(record.suite))
                cache[record.subject_id] = crypto.decrypt(
                    wrap_keys[version], record.wrapped_key,
                    _wrap_context(record.subject_id, record.kek_version, record.suite))
                self._remember(record.subject_id, cache[record.subject_id])
        missing = [subject_id for subject_id in wanted if subject_id not in cache] if create_missing else []
        wrap = self.current_wrap() if missing else None
        for subject_id in missing:
            self._create_key(session, subject_id, wrap=wrap)

    def erased_among(self, session: Session, subject_ids: list[str]) -> set[str]:
        """Those of the subjects whose key is shredded (their keys opened into the session's cache meanwhile)."""
        self.prefetch(session, subject_ids)
        cache = self._cache(session)
        return {subject_id for subject_id in subject_ids if subject_id in cache and cache[subject_id] is None}

    def _unwrap(self, record: DataKey) -> bytes | None:
        if record.wrapped_key is None:
            return None
        suite = Suite(record.suite)
        return crypto.decrypt(self._wrap_key(record.kek_version, suite), record.wrapped_key,
                              _wrap_context(record.subject_id, record.kek_version, record.suite))

    def is_erased(self, session: Session, subject_id: str) -> bool:
        record = session.get(DataKey, subject_id)
        return record is not None and record.wrapped_key is None

    # -- fields ---------------------------------------------------------------------------
    def seal(self, session: Session, *, subject_id: str, table: str, column: str, row_id: str,
             value: str) -> bytes:
        return self.seal_bytes(session, subject_id=subject_id, table=table, column=column, row_id=row_id,
                               data=value.encode())

    def open(self, session: Session, *, subject_id: str, table: str, column: str, row_id: str,
             blob: bytes) -> str:
        return self.open_bytes(session, subject_id=subject_id, table=table, column=column, row_id=row_id,
                               blob=blob).decode()

    def seal_bytes(self, session: Session, *, subject_id: str, table: str, column: str, row_id: str,
                   data: bytes) -> bytes:
        """Binary values (a packed trajectory) under the same key and context rules as text fields."""
        key = self.data_key(session, subject_id, create=True)
        if key is None:
            raise SubjectErased("this subject was erased; nothing more is stored about them")
        return crypto.encrypt(crypto.suite_of_key(key), key, data,
                              field_context(subject_id=subject_id, table=table, column=column, row_id=row_id))

    def open_bytes(self, session: Session, *, subject_id: str, table: str, column: str, row_id: str,
                   blob: bytes) -> bytes:
        key = self.data_key(session, subject_id, create=False)
        if key is None:
            raise SubjectErased("this subject's data was erased")
        return crypto.decrypt(key, blob, field_context(subject_id=subject_id, table=table, column=column,
                                                        row_id=row_id))

    def blind_index(self, kind: str, normalised: str) -> str:
        """Equality search under the keyring's index key. Whoever holds the keyring can compute it for a
        guess, so it is stored only in a column marked `BLIND_INDEX_INFO` (left out of data backups,
        rebuilt on restore) and cleared when its person is erased."""
        key = crypto.derive(self.keys.index_key(), info=f"tripguard/blind-index/{kind}", suite=self.suite,
                            length=32)
        return crypto.blind_index(self.suite, key, normalised)

    def subject_mac(self, session: Session, subject_id: str, *, text: str, kind: str = "free-text") -> str:
        """A keyed MAC of `text` that dies with the subject: its key derives from the subject's data key,
        so once that key is shredded (and the key-backup window has passed) nobody, keyring or not, can
        recompute it to confirm a guess. Raises SubjectErased for a subject already erased."""
        key = self.data_key(session, subject_id, create=True)
        if key is None:
            raise SubjectErased("this subject was erased; nothing more is stored about them")
        suite = crypto.suite_of_key(key)
        mac_key = crypto.derive(key, info=f"tripguard/subject-mac/{kind}|{subject_id}", suite=suite, length=32)
        return SUBJECT_MAC_PREFIX + crypto.blind_index(suite, mac_key, text)[:32]

    def verify_subject_mac(self, session: Session, subject_id: str, *, text: str, mac: str,
                           kind: str = "free-text") -> bool:
        """Whether `mac` (from `subject_mac`) is the MAC of `text`: possible only while the subject's key
        lives (SubjectErased after). A MAC of the older, keyring-keyed scheme is never confirmed."""
        if not mac.startswith(SUBJECT_MAC_PREFIX):
            return False
        return crypto.constant_time_equal(self.subject_mac(session, subject_id, text=text, kind=kind), mac)

    def forget(self, session: Session, subject_ids: list[str]) -> None:
        """Drop these subjects' opened keys from the session's cache (a pass over every person keeps
        only a batch's keys in memory)."""
        cache = self._cache(session)
        for subject_id in subject_ids:
            cache.pop(subject_id, None)

    # -- erasure --------------------------------------------------------------------------
    def shred(self, session: Session, *, subject_id: str, reason: str, record_id: str | None = None) -> bool:
        """Destroy the subject's data key; journal it first. Returns False if it had none."""
        record = session.get(DataKey, subject_id)
        try:
            self.journal.append(subject_id, reason, record_id, then=self._advance_key_backups)
        except JournalError as exc:
            logger.error("erasure refused: %s", exc)  # the key folder's paths stay in the log
            raise ErasureJournalUnavailable("erasure is unavailable until the erasure journal is repaired; the "
                                            "server log and `tripguard security check` say what is wrong") from exc
        self._cache(session)[subject_id] = None
        with self._trip_keys_lock:
            self.trip_keys.pop(subject_id, None)
        if record is None:
            # Nothing stored yet; a tombstone keeps anything later from being sealed for them.
            session.add(DataKey(subject_id=subject_id, suite=self.suite.value,
                                kek_version=self.keys.current_version(), wrapped_key=None,
                                created_at=utcnow(), shredded_at=utcnow()))
            session.flush()
            return False
        if record.wrapped_key is None:
            return False
        record.wrapped_key = None
        record.shredded_at = utcnow()
        session.flush()
        _scrub_wal_on_commit(session)
        return True

    def _advance_key_backups(self, chain: Chain) -> None:
        """Bind every key-backup key to the journal as it now stands (called under the journal's lock)."""
        try:
            self.backup_keys.advance(chain.head, contains=chain.contains, wrap_for=self._key_backup_wrap)
        except (OSError, ValueError):
            # The erasure stands and is journaled; the keys catch up at the next erasure (a damaged
            # backup-keys.json opens nothing anyway).
            logger.exception("the key-backup keys could not be bound to erasure %s", chain.head.count)

    def bind_key_backups(self) -> None:
        """Bind the key-backup keys to the journal as it stands, if it verifies (see keybackup.py)."""
        # logged when the vault was built; nothing is bound to a journal that does not verify
        with contextlib.suppress(JournalError):
            self.journal.with_chain(self._advance_key_backups)

    @staticmethod
    def shredded_not_journaled(session: Session, journaled: set[str], *, limit: int = 5) -> list[str]:
        """Keys the database shows shredded that the erasure journal does not name: the journal was reset
        (every shred is journaled before it commits). The database witnesses what the key folder forgot."""
        shredded = session.scalars(select(DataKey.subject_id).where(DataKey.wrapped_key.is_(None))
                                   .order_by(DataKey.subject_id))
        return [subject_id for subject_id in shredded if subject_id not in journaled][:limit]

    def reapply_journal(self, session: Session, entries: list[Erasure] | None = None) -> list[Erasure]:
        """After a restore: shred again every subject the journal says was erased (the journal is checked
        end to end first: a changed or cut-off journal raises JournalError and the restore stops).
        `entries` replaces the journal only when an operator restores despite its loss."""
        entries = self.journal.entries() if entries is None else entries
        now = utcnow()
        for subject_id in {entry.subject_id for entry in entries}:
            record = session.get(DataKey, subject_id)
            if record is None:
                session.add(DataKey(subject_id=subject_id, suite=self.suite.value,
                                    kek_version=self.keys.current_version(), wrapped_key=None,
                                    created_at=now, shredded_at=now))
            elif record.wrapped_key is not None:
                record.wrapped_key = None
                record.shredded_at = now
        session.flush()
        return entries

    # -- backups --------------------------------------------------------------------------
    def wrap_backup_key(self, key: bytes) -> tuple[int, bytes]:
        version = self.keys.current_version()
        return version, crypto.encrypt(self.suite, self._wrap_key(version, self.suite), key, b"tripguard/backup")

    def unwrap_backup_key(self, version: int, wrapped: bytes) -> bytes:
        return crypto.decrypt(self._wrap_key(version, crypto.suite_of(wrapped)), wrapped, b"tripguard/backup")

    def _key_backup_wrap(self, version: int, suite: Suite) -> bytes:
        return crypto.derive(self.keys.kek(version), info="tripguard/key-backup", suite=suite)

    def new_key_backup_key(self) -> tuple[str, bytes]:
        """A key for one key backup, kept only in the key folder until the window passes, bound to the
        erasure journal as it stands: (id, key). Raises JournalError when the journal does not verify."""
        version = self.keys.current_version()

        def create(chain: Chain) -> tuple[str, bytes]:
            key_id, key, _ = self.backup_keys.create(kek_version=version, suite=self.suite, head=chain.head,
                                                     wrap=self._key_backup_wrap(version, self.suite))
            return key_id, key

        return self.journal.with_chain(create)

    def open_key_backup_key(self, key_id: str) -> bytes:
        """Raises KeyBackupExpired once the key-backup window has passed (the key no longer exists)."""
        return self._open_key_backup_entry(self.backup_keys.sealed(key_id))

    def key_backup_journal_head(self, key_id: str) -> Head | None:
        """The journal head a key-backup key is bound to, authenticated by unwrapping the key (a changed
        head does not unwrap); None for a key made before keys were bound to the journal."""
        entry = self.backup_keys.sealed(key_id)
        self._open_key_backup_entry(entry)
        return entry.head

    def _open_key_backup_entry(self, entry: SealedKey) -> bytes:
        try:
            return crypto.decrypt(self._key_backup_wrap(entry.kek_version, crypto.suite_of(entry.sealed)),
                                  entry.sealed, entry.context)
        except crypto.DecryptionFailed as exc:
            raise KeyBackupKeyChanged(
                f"the key of key backup {entry.key_id} does not open: its entry in backup-keys.json was changed "
                "(the erasure-journal head it is bound to included) or belongs to another keyring") from exc

    # -- rotation -------------------------------------------------------------------------
    def rewrap_batch(self, session: Session, *, target_version: int, batch: int = 500) -> int:
        """Rewrap up to `batch` data keys still under an older KEK version; returns how many."""
        records = session.scalars(
            select(DataKey).where(DataKey.kek_version != target_version, DataKey.wrapped_key.is_not(None))
            .order_by(DataKey.subject_id).limit(batch).with_for_update(skip_locked=True)
        ).all()
        now = utcnow()
        for record in records:
            key = self._unwrap(record)
            assert key is not None
            suite = Suite(record.suite)
            record.wrapped_key = crypto.encrypt(suite, self._wrap_key(target_version, suite), key,
                                                _wrap_context(record.subject_id, target_version, record.suite))
            record.kek_version = target_version
            record.rewrapped_at = now
        session.flush()
        return len(records)

    def versions_in_use(self, session: Session) -> Iterator[int]:
        yield from session.scalars(
            select(DataKey.kek_version).where(DataKey.wrapped_key.is_not(None)).distinct()
        )
