"""The quarterly report in both languages and all three formats, over a seeded quarter: the CSV holds
every figure, the HTML its charts as SVG, and the PDF, looked at through poppler as a reader would, shows
the charts and the Chinese in an embedded font."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tests.reporting.test_kpis import seed_quarter
from tripguard.cli import app as cli
from tripguard.core.clock import utcnow
from tripguard.core.settings import Settings
from tripguard.reporting import kpis, periods, quarterly, render, security_check
from tripguard.security.permissions import Role
from tripguard.vault.keys import key_source


@pytest.fixture
def report(client: TestClient, db: Session, screening_app: FastAPI, session_factory: sessionmaker[Session],
           act_as) -> quarterly.QuarterlyReport:  # type: ignore[no-untyped-def]
    seed_quarter(client, db, screening_app, session_factory, act_as)
    settings = screening_app.state.settings
    steps: list[str] = []
    built = quarterly.build(db, settings=settings, keys=key_source(settings),
                            quarter=periods.current_quarter(utcnow(), settings.timezone), now=utcnow(),
                            progress=steps.append)
    assert len(steps) == quarterly.TREND_QUARTERS + 1  # one step per quarter of trend, then the assessment
    return built


def test_the_csv_holds_every_figure_risk_and_control(report: quarterly.QuarterlyReport) -> None:
    rows = list(csv.DictReader(io.StringIO(render.to_csv(report, "zh_CN").decode("utf-8-sig"))))
    figures = {r["key"]: r for r in rows if r["section"] == "kpi"}
    assert set(figures) == set(kpis.BY_KEY)
    assert figures["safety.use_rate"]["value"] == "0.6" and figures["safety.use_rate"]["status"] == "red"
    assert figures["screening.pass_rate"]["title"] == "背景审查合格率"
    assert len([r for r in rows if r["section"] == "trend"]) == len(kpis.KPIS) * quarterly.TREND_QUARTERS
    risks = {r["key"]: r["status"] for r in rows if r["section"] == "risk"}
    assert risks["risk.1"] == "green" and risks["risk.2"] == "red"  # screening fine; one vehicle without a device
    assert len([r for r in rows if r["section"] == "security"]) == len(security_check.CONTROLS)


def test_the_html_in_both_languages(report: quarterly.QuarterlyReport, screening_app: FastAPI) -> None:
    zone = screening_app.state.settings.timezone
    chinese = render.to_html(report, "zh_CN", zone).decode()
    assert "季度安全与隐私评估报告" in chinese and '<html lang="zh-CN">' in chinese
    assert chinese.count("<svg") == 2 and "背景审查合格率" in chinese.split('data-testid="chart-targets"')[1]
    assert 'data-kpi="safety.use_rate"' in chinese and "60.0 %" in chinese
    assert "个人信息字段按人使用" in chinese  # the self-assessment's evidence, in the report's language
    english = render.to_html(report, "en", zone).decode()
    assert "Quarterly safety and privacy evaluation" in english and "Screening pass rate" in english


def test_the_pdf_shows_its_charts_and_its_chinese(report: quarterly.QuarterlyReport, screening_app: FastAPI,
                                                  tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(render.to_pdf(report, "zh_CN", screening_app.state.settings.timezone))
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "WenQuanYi" in fonts and " yes " in fonts.split("WenQuanYi")[1].splitlines()[0]  # embedded
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "季度安全与隐私评估报告" in text and "方案中的五项风险" in text and "背景审查合格率" in text
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages
    colours = set()
    for page in pages:
        colours |= {c for _, c in (Image.open(page).convert("RGB").getcolors(1 << 20) or [])}
    chart_green = (0x0F, 0x6B, 0x5C)  # the first series and the bars

    def near(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
        return all(abs(x - y) <= 12 for x, y in zip(a, b, strict=True))

    assert any(near(c, chart_green) for c in colours)  # the charts are drawn on the page
    english = tmp_path / "report-en.pdf"
    english.write_bytes(render.to_pdf(report, "en", screening_app.state.settings.timezone))
    text = subprocess.run(["pdftotext", str(english), "-"], capture_output=True, text=True, check=True).stdout
    assert "Quarterly safety and privacy evaluation" in text and "The plan's five risks" in text


def test_from_the_console_and_the_command_line(client: TestClient, act_as, cli_site: Settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.SUPERVISOR)
    page = client.get("/console/reports", headers={"accept-language": "zh-CN"})
    assert page.status_code == 200 and 'data-kpi="training.coverage"' in page.text
    title = page.text.split("<title>")[1].split("</title>")[0]
    assert title.startswith("报表 · ") and "<" not in title  # the title is only the title
    quarter = periods.current_quarter(utcnow(), "Asia/Shanghai")
    download = client.get("/console/reports/quarterly", params={"quarter": quarter, "format": "pdf"})
    assert download.status_code == 200 and download.content.startswith(b"%PDF")
    assert client.get("/console/reports/quarterly", params={"quarter": "2026Q9"}).status_code == 422
    out = tmp_path / "q.csv"
    answer = CliRunner().invoke(cli, ["report", "quarterly", "--quarter", "2026Q3", "--format", "csv",
                                      "--out", str(out), "--lang", "en"])
    assert answer.exit_code == 0, answer.output
    assert "Screening pass rate" in out.read_bytes().decode("utf-8-sig")
    assert CliRunner().invoke(cli, ["report", "quarterly", "--format", "doc"]).exit_code == 2
    act_as(Role.SAFETY_AGENT)
    assert client.get("/console/reports").status_code == 403


def test_the_command_line_writes_the_file_its_format_names(cli_site: Settings, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`--format pdf` writes a .pdf (it wrote report.html, whatever the format); an --out naming another
    format's extension is refused before anything is written."""
    monkeypatch.chdir(tmp_path)
    answer = CliRunner().invoke(cli, ["report", "quarterly", "--quarter", "2026Q3", "--format", "pdf", "--lang", "en"])
    assert answer.exit_code == 0, answer.output
    assert [p.name for p in tmp_path.glob("report*")] == ["report-2026Q3.pdf"]
    assert (tmp_path / "report-2026Q3.pdf").read_bytes().startswith(b"%PDF")
    refused = CliRunner().invoke(cli, ["report", "quarterly", "--format", "pdf", "--out", str(tmp_path / "q.html")])
    assert refused.exit_code == 2 and not (tmp_path / "q.html").exists()
    named = CliRunner().invoke(cli, ["report", "quarterly", "--quarter", "2026Q3", "--format", "csv",
                                     "--out", str(tmp_path / "figures.txt")])
    assert named.exit_code == 0 and (tmp_path / "figures.txt").exists()  # a name of the reader's own: kept
