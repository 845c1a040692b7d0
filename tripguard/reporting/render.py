"""The quarterly report as CSV (one row per figure, for spreadsheets), HTML (one self-contained page,
charts inline as SVG) and PDF (A4, the Chinese in an embedded font subset, charts as images), in
Chinese or English."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from tripguard.core import i18n
from tripguard.core.i18n import N_
from tripguard.core.pdf import RENDERING, font
from tripguard.reporting.kpis import Result
from tripguard.reporting.quarterly import QuarterlyReport

FORMATS = ("html", "pdf", "csv")
STATUS_WORDS = {"green": N_("On target"), "amber": N_("Near target"), "red": N_("Off target"),
                "info": N_("For information")}
STATUS_COLOURS = {"green": "#1e7b4a", "amber": "#b8860b", "red": "#c0392b", "info": "#5b6475"}


@contextmanager
def language(locale: str) -> Iterator[None]:
    token = i18n.current_locale.set(locale)
    try:
        yield
    finally:
        i18n.current_locale.reset(token)


NO_DATA = N_("no data")


def shown(result: Result) -> str:
    value = result.value.value
    if value is None:
        return i18n.gettext(NO_DATA)
    if result.kpi.unit == "ratio":
        return f"{value * 100:.1f} %"
    if result.kpi.unit == "count":
        return f"{value:.0f}"
    return f"{value:.1f}"


def target_text(result: Result) -> str:
    target = result.target
    scale = 100 if result.kpi.unit == "ratio" else 1
    unit = " %" if result.kpi.unit == "ratio" else ""
    if target.at_least is not None:
        return f"≥ {target.at_least * scale:g}{unit}"
    if target.at_most is not None:
        return f"≤ {target.at_most * scale:g}{unit}"
    return "—"


def closed_text(report: QuarterlyReport) -> str:
    """Whether the quarter's figures are frozen, and which version."""
    if report.version is None:
        return i18n.gettext("Not closed: the figures are computed from the quarter's records when the report is "
                            "built.")
    return i18n.gettext("Closed: the frozen figures, version %(version)s.") % {"version": report.version}


def to_csv(report: QuarterlyReport, locale: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    with language(locale):
        writer.writerow(["section", "key", "title", "period", "value", "numerator", "denominator", "target", "status",
                         "version"])
        for r in report.results:
            writer.writerow(["kpi", r.kpi.key, i18n.gettext(r.kpi.title), report.period.label,
                             NO_DATA if r.value.value is None else r.value.value, r.value.numerator,
                             r.value.denominator, target_text(r), r.status, r.frozen or ""])
        for key, points in report.trends.items():
            for quarter, value in points:
                writer.writerow(["trend", key, "", quarter, NO_DATA if value is None else value, "", "", "", "",
                                 report.closed.get(quarter, "")])
        for risk in report.risks:
            writer.writerow(["risk", f"risk.{risk.risk.number}", i18n.gettext(risk.risk.title), report.period.label,
                             "", "", "", risk.risk.impact, risk.status])
        for control, evidence in report.assessment.results:
            writer.writerow(["security", control.key, i18n.gettext(control.title), report.period.label,
                             1 if evidence.passed else 0, "", "", evidence.text(i18n.gettext),
                             "green" if evidence.passed else "red"])
    return ("\ufeff" + out.getvalue()).encode()  # a BOM: spreadsheet programs then read the Chinese right


def to_html(report: QuarterlyReport, locale: str, timezone: str) -> bytes:
    from tripguard.console.rendering import env  # the console's templates and filters
    from tripguard.reporting import charts  # matplotlib: imported by the processes that draw a report only

    with language(locale):
        svg = {"targets": charts.plan_targets(report, "svg").decode(),
               "alerts": charts.alerts_by_kind(report, "svg").decode()}
        html = env.get_template("reporting/quarterly.html").render(
            report=report, shown=shown, target_text=target_text, status_words=STATUS_WORDS, translate=i18n.gettext,
            status_colours=STATUS_COLOURS, charts=svg, html_lang="zh-CN" if locale.startswith("zh") else "en",
            zone=ZoneInfo(timezone), generated=report.generated_at.astimezone(ZoneInfo(timezone)),
            closed_text=closed_text(report))
    return html.encode()


def to_pdf(report: QuarterlyReport, locale: str, timezone: str) -> bytes:
    from tripguard.reporting import charts  # matplotlib: imported by the processes that draw a report only

    face = font()
    with language(locale):
        targets_png = charts.plan_targets(report, "png")
        alerts_png = charts.alerts_by_kind(report, "png")
        title = ParagraphStyle("title", fontName=face, fontSize=18, leading=24)
        heading = ParagraphStyle("heading", fontName=face, fontSize=12, leading=18, spaceBefore=8)
        body = ParagraphStyle("body", fontName=face, fontSize=8, leading=11)
        story: list[object] = [
            Paragraph(i18n.gettext("Quarterly safety and privacy evaluation") + f" · {report.period.label}", title),
            Paragraph(i18n.gettext("Generated %(at)s (%(zone)s).") % {"at": report.generated_at.astimezone(
                ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M"), "zone": timezone}, body),
            Paragraph(closed_text(report), body),
            Paragraph(i18n.gettext("Figures against their targets"), heading)]
        rows = [[i18n.gettext("Figure"), i18n.gettext("Value"), i18n.gettext("Target"), i18n.gettext("Status")]]
        rows += [[Paragraph(i18n.gettext(r.kpi.title), body), shown(r), target_text(r),
                  i18n.gettext(STATUS_WORDS[r.status])] for r in report.results]
        table = Table(rows, colWidths=[90 * mm, 28 * mm, 28 * mm, 30 * mm], repeatRows=1)
        style = [("FONTNAME", (0, 0), (-1, -1), face), ("FONTSIZE", (0, 0), (-1, -1), 8),
                 ("GRID", (0, 0), (-1, -1), 0.25, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]
        style += [("TEXTCOLOR", (3, n), (3, n), colors.HexColor(STATUS_COLOURS[r.status]))
                  for n, r in enumerate(report.results, start=1)]
        table.setStyle(TableStyle(style))
        story += [table, Spacer(1, 4 * mm),
                  Image(io.BytesIO(targets_png), width=170 * mm, height=78 * mm),
                  Image(io.BytesIO(alerts_png), width=170 * mm, height=68 * mm),
                  Paragraph(i18n.gettext("The plan's five risks"), heading)]
        risks = [[i18n.gettext("Risk"), i18n.gettext("Impact"), i18n.gettext("Status")]]
        risks += [[Paragraph(f"{r.risk.number}. {i18n.gettext(r.risk.title)}", body), i18n.gettext(r.risk.impact),
                   i18n.gettext(STATUS_WORDS[r.status])] for r in report.risks]
        risk_table = Table(risks, colWidths=[110 * mm, 30 * mm, 36 * mm])
        risk_table.setStyle(TableStyle(style[:4]))
        story += [risk_table, Paragraph(i18n.gettext("Security self-assessment: %(score)s %% of controls met")
                                        % {"score": f"{report.assessment.score * 100:.0f}"}, heading)]
        controls = [[i18n.gettext("Control"), i18n.gettext("Status"), i18n.gettext("Evidence")]]
        controls += [[Paragraph(i18n.gettext(c.title), body),
                      i18n.gettext("met") if e.passed else i18n.gettext("not met"),
                      Paragraph(e.text(i18n.gettext), body)] for c, e in report.assessment.results]
        control_table = Table(controls, colWidths=[60 * mm, 20 * mm, 96 * mm])
        control_table.setStyle(TableStyle(style[:4]))
        story.append(control_table)
        buffer = io.BytesIO()
        with RENDERING:
            SimpleDocTemplate(buffer, pagesize=A4, title=f"TripGuard {report.period.label}",
                              leftMargin=17 * mm, rightMargin=17 * mm, topMargin=15 * mm,
                              bottomMargin=15 * mm).build(story)
    return buffer.getvalue()


def render(report: QuarterlyReport, fmt: str, locale: str, timezone: str) -> bytes:
    if fmt == "csv":
        return to_csv(report, locale)
    if fmt == "html":
        return to_html(report, locale, timezone)
    return to_pdf(report, locale, timezone)


