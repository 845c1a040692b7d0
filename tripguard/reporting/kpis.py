"""The KPI engine: each figure the plan and the delivery rules ask for is defined once (what it counts,
over what, its target and its owner) and computed from the domains' own figures, each an SQL aggregate
over indexed times. A figure with records behind it can be drilled into (ids and times, never personal
data).

A finished period is measured as it was: from its own effective-dated records (the roster of the
period, the vehicles registered by its end) or the daily snapshots taken in it, never from today's
state; where nothing of the period was recorded, the figure is "no data" (None). A closed quarter's
figures are frozen (`reporting_period_figures`): reports read the latest version, not a recomputation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from tripguard.audit import service as audit
from tripguard.core.i18n import N_
from tripguard.feedback import kpi as feedback_kpi
from tripguard.privacy import kpi as privacy_kpi
from tripguard.reporting import snapshots
from tripguard.reporting.models import PeriodFigures
from tripguard.reporting.periods import Period
from tripguard.safety import kpi as safety_kpi
from tripguard.screening import kpi as screening_kpi
from tripguard.telematics.fleet import registry
from tripguard.telematics.store import kpi as telematics_kpi
from tripguard.workforce import discipline
from tripguard.workforce import kpi as workforce_kpi

T = TypeVar("T")
Unit = Literal["ratio", "count", "seconds", "hours", "score"]
Status = Literal["green", "amber", "red", "info"]
AMBER_MARGIN = 0.05  # a ratio within 5 points of its target is amber, further is red


@dataclass(frozen=True)
class Target:
    at_least: float | None = None
    at_most: float | None = None

    def status(self, value: float | None) -> Status:
        if value is None:
            return "info"
        if self.at_least is not None:
            if value >= self.at_least:
                return "green"
            return "amber" if value >= self.at_least - AMBER_MARGIN * max(1.0, self.at_least) else "red"
        if self.at_most is not None:
            if value <= self.at_most:
                return "green"
            return "amber" if value <= self.at_most * (1 + AMBER_MARGIN * 4) else "red"
        return "info"


@dataclass(frozen=True)
class Value:
    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    detail: dict[str, float | int | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    session: Session
    period: Period
    now: datetime
    ack_seconds: int  # the SOS acknowledgement deadline the safety centre works to
    timezone: str = "Asia/Shanghai"  # the operator's, in which the daily snapshots are taken
    memo: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def finished(self) -> bool:
        return self.period.end <= self.now

    @property
    def moment(self) -> datetime:
        """The end of what the period has seen: its end, or now while it runs."""
        return min(self.now, self.period.end)

    def once(self, name: str, compute: Callable[[], T]) -> T:
        """A domain's figures, computed once per report however many KPIs read them."""
        if name not in self.memo:
            self.memo[name] = compute()
        return self.memo[name]  # type: ignore[return-value]


@dataclass(frozen=True)
class Kpi:
    key: str
    title: str  # msgid
    definition: str  # msgid: numerator over denominator, in words
    source: str  # where in the plan or the rules it comes from
    owner: str  # the role answerable for it
    unit: Unit
    compute: Callable[[Context], Value]
    target: Callable[[Context], Target] = lambda _: Target()
    drill: Callable[[Context], list[dict[str, object]]] | None = None
    point_in_time: bool = False  # the period under way: measured now; a finished one: its snapshots or its end


def _ratio(numerator: int, denominator: int) -> Value:
    return Value(numerator / denominator if denominator else None, numerator, denominator)


def _screening(c: Context) -> screening_kpi.Figures:
    return c.once("screening", lambda: screening_kpi.figures(c.session, since=c.period.start, until=c.period.end,
                                                             now=c.moment))


def _safety_use(c: Context) -> safety_kpi.SafetyUse:
    return c.once("safety_use", lambda: safety_kpi.safety_use(c.session, since=c.period.start, until=c.period.end))


def _sos(c: Context) -> safety_kpi.SosFigures:
    return c.once("sos", lambda: safety_kpi.sos_figures(c.session, since=c.period.start, until=c.period.end))


def _training(c: Context) -> workforce_kpi.TrainingFigures:
    return c.once("training", lambda: workforce_kpi.figures(c.session, at=c.moment, since=c.period.start,
                                                            roster_since=c.period.start))


def _alerts(c: Context) -> Value:
    rates = telematics_kpi.alert_rates(c.session, since=c.period.start, until=c.period.end)
    return Value(rates.per_thousand(), sum(rates.alerts.values()), rates.trips,
                 {kind: rates.per_thousand(kind) for kind in sorted(rates.alerts)})


def _device_rates(c: Context) -> tuple[Value, Value]:
    """A finished period: rates over the vehicle-days and device-days of its daily snapshots; without any,
    the install rate as the registry dates it at the period's end, and the operating rate "no data" (the
    registry keeps each device's last heartbeat, not their history). The period under way: the registry now."""
    def compute() -> tuple[Value, Value]:
        if not c.finished:
            now = registry.device_kpi(c.session, since=c.now - timedelta(days=1))
            return (_ratio(now.vehicles_with_device, now.vehicles), _ratio(now.devices_heard, now.devices_installed))
        history = snapshots.device_history(c.session, since=c.period.start, until=c.period.end, timezone=c.timezone)
        if history is not None:
            days: dict[str, float | int | None] = {"snapshot_days": history.days}
            return (Value(*_ratio_parts(history.with_device, history.vehicles), days),
                    Value(*_ratio_parts(history.heard, history.installed), days))
        installs = telematics_kpi.installs_as_of(c.session, at=c.period.end)
        return (Value(*_ratio_parts(installs.with_device, installs.vehicles), {"snapshot_days": 0}),
                Value(None, detail={"snapshot_days": 0}))
    return c.once("devices", compute)


def _ratio_parts(numerator: int, denominator: int) -> tuple[float | None, int, int]:
    return (numerator / denominator if denominator else None, numerator, denominator)


def _complaints(c: Context) -> feedback_kpi.ComplaintFigures:
    return feedback_kpi.complaint_figures(c.session, since=c.period.start, until=c.period.end, now=c.now)


def _breaches(c: Context) -> privacy_kpi.BreachFigures:
    return privacy_kpi.breach_figures(c.session, since=c.period.start, until=c.period.end)


def _sanctions(c: Context) -> Value:
    counts = discipline.sanction_counts(c.session, since=c.period.start, until=c.period.end)
    return Value(float(sum(counts.values())), detail=dict(sorted(counts.items())))


def _requests(c: Context) -> Value:
    figures = privacy_kpi.request_figures(c.session, since=c.period.start, until=c.period.end)
    return _ratio(figures.on_time, figures.due)


def _deletions(c: Context) -> Value:
    figures = privacy_kpi.deletion_figures(c.session, since=c.period.start, until=c.period.end, now=c.now,
                                           installed_at=c.once("installed", lambda: audit.oldest_entry_at(c.session)))
    return Value(figures.on_schedule_rate, figures.days_run, figures.days, dict(figures.erased))


def _breach_value(c: Context) -> Value:
    figures = _breaches(c)
    return Value(float(figures.discovered), figures.reported_in_time, figures.serious,
                 {"serious": figures.serious, "report_p50_h": figures.report_p50_h,
                  "people_notified": figures.people_notified})


def _complaint_value(c: Context) -> Value:
    figures = _complaints(c)
    return Value(figures.in_time_rate, figures.answered_in_time, figures.settled,
                 {"received": figures.received, "pending": figures.pending, "answer_p50_h": figures.answer_p50_h,
                  "answer_p90_h": figures.answer_p90_h, **figures.by_category})


def _sos_records(c: Context) -> list[dict[str, object]]:
    return safety_kpi.sos_records(c.session, since=c.period.start, until=c.period.end)


def _late_requests(c: Context) -> list[dict[str, object]]:
    return privacy_kpi.late_requests(c.session, since=c.period.start, until=c.period.end)


def _late_complaints(c: Context) -> list[dict[str, object]]:
    return feedback_kpi.late_complaints(c.session, since=c.period.start, until=c.period.end, now=c.now)


KPIS: list[Kpi] = [
    Kpi("screening.pass_rate", N_("Screening pass rate"),
        N_("workers passed over workers with a final decision in the period"), "R 二.2 任務一; R 五.2 評估標準一",
        "screening_officer",
        "ratio", lambda c: _ratio(_screening(c).passed, _screening(c).decided), lambda _: Target(at_least=0.95)),
    Kpi("screening.coverage", N_("Active workers with a current clear screening"),
        N_("workers active in the period whose screening was clear and current, over workers active in the period"),
        "R 二.2 任務一",
        "screening_officer", "ratio", lambda c: _ratio(_screening(c).covered, _screening(c).active),
        lambda _: Target(at_least=1.0)),
    Kpi("devices.install_rate", N_("Vehicles with a monitoring device"),
        N_("registered vehicles with an installed device, over registered vehicles"),
        "R 二.2 任務二; R 五.2 評估標準二",
        "safety_agent", "ratio", lambda c: _device_rates(c)[0], lambda _: Target(at_least=1.0), point_in_time=True),
    Kpi("devices.operating_rate", N_("Devices operating"),
        N_("installed devices heard in the last 24 hours, over installed devices"), "R 五.2 評估標準二", "safety_agent",
        "ratio", lambda c: _device_rates(c)[1], lambda _: Target(at_least=1.0), point_in_time=True),
    Kpi("safety.use_rate", N_("Trips using a safety feature"),
        N_("trips shared, with a verified emergency contact, with an SOS or an answered check-in, over trips"),
        "R 二.2 任務三; R 五.2 評估標準三", "safety_agent", "ratio",
        lambda c: _ratio(_safety_use(c).used, _safety_use(c).trips),
        lambda _: Target(at_least=0.8)),
    Kpi("safety.share_rate", N_("Trips shared with family"), N_("trips with a share link, over trips"),
        "R 二.2 任務三", "safety_agent", "ratio", lambda c: _ratio(_safety_use(c).shared, _safety_use(c).trips)),
    Kpi("safety.contact_rate", N_("Trips with a verified emergency contact"),
        N_("trips whose passenger had a verified emergency contact, over trips"), "R 二.2 任務三", "safety_agent",
        "ratio", lambda c: _ratio(_safety_use(c).with_contacts, _safety_use(c).trips)),
    Kpi("sos.count", N_("SOS presses"), N_("emergency-button presses in the period"), "R 二.2 任務三",
        "safety_agent", "count", lambda c: Value(float(_sos(c).presses), detail={"genuine": _sos(c).genuine})),
    Kpi("sos.ack_p50_s", N_("SOS acknowledged in, median (s)"),
        N_("median seconds from the press to an agent's acknowledgement"), "R 二.2 任務三", "safety_agent",
        "seconds", lambda c: Value(_sos(c).ack_p50_s), lambda c: Target(at_most=c.ack_seconds),
        drill=_sos_records),
    Kpi("sos.ack_p90_s", N_("SOS acknowledged in, 90th percentile (s)"),
        N_("90th percentile of seconds from the press to an agent's acknowledgement"), "R 二.2 任務三",
        "safety_agent", "seconds", lambda c: Value(_sos(c).ack_p90_s), lambda c: Target(at_most=c.ack_seconds),
        drill=_sos_records),
    Kpi("alerts.per_1000_trips", N_("Alerts per 1,000 trips"),
        N_("trip-monitoring alerts raised in the period per 1,000 trips started in it, and by kind"),
        "R 二.2 任務二", "safety_agent", "score", _alerts),
    Kpi("training.coverage", N_("Training coverage"),
        N_("workers active in the period with every required course of their audience passed and in force (none "
           "required: not covered), over workers active in the period"), "R 二.2 任務五; R 五.2 評估標準五",
        "trainer", "ratio", lambda c: _ratio(_training(c).covered_workers, _training(c).active_workers),
        lambda _: Target(at_least=1.0)),
    Kpi("training.satisfaction", N_("Training satisfaction (1-5)"),
        N_("mean rating given after passing a course in the period"), "R 五.2 評估標準五", "trainer", "score",
        lambda c: Value(_training(c).satisfaction, denominator=_training(c).ratings),
        lambda _: Target(at_least=4.0)),
    Kpi("privacy.requests_on_time", N_("Subject requests answered on time"),
        N_("requests completed by their deadline, over requests due in the period"), "D 二(四)2; PIPL Art. 50",
        "privacy_officer", "ratio", _requests, lambda _: Target(at_least=1.0), drill=_late_requests),
    Kpi("privacy.deletions_on_schedule", N_("Deletions on schedule"),
        N_("days on which the retention run finished, over days of the period since the install began"), "D 二(四)1",
        "privacy_officer",
        "ratio", _deletions, lambda _: Target(at_least=1.0)),
    Kpi("privacy.breaches", N_("Personal-data breaches"),
        N_("breaches discovered in the period; serious ones reported to the authority in time"),
        "D 五(一); PIPL Art. 57",
        "privacy_officer", "count", _breach_value, lambda _: Target(at_most=0)),
    Kpi("complaints.answered_in_time", N_("Complaints answered in time"),
        N_("complaints answered by their deadline, over complaints received in the period that were answered or "
           "are past their deadline"), "D 六(二)",
        "support_agent", "ratio", _complaint_value, lambda _: Target(at_least=1.0), drill=_late_complaints),
    Kpi("discipline.sanctions", N_("Sanctions decided"), N_("sanctions decided in the period, by kind"), "D 六(三)",
        "hr_officer", "count", _sanctions),
]
BY_KEY = {kpi.key: kpi for kpi in KPIS}


@dataclass(frozen=True)
class Result:
    kpi: Kpi
    value: Value
    target: Target
    status: Status
    frozen: int | None = None  # the version of the closed quarter's figures it comes from


def frozen(session: Session, *, label: str) -> PeriodFigures | None:
    """The latest version of a closed period's figures, or None while it is open."""
    return session.scalar(select(PeriodFigures).where(PeriodFigures.period == label)
                          .order_by(PeriodFigures.version.desc()).limit(1))


def to_record(result: Result) -> dict[str, object]:
    """A result as a closed quarter keeps it (numbers and codes, no personal data)."""
    value = result.value
    return {"key": result.kpi.key, "value": value.value, "numerator": value.numerator,
            "denominator": value.denominator, "detail": dict(value.detail), "at_least": result.target.at_least,
            "at_most": result.target.at_most, "status": result.status}


def _thawed(kpi: Kpi, record: dict[str, object], version: int) -> Result:
    def number(name: str) -> float | None:
        raw = record.get(name)
        return float(raw) if isinstance(raw, int | float) else None

    detail = record.get("detail")
    target = Target(at_least=number("at_least"), at_most=number("at_most"))
    status = record.get("status")
    return Result(kpi, Value(number("value"), number("numerator"), number("denominator"),
                             dict(detail) if isinstance(detail, dict) else {}),
                  target, status if status in ("green", "amber", "red", "info") else target.status(number("value")),
                  frozen=version)


def compute(session: Session, *, period: Period, now: datetime, ack_seconds: int,
            timezone: str = "Asia/Shanghai",
            keys: list[str] | None = None, live: bool = False) -> list[Result]:
    """The period's figures: a closed quarter's frozen ones (unless `live`, which closing and restating use),
    else computed; a figure defined after the quarter closed is computed from the quarter's records."""
    context = Context(session, period, now, ack_seconds, timezone)
    kept = None if live else frozen(session, label=period.label)
    records = {str(r.get("key")): r for r in kept.figures} if kept is not None else {}
    results = []
    for kpi in KPIS if keys is None else [BY_KEY[k] for k in keys]:
        if kept is not None and kpi.key in records:
            results.append(_thawed(kpi, records[kpi.key], kept.version))
            continue
        value = kpi.compute(context)
        target = kpi.target(context)
        results.append(Result(kpi, value, target, target.status(value.value)))
    return results


def records(session: Session, *, period: Period, key: str, now: datetime, ack_seconds: int,
            timezone: str = "Asia/Shanghai") -> list[dict[str, object]]:
    kpi = BY_KEY[key]
    assert kpi.drill is not None
    return kpi.drill(Context(session, period, now, ack_seconds, timezone))
