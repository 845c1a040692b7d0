"""The home dashboard: each role's live figures and charts, composed from the domains' own services
(the console shell reads no domain's tables)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tripguard.core.i18n import N_
from tripguard.privacy import breaches, requests
from tripguard.reporting import kpis, periods, quarterly, render
from tripguard.safety import service as safety
from tripguard.security.permissions import Permission
from tripguard.security.principal import Principal
from tripguard.telematics import service as telematics
from tripguard.telematics.fleet import registry

HOURS = 24
REQUESTS_DUE_WITHIN = timedelta(days=3)


@dataclass(frozen=True)
class Figure:
    key: str
    label: str  # msgid
    value: str  # a msgid when `translated` (the board is built before the page's language is known)
    href: str
    warn: bool = False
    translated: bool = False


@dataclass(frozen=True)
class Chart:
    key: str
    title: str  # msgid
    hours: list[int]  # epoch seconds of each hour
    series: dict[str, list[int]]  # label msgid or code -> count per hour


@dataclass
class Dashboard:
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


def _hours(now: datetime) -> list[datetime]:
    last = now.replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


def _chart(key: str, title: str, hours: list[datetime], counts: dict[datetime, dict[str, int]]) -> Chart:
    names = sorted({name for per_hour in counts.values() for name in per_hour})
    return Chart(key, title, [int(h.timestamp()) for h in hours],
                 {name: [counts.get(h, {}).get(name, 0) for h in hours] for name in names})


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f} %"


def build(session: Session, *, principal: Principal, now: datetime, charts: bool = True,
          timezone: str = "Asia/Shanghai", ack_seconds: int = 60, cache_seconds: float = 0) -> Dashboard:
    board = Dashboard()
    hours = _hours(now)
    if principal.can(Permission.INCIDENT_HANDLE):
        live = safety.live_case_count(session)
        board.figures.append(Figure("waiting", N_("Cases waiting for an agent"), str(live.get("open", 0)),
                                    "/console/incidents?state=open", warn=live.get("open", 0) > 0))
        board.figures.append(Figure("live", N_("Cases not yet resolved"), str(sum(live.values())),
                                    "/console/incidents"))
        if charts:
            board.charts.append(_chart("cases", N_("Cases raised per hour, last 24 h"), hours,
                                       safety.cases_by_hour(session, since=hours[0])))
    if principal.can(Permission.ALERTS_READ):
        alerts = telematics.alerts_by_hour(session, since=hours[0])
        last_hour = sum(count for at, per in alerts.items() if at >= now - timedelta(hours=1) for count in per.values())
        board.figures.append(Figure("alerts", N_("Alerts in the last hour"), str(last_hour), "/console/trips"))
        kpi = registry.device_kpi(session, since=now - timedelta(days=1))
        board.figures.append(Figure("operating", N_("Devices operating (24 h)"), _percent(kpi.operating_rate),
                                    "/console/devices", warn=kpi.operating_rate is not None and kpi.operating_rate < 1))
        board.figures.append(Figure("installed", N_("Vehicles with a device"), _percent(kpi.install_rate),
                                    "/console/devices?state=not_installed",
                                    warn=kpi.install_rate is not None and kpi.install_rate < 1))
        if charts:
            board.charts.append(_chart("alerts", N_("Alerts per hour by kind, last 24 h"), hours, alerts))
    if principal.can(Permission.REQUEST_HANDLE):
        due = requests.due_soon(session, within=REQUESTS_DUE_WITHIN)
        board.figures.append(Figure("requests", N_("Subject requests due within 3 days"), str(due),
                                    "/console/privacy/requests", warn=due > 0))
    if principal.can(Permission.BREACH_MANAGE):
        open_breaches = breaches.open_count(session)
        board.figures.append(Figure("breaches", N_("Breaches not closed"), str(open_breaches),
                                    "/console/privacy/breaches", warn=open_breaches > 0))
    board.figures.extend(quarter_figures(session, principal=principal, now=now, timezone=timezone,
                                         ack_seconds=ack_seconds, cache_seconds=cache_seconds))
    return board


# Where each owner reads more about its figures; a report reader goes to the Reports page.
OWNER_PAGES = {"screening_officer": "/console/screening", "safety_agent": "/console/trips",
               "trainer": "/console/training", "privacy_officer": "/console/privacy/requests",
               "support_agent": "/console/complaints", "hr_officer": "/console/discipline"}
_quarter_cache: dict[tuple[str, tuple[str, ...]], tuple[float, list[kpis.Result]]] = {}


def _owned(principal: Principal) -> list[kpis.Kpi]:
    """The figures with a target this person answers for (a report reader: the plan's own targets); the
    device rates are on the board already, over the last 24 hours."""
    roles = {role.value for role in principal.roles}
    if principal.can(Permission.REPORT_READ):
        return [kpis.BY_KEY[key] for key in quarterly.PLAN_TARGETS]
    return [k for k in kpis.KPIS if k.owner in roles and not k.point_in_time]


def quarter_figures(session: Session, *, principal: Principal, now: datetime, timezone: str, ack_seconds: int,
                    cache_seconds: float) -> list[Figure]:
    """This quarter's figures against their targets, as the KPI engine computes them (kept for
    `cache_seconds` in this process: the board refreshes every few seconds, a quarter is a lot of trips)."""
    owned = _owned(principal)
    if not owned:
        return []
    period = periods.parse(periods.current_quarter(now, timezone), timezone)
    key = (period.label, tuple(k.key for k in owned))
    cached = _quarter_cache.get(key)
    if cached is None or time.monotonic() - cached[0] >= cache_seconds:
        cached = (time.monotonic(),
                  kpis.compute(session, period=period, now=now, ack_seconds=ack_seconds,
                                                 timezone=timezone, keys=list(key[1])))
        _quarter_cache[key] = cached
    href = "/console/reports" if principal.can(Permission.REPORT_READ) else next(
        (OWNER_PAGES[r.value] for r in principal.roles if r.value in OWNER_PAGES), "/console")
    return [Figure(f"quarter.{r.kpi.key}", r.kpi.title, render.NO_DATA if r.value.value is None else render.shown(r),
                   href, warn=r.status == "red", translated=r.value.value is None)
            for r in cached[1] if r.target.at_least is not None or r.target.at_most is not None]
