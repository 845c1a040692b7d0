"""What the exporters need to know about the deployment (environment, prefix TRIPGUARD_REGULATOR_).

Kept apart from `core.settings` so that this half of the regulator domain configures itself; the feed's
transport settings live with the feed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tripguard.core.errors import Conflict
from tripguard.regulator.codes import CommercialType, Datum


class NotConfigured(Conflict):
    """A field every message of a type requires has no configured source."""


class ExportSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRIPGUARD_REGULATOR_", env_file=".env", extra="ignore")

    company_id: str | None = None  # CompanyId, assigned by the platform (部平台统一分配)
    region_code: int | None = None  # Address / *RegionCode: the licensing city's GB/T 2260 code, e.g. 110100
    fare_type: str | None = None  # FareType: the operator's fare code, as sent in baseInfoCompanyFare
    commercial_type: CommercialType = CommercialType.RIDE_HAILING
    datum: Datum = Datum.WGS84  # what coordinates are sent in (codes.py)
    position_seconds: int = Field(default=10, ge=1, le=3600)  # one position per vehicle and driver at most this often
    # Optional fields sent only when the operator opts in, as "<type>.<Field>": e.g.
    # ["baseInfoDriver.EmergencyContact", "baseInfoDriver.DriverName"]. Nothing optional is sent otherwise.
    opt_in: frozenset[str] = frozenset()

    def required(self) -> tuple[str, int]:
        """(CompanyId, region code): what every exporter needs, or `NotConfigured`."""
        if not self.company_id or self.region_code is None:
            raise NotConfigured("set TRIPGUARD_REGULATOR_COMPANY_ID and TRIPGUARD_REGULATOR_REGION_CODE")
        return self.company_id, self.region_code

    def fare(self) -> str:
        if not self.fare_type:
            raise NotConfigured("set TRIPGUARD_REGULATOR_FARE_TYPE (the fare code sent in baseInfoCompanyFare)")
        return self.fare_type

    def opted(self, kind: str, field: str) -> bool:
        return f"{kind}.{field}" in self.opt_in


_override: list[ExportSettings] = []


@lru_cache
def _from_environment() -> ExportSettings:
    return ExportSettings()


def current() -> ExportSettings:
    return _override[-1] if _override else _from_environment()


@contextmanager
def using(settings: ExportSettings) -> Iterator[ExportSettings]:
    """Export with `settings` (tests, and a CLI run naming its own)."""
    _override.append(settings)
    try:
        yield settings
    finally:
        _override.pop()
