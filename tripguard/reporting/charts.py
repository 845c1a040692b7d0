"""The report's charts, drawn with matplotlib (Agg, no display) in the report's language, Chinese in
WenQuanYi Micro Hei: SVG for the HTML report, PNG for the PDF."""

from __future__ import annotations

import io
from functools import lru_cache

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from tripguard.core import i18n
from tripguard.core.pdf import FONT_FILES, RENDERING
from tripguard.reporting.kpis import BY_KEY
from tripguard.reporting.quarterly import PLAN_TARGETS, QuarterlyReport

COLOURS = ("#0f6b5c", "#c0392b", "#2e6bb8", "#b8860b", "#6b4fa0")


@lru_cache(maxsize=1)
def _font_family() -> str:
    for path in FONT_FILES:
        if path.exists():
            font_manager.fontManager.addfont(str(path))
            return font_manager.FontProperties(fname=str(path)).get_name()
    return "DejaVu Sans"


def _render(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
    plt.close(figure)
    return buffer.getvalue()


def plan_targets(report: QuarterlyReport, fmt: str) -> bytes:
    """The plan's rate targets over the last four quarters, in percent."""
    with RENDERING:
        plt.rcParams["font.family"] = _font_family()
        plt.rcParams["svg.fonttype"] = "none"  # text stays text in the SVG (searchable, crisp)
        figure, axes = plt.subplots(figsize=(7, 3.2))
        quarters = [q for q, _ in report.trends[PLAN_TARGETS[0]]]
        empty = [all(report.trends[key][n][1] is None for key in PLAN_TARGETS) for n in range(len(quarters))]
        ticks = [f"{q}\n{i18n.gettext('no data')}" if nothing else q
                 for q, nothing in zip(quarters, empty, strict=True)]
        for colour, key in zip(COLOURS, PLAN_TARGETS, strict=False):
            values = [v * 100 if v is not None else float("nan") for _, v in report.trends[key]]
            axes.plot(range(len(values)), values, marker="o", color=colour, label=i18n.gettext(BY_KEY[key].title))
        axes.set_xticks(range(len(quarters)), ticks)  # a quarter with nothing recorded says so; no point is drawn
        axes.set_ylim(0, 105)
        axes.set_ylabel("%")
        axes.set_title(i18n.gettext("The plan's targets, last four quarters"))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="lower left")
        return _render(figure, fmt)


def alerts_by_kind(report: QuarterlyReport, fmt: str) -> bytes:
    """Alerts per 1,000 trips this quarter, by kind."""
    detail = next(r for r in report.results if r.kpi.key == "alerts.per_1000_trips").value.detail
    with RENDERING:
        plt.rcParams["font.family"] = _font_family()
        plt.rcParams["svg.fonttype"] = "none"
        figure, axes = plt.subplots(figsize=(7, 2.8))
        kinds = list(detail) or ["—"]
        axes.barh([i18n.gettext(k) for k in kinds], [float(detail.get(k) or 0) for k in kinds], color=COLOURS[0])
        axes.set_title(i18n.gettext("Alerts per 1,000 trips, by kind"))
        axes.grid(alpha=0.3, axis="x")
        return _render(figure, fmt)
