"""The home dashboard: each role sees its own figures, computed from the data (per hour on both
backends), refreshed by a partial; the charts' data covers the last 24 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tripguard.safety.models import Incident
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.telematics.models import TripAlert
from tripguard.web import dashboard

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)


def seed(db: Session) -> None:
    for n, (minutes, status, source) in enumerate([(10, "open", "sos"), (70, "acknowledged", "alert"),
                                                    (130, "resolved", "sos"), (60 * 30, "open", "sos")]):
        raised = NOW - timedelta(minutes=minutes)
        db.add(Incident(id=f"inc_D{n}", source=source, severity="high", status=status, silent=False,
                        created_at=raised, ack_due_at=raised + timedelta(minutes=1)))
    for n, (minutes, kind) in enumerate([(5, "long_stop"), (20, "route_deviation"), (90, "long_stop")]):
        db.add(TripAlert(id=f"alr_D{n}", trip_id="T1", kind=kind, severity="medium",
                         ts=NOW - timedelta(minutes=minutes), evidence={}, received_at=NOW))
    db.flush()


def board_of(db: Session, role: Role) -> dashboard.Dashboard:
    return dashboard.build(db, principal=Principal.for_roles("staff", "stf_X", frozenset({role})), now=NOW)


def test_an_agents_figures_and_charts(db: Session) -> None:
    seed(db)
    board = board_of(db, Role.SAFETY_AGENT)
    figures = {f.key: f.value for f in board.figures}
    assert figures["waiting"] == "2" and figures["live"] == "3" and figures["alerts"] == "2"
    cases = next(c for c in board.charts if c.key == "cases")
    assert len(cases.hours) == 24 and cases.hours[-1] == int(datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp())
    assert cases.series["sos"][-1] == 1 and cases.series["sos"][-3] == 1 and cases.series["alert"][-2] == 1
    assert sum(cases.series["sos"]) == 2  # the one 30 h ago is outside the chart
    alerts = next(c for c in board.charts if c.key == "alerts")
    assert alerts.series["long_stop"][-1] == 1 and alerts.series["long_stop"][-2] == 1
    assert alerts.series["route_deviation"][-1] == 1


def test_each_role_sees_only_its_figures(db: Session) -> None:
    seed(db)
    assert {f.key for f in board_of(db, Role.PRIVACY_OFFICER).figures} == {
        "requests", "breaches", "quarter.privacy.requests_on_time", "quarter.privacy.deletions_on_schedule",
        "quarter.privacy.breaches"}  # and this quarter's figures it answers for, against their targets
    trainer = board_of(db, Role.TRAINER)
    assert {f.key for f in trainer.figures} == {"quarter.training.coverage", "quarter.training.satisfaction"}
    assert trainer.charts == [] and {f.href for f in trainer.figures} == {"/console/training"}
    assert {f.key for f in board_of(db, Role.SUPERVISOR).figures} == {
        f"quarter.{key}" for key in ("screening.pass_rate", "devices.install_rate", "safety.use_rate",
                                     "training.coverage")}


def test_the_page_and_its_live_partial(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SAFETY_AGENT)
    page = client.get("/console", headers={"accept-language": "en"}).text
    assert 'hx-get="/console/figures"' in page and 'data-testid="chart-cases"' in page
    assert "/static/vendor/uplot/uPlot.iife.min.js" in page
    partial = client.get("/console/figures", headers={"accept-language": "en"}).text
    assert 'data-figure="waiting"' in partial and "<html" not in partial


def test_a_figure_without_data_speaks_the_readers_language(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SAFETY_AGENT)  # no SOS acknowledged this quarter: its acknowledgement times have no data
    for language, words, other in (("en", "no data", "无数据"), ("zh-CN", "无数据", "no data")):
        for path in ("/console", "/console/figures"):
            text = client.get(path, headers={"accept-language": language}).text
            figure = text[text.index('data-figure="quarter.sos.ack_p50_s'):]
            figure = figure[:figure.index("</a>")]
            assert words in figure and other not in figure, (language, path, figure)
