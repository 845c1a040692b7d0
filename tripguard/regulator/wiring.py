"""What the regulator domain registers at start-up (`tripguard.wiring`): its exporters, one per upload type
TripGuard holds, in `contract.EXPORTERS` (the feed's producing job and back-fill run what is registered)."""

from __future__ import annotations

from tripguard.regulator import sources


def register() -> None:
    sources.all_exporters()  # importing `sources` registered every exporter; this names what it did
