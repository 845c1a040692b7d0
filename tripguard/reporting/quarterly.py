"""The quarterly evaluation report (R 五): every KPI against its target with its trend over the last four
quarters, the plan's five risks with their status, and the security self-assessment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from tripguard.core.i18n import N_
from tripguard.core.settings import Settings
from tripguard.reporting import kpis, periods
from tripguard.reporting.security_check import Assessment, assess
from tripguard.vault.keysource import KeySource

TREND_QUARTERS = 4
# The plan's five targets (R 五.2), drawn together over the quarters.
PLAN_TARGETS = ("screening.pass_rate", "devices.install_rate", "safety.use_rate", "training.coverage")


@dataclass(frozen=True)
class Risk:
    number: int
    title: str  # msgid
    impact: str  # high | medium
    kpis: tuple[str, ...]  # the figures that show it; the security risk reads the self-assessment


# 四、風險評估與應對措施: the five risks and what shows whether each is under control.
RISKS = (
    Risk(1, N_("Driver background screening not thorough"), "high", ("screening.pass_rate", "screening.coverage")),
    Risk(2, N_("In-car monitoring devices not fully installed"), "medium",
         ("devices.install_rate", "devices.operating_rate")),
    Risk(3, N_("Flaws in passenger safety features leak information"), "medium",
         ("privacy.breaches", "safety.use_rate")),
    Risk(4, N_("Network security protection insufficient"), "high", ()),
    Risk(5, N_("Driver safety training insufficient"), "medium", ("training.coverage", "training.satisfaction")),
)
ORDER = {"red": 3, "amber": 2, "green": 1, "info": 0}


@dataclass(frozen=True)
class RiskStatus:
    risk: Risk
    status: str


@dataclass(frozen=True)
class QuarterlyReport:
    period: periods.Period
    generated_at: datetime
    results: list[kpis.Result]
    trends: dict[str, list[tuple[str, float | None]]]  # kpi key -> [(quarter, value)], oldest first; None: no data
    risks: list[RiskStatus]
    assessment: Assessment
    closed: dict[str, int] = field(default_factory=dict)  # quarter -> the version of its frozen figures shown

    @property
    def version(self) -> int | None:
        """The report's quarter: the version of its frozen figures, or None while it is not closed."""
        return self.closed.get(self.period.label)


def _risk_status(risk: Risk, results: dict[str, kpis.Result], assessment: Assessment) -> str:
    if not risk.kpis:
        return "green" if assessment.passed else "amber" if assessment.score >= 0.8 else "red"
    statuses = [results[key].status for key in risk.kpis]
    worst = max(statuses, key=ORDER.__getitem__)
    return "green" if worst == "info" else worst


def build(session: Session, *, settings: Settings, keys: KeySource, quarter: str, now: datetime,
          progress: Callable[[str], None] = lambda _: None) -> QuarterlyReport:
    period = periods.parse(quarter, settings.timezone)
    history = periods.trailing(period, TREND_QUARTERS, settings.timezone)
    trends: dict[str, list[tuple[str, float | None]]] = {kpi.key: [] for kpi in kpis.KPIS}
    results: list[kpis.Result] = []
    closed: dict[str, int] = {}
    for past in history:  # each quarter as it was (or as it was closed), never today's figures
        progress(past.label)
        results = kpis.compute(session, period=past, now=now,
                               ack_seconds=settings.incident_ack_seconds,
                               timezone=settings.timezone)
        for result in results:
            trends[result.kpi.key].append((past.label, result.value.value))
        if (version := next((r.frozen for r in results if r.frozen is not None), None)) is not None:
            closed[past.label] = version
    progress("security")
    assessment = assess(session, settings=settings, keys=keys, now=now)
    by_key = {r.kpi.key: r for r in results}
    return QuarterlyReport(period=period, generated_at=now, results=results, trends=trends,
                           risks=[RiskStatus(risk, _risk_status(risk, by_key, assessment)) for risk in RISKS],
                           assessment=assessment, closed=closed)
