"""Every exporter, registered: import this (not the modules one by one) to fill `contract.EXPORTERS`."""

from __future__ import annotations

from tripguard.regulator import exporters, trip_exporters
from tripguard.regulator.contract import EXPORTERS, Exporter

MODULES = (exporters, trip_exporters)


def all_exporters() -> dict[str, Exporter]:
    return EXPORTERS
