"""The erasure journal: which subjects were crypto-shredded, kept with the keys, outside DB backups.

A backup taken before an erasure still holds the subject's wrapped data key. Restoring it must not
bring the subject back, so a restore re-applies this journal. It holds subject ids and times only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tripguard.core.clock import utcnow


@dataclass(frozen=True)
class ErasureJournal:
    path: Path

    def append(self, subject_id: str, reason: str) -> None:
        """Written (and synced) before the erasure commits: a crash errs on the side of erasing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"subject_id": subject_id, "at": utcnow().isoformat(), "reason": reason})
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def subject_ids(self) -> Iterator[str]:
        if not self.path.exists():
            return
        with self.path.open() as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)["subject_id"]
