"""The trip monitor's thresholds and its output (an alert), shared by both monitors and their rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tripguard.telematics.ingest.events import format_ts

SEVERITY = {"route_deviation": "high", "possible_crash": "high", "long_stop": "medium", "early_end": "medium",
            "gps_lost": "medium", "device_offline": "medium", "speeding": "low",
            # not the monitor's: the dispatch gate asked once as a trip starts (`IngestOptions.check_trip`)
            "ineligible_driver": "high"}


@dataclass(frozen=True)
class MonitorConfig:
    deviation_m: float = 300.0
    deviation_seconds: float = 30.0
    stop_radius_m: float = 50.0
    stop_seconds: float = 600.0
    endpoint_radius_m: float = 250.0
    early_end_m: float = 500.0
    gps_lost_seconds: float = 90.0
    max_plausible_mps: float = 70.0
    speed_limit_mps: float = 38.9  # 140 km/h: 120 plus a margin, without road speed-limit data
    speeding_seconds: float = 45.0
    crash_from_mps: float = 13.9  # 50 km/h
    crash_to_mps: float = 1.0
    crash_within_s: float = 5.0
    crash_g: float = 2.5
    crash_still_seconds: float = 30.0
    device_silence_seconds: float = 120.0
    lateness_seconds: float = 5.0
    # Noise (rules/__init__.py): a change of state needs this many fixes in a row, or two this far apart.
    confirm_fixes: float = 3.0
    confirm_seconds: float = 45.0
    # What the device says of itself, when it says it: a reported speed at or below `still_mps` (or
    # `stationary: true`) means standing, and a fix up to `still_drift_m` from the stop still belongs to
    # it; at or above `moving_mps` (or `stationary: false`) it is moving, whatever the position says.
    still_mps: float = 0.5
    moving_mps: float = 2.0
    still_drift_m: float = 200.0
    # A fix whose own accuracy estimate is worse than this keeps the trip alive but gives no position.
    max_accuracy_m: float = 100.0


def config_with(overrides: dict[str, float]) -> MonitorConfig:
    """The defaults with an operator's changes (`TRIPGUARD_MONITOR_THRESHOLDS`, `--threshold`)."""
    return dataclasses.replace(MonitorConfig(), **overrides)


@dataclass(frozen=True)
class Alert:
    trip_id: str
    kind: str
    ts: float
    lon: float | None
    lat: float | None
    evidence: dict[str, object]

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def as_dict(self) -> dict[str, object]:
        """The contract's shape and key order (DESIGN.md §4)."""
        return {"trip_id": self.trip_id, "kind": self.kind, "ts": format_ts(self.ts), "lon": self.lon,
                "lat": self.lat, "severity": self.severity, "evidence": self.evidence}

    def without_position(self) -> dict[str, object]:
        """What leaves the monitor for the operator's webhook and the live map: no position. Where it
        happened is kept sealed under the trip's key and opens with the trajectory, on a purpose."""
        return {k: v for k, v in self.as_dict().items() if k not in ("lon", "lat")}
