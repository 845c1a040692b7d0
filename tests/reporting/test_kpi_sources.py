"""Each KPI cites the clauses it measures: clauses that exist in the source documents (../shared/seeds) and that
docs/requirements.md maps, the right ones (deletion after the order is D 二(四)1, on request D 二(四)2)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tripguard.reporting.kpis import BY_KEY, KPIS

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = (ROOT / "docs" / "requirements.md").read_text()
# The clause column of every table row of docs/requirements.md.
CLAUSES = [line.split("|")[1].strip() for line in REQUIREMENTS.splitlines() if re.match(r"^\| [RD] ", line)]


def cited(source: str) -> list[str]:
    return [part.strip() for part in source.split(";") if re.match(r"^[RD] ", part.strip())]


@pytest.mark.no_database
def test_every_kpi_cites_clauses_the_requirements_map() -> None:
    for kpi in KPIS:
        clauses = cited(kpi.source)
        assert clauses or kpi.source.startswith("PIPL"), kpi.key
        for clause in clauses:
            assert any(row.startswith(clause) or f", {clause}" in row or f"/ {clause}" in row for row in CLAUSES), \
                (kpi.key, clause)


@pytest.mark.no_database
def test_the_clauses_are_the_right_ones() -> None:
    assert cited(BY_KEY["privacy.deletions_on_schedule"].source) == ["D 二(四)1"]  # 訂單完成後…及時刪除
    assert cited(BY_KEY["privacy.requests_on_time"].source) == ["D 二(四)2"]  # 用戶主動要求刪除…核實用戶身份
    assert cited(BY_KEY["privacy.breaches"].source) == ["D 五(一)"]  # 信息泄露事件處理
    assert cited(BY_KEY["complaints.answered_in_time"].source) == ["D 六(二)"]  # 用戶反饋
    assert cited(BY_KEY["discipline.sanctions"].source) == ["D 六(三)"]  # 違規處理
    # The plan's evaluation standards (五.2) and the tasks whose expected results set the targets (二.2).
    assert cited(BY_KEY["screening.pass_rate"].source) == ["R 二.2 任務一", "R 五.2 評估標準一"]  # 95 %
    assert "R 五.2 評估標準二" in cited(BY_KEY["devices.operating_rate"].source)
    assert cited(BY_KEY["safety.use_rate"].source) == ["R 二.2 任務三", "R 五.2 評估標準三"]  # 80 %
    assert cited(BY_KEY["training.coverage"].source) == ["R 二.2 任務五", "R 五.2 評估標準五"]  # 100 %
    assert cited(BY_KEY["training.satisfaction"].source) == ["R 五.2 評估標準五"]


@pytest.mark.no_database
def test_the_seeds_hold_the_clauses_cited() -> None:
    seeds = ROOT.parent / "shared" / "seeds"
    if not seeds.is_dir():
        pytest.skip("the source documents are beside the project, not in it")
    plan = (seeds / "000_7a2dcf42c7af1990.txt").read_text()
    # the copy carries a reading after some characters: 刪除(chú)
    rules = re.sub(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+\)", "", (seeds / "004_439ad56b7dd0e701.txt").read_text())
    for standard in ("評估標準一", "評估標準二", "評估標準三", "評估標準五", "任務一", "任務三", "任務五"):
        assert standard in plan
    deletion = rules.split("(四)信息刪除", 1)[1].split("三、", 1)[0]
    assert deletion.startswith("1.在訂單完成后") and "2.對于用戶主動要求刪除信息的情況" in deletion
    for clause in ("五、異常情況處理(一)信息泄露事件處理", "(二)用戶反饋", "(三)違規處理"):
        assert clause in rules
