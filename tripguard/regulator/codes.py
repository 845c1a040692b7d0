"""The platform's codes and units ([M] in tripguard/regulator/proto/otipc.proto; reference §3), and the
conversions every exporter uses: times, positions and their datum.

The datum: TripGuard stores every position in WGS-84 (an operator sending GCJ-02 has it converted at
ingest, `telematics.events`). The feed sends WGS-84 with Encrypt = 2 unless the deployment sets
TRIPGUARD_REGULATOR_DATUM=gcj02, when each coordinate is converted back to GCJ-02 (the datum Chinese maps
and most platforms use) and sent with Encrypt = 1. Outside China's GCJ-02 area the conversion is the
identity, as the map providers' is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum

from tripguard.telematics import service as telematics

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # the platform's times are Beijing local times


class Encrypt(IntEnum):
    """The datum of a message's coordinates (坐标加密标识)."""

    OTHER = 0
    GCJ02 = 1
    WGS84 = 2
    BD09 = 3
    CGCS2000 = 4


class BizStatus(IntEnum):
    """What the vehicle or driver is doing at a position (营运状态)."""

    CARRYING = 1  # 载客
    ACCEPTED = 2  # 接单
    EMPTY = 3  # 空驶
    OFF = 4  # 停运


class Flag(IntEnum):
    """What a base-info record does to the platform's copy (操作标识)."""

    ADD = 1
    UPDATE = 2
    DELETE = 3


class State(IntEnum):
    """Whether a base-info record is in force (状态)."""

    VALID = 0
    INVALID = 1


class CancelTypeCode(IntEnum):
    """Why an order was cancelled (撤销类型代码)."""

    PASSENGER_EARLY = 1
    DRIVER_EARLY = 2
    PLATFORM = 3
    PASSENGER_BREACH = 4
    DRIVER_BREACH = 5


class Operator(IntEnum):
    """Who cancelled an order (撤销发起方)."""

    PASSENGER = 1
    DRIVER = 2
    PLATFORM = 3


class CommercialType(IntEnum):
    """The service a vehicle or driver is licensed for (服务类型)."""

    RIDE_HAILING = 1  # 网约车
    CRUISING_TAXI = 2  # 巡游出租
    CARPOOL = 3  # 私人小客车合乘


class NetType(IntEnum):
    UNICOM = 1
    MOBILE = 2
    TELECOM = 3
    OTHER = 4


class MapType(IntEnum):
    BAIDU = 1
    AUTONAVI = 2
    OTHER = 3


class Datum(StrEnum):
    """What the deployment sends (TRIPGUARD_REGULATOR_DATUM)."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"


NOT_OPERATING = "0"  # OrderId of a position outside any order [M]


def timestamp(moment: datetime) -> int:
    """YYYYMMDDhhmmss in Beijing time, as a number (the F14 timestamps)."""
    return int(moment.astimezone(CHINA).strftime("%Y%m%d%H%M%S"))


def date(moment: datetime) -> int:
    """YYYYMMDD in Beijing time (the date-only fields: birthdays, course and registration dates)."""
    return int(moment.astimezone(CHINA).strftime("%Y%m%d"))


def unix_time(moment: datetime) -> int:
    """PositionTime: seconds since the epoch."""
    return int(moment.astimezone(UTC).timestamp())


def micro_degrees(value: float) -> int:
    """A coordinate as the platform's integer 1e-6 degrees. The fields are unsigned: China's longitudes and
    latitudes are positive; a negative one (a test track elsewhere) cannot be sent and is refused."""
    scaled = round(value * 1_000_000)
    if scaled < 0:
        raise ValueError(f"a negative coordinate cannot be sent: {value}")
    return scaled


def encrypt(datum: Datum) -> Encrypt:
    return Encrypt.GCJ02 if datum is Datum.GCJ02 else Encrypt.WGS84


def coordinates(lon: float, lat: float, datum: Datum) -> tuple[int, int, Encrypt]:
    """A stored WGS-84 position as (Longitude, Latitude, Encrypt) in the deployment's datum."""
    if datum is Datum.GCJ02:
        lon, lat = telematics.to_gcj02(lon, lat)
        return micro_degrees(lon), micro_degrees(lat), Encrypt.GCJ02
    return micro_degrees(lon), micro_degrees(lat), Encrypt.WGS84


def speed_kmh(speed_mps: float | None) -> int | None:
    return None if speed_mps is None else round(speed_mps * 3.6)


def direction(heading: float | None) -> int | None:
    return None if heading is None else round(heading) % 360
