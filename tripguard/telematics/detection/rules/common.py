"""Confirmation against lone spikes, and the low median, for the reference and the batched rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tripguard.telematics.detection.contract import MonitorConfig

if TYPE_CHECKING:
    from tripguard.telematics.detection.fast_monitor import BatchMonitor

NAN = float("nan")


def low_median(values: Sequence[float]) -> float:
    """The middle value (the lower of the two middle ones for an even count): always one of the values,
    so the reference and the batched rules agree to the bit."""
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def low_median_rows(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """`low_median` of each row's first `counts` entries (the rest NaN, which sorts last)."""
    ordered = np.sort(values, axis=1)
    low: np.ndarray = ordered[np.arange(len(values)), np.maximum(counts - 1, 0) // 2]
    return low


def confirmed(fixes: int, first_ts: float, ts: float, config: MonitorConfig) -> bool:
    return fixes >= config.confirm_fixes or (fixes >= 2 and ts - first_ts >= config.confirm_seconds)


def confirmed_rows(fixes: np.ndarray, first_ts: np.ndarray, ts: np.ndarray, config: MonitorConfig) -> np.ndarray:
    confirmed: np.ndarray = (fixes >= config.confirm_fixes) | ((fixes >= 2) & (ts - first_ts >= config.confirm_seconds))
    return confirmed


@dataclass
class Held:
    """A condition that alerts once it has held for some seconds, switched on and off only when confirmed."""

    on: bool = False
    since: float | None = None  # when the confirmed condition began
    flips: int = 0  # fixes in a row contradicting `on`
    flip_since: float = NAN
    alerted: bool = False

    def update(self, holds: bool, ts: float, config: MonitorConfig) -> None:
        if holds == self.on:
            self.flips = 0
            return
        if self.flips == 0:
            self.flip_since = ts
        self.flips += 1
        if confirmed(self.flips, self.flip_since, ts, config):
            self.on, self.flips = holds, 0
            self.since = self.flip_since if holds else None
            if not holds:
                self.alerted = False

    def fires(self, holds: bool, ts: float, seconds: float) -> bool:
        if self.on and holds and not self.alerted and self.since is not None and ts - self.since >= seconds:
            self.alerted = True
            return True
        return False


HELD_FLOATS = ("since", "flip_since")
HELD_BOOLS = ("on", "alerted")
HELD_INTS = ("flips",)


def held_columns(prefix: str) -> tuple[list[str], list[str], list[str]]:
    return ([f"{prefix}_{n}" for n in HELD_FLOATS], [f"{prefix}_{n}" for n in HELD_BOOLS],
            [f"{prefix}_{n}" for n in HELD_INTS])


def held_rows(monitor: BatchMonitor, prefix: str, s: np.ndarray, ts: np.ndarray, holds: np.ndarray,
              seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """`Held.update` then `Held.fires` for many trips (each slot once): where it alerts now, and since when."""
    f, b, i, config = monitor.f, monitor.b, monitor.i, monitor.config
    on, flips = b[f"{prefix}_on"][s], i[f"{prefix}_flips"][s]
    same = holds == on
    flip_since = np.where(~same & (flips == 0), ts, f[f"{prefix}_flip_since"][s])
    flips = np.where(same, 0, flips + 1)
    switch = ~same & confirmed_rows(flips, flip_since, ts, config)
    on = np.where(switch, holds, on)
    since = np.where(switch, np.where(holds, flip_since, NAN), f[f"{prefix}_since"][s])
    alerted = b[f"{prefix}_alerted"][s] & ~(switch & ~holds)
    fire = on & holds & ~alerted & (ts - since >= seconds)
    b[f"{prefix}_on"][s], i[f"{prefix}_flips"][s] = on, np.where(switch, 0, flips)
    f[f"{prefix}_flip_since"][s], f[f"{prefix}_since"][s] = flip_since, since
    b[f"{prefix}_alerted"][s] = alerted | fire
    return fire, since
