"""Small statistics the figures share."""

from __future__ import annotations


def quantile(values: list[float], q: float) -> float | None:
    """The nearest-rank quantile (an observed value, never an interpolation); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
