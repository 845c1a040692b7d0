"""A list's CSV export reads as its page does: headers, states and kinds in the reader's language, staff by
name, times in the operator's zone with their offset (Asia/Shanghai here: +08:00), not UTC."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import TEST_ACTOR, staff
from tripguard.audit import service as audit
from tripguard.safety.models import Incident
from tripguard.security.permissions import Role

RAISED = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)  # 09:02:03 in Shanghai


def rows_of(client: TestClient, url: str, language: str) -> list[list[str]]:
    answer = client.get(url, headers={"accept-language": language})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv"), answer.text[:300]
    return list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))


def test_the_case_list_exports_in_the_readers_language_and_the_operators_zone(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    agent = staff(db, "li.na", Role.SAFETY_AGENT)
    db.add(Incident(id="inc_CSV", source="sos", severity="critical", status="acknowledged", silent=False,
                    created_at=RAISED, ack_due_at=RAISED, acknowledged_at=RAISED, assigned_to=agent.id,
                    trip_id="T-CSV"))
    db.commit()
    act_as(Role.SAFETY_AGENT)

    zh = rows_of(client, "/console/incidents?state=all&format=csv", "zh-CN")
    assert zh[0][:4] == ["案件", "来源", "级别", "状态"]
    row = dict(zip(zh[0], zh[1], strict=True))
    assert (row["案件"], row["来源"], row["级别"], row["状态"]) == ("inc_CSV", "一键报警", "紧急", "已受理")
    assert row["负责人"] == "王芳"  # the assignee by name, never stf_…
    assert row["发起时间"] == "2026-11-30T09:02:03+08:00"  # the operator's zone, with its offset

    en = rows_of(client, "/console/incidents?state=all&format=csv", "en")
    row = dict(zip(en[0], en[1], strict=True))
    assert (row["Case"], row["State"], row["Assigned to"], row["Raised"]) == (
        "inc_CSV", "Acknowledged", "王芳", "2026-11-30T09:02:03+08:00")
    assert not any(agent.id in cell for line in zh + en for cell in line)


def test_the_audit_export_names_actions_and_people_with_their_codes_beside(
        client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    agent = staff(db, "li.na", Role.SAFETY_AGENT)
    audit.record(db, actor=TEST_ACTOR, action="staff.roles", target_type="staff", target_id=agent.id)
    db.commit()
    act_as(Role.AUDIT_ADMIN)
    rows = rows_of(client, "/console/audit?action=staff.roles&format=csv", "zh-CN")
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["操作"], row["操作代码"], row["结果"]) == ("变更角色", "staff.roles", "成功")
    assert row["操作者类型"] == "命令行" and row["对象类型"] == "员工"
    assert row["时间"].endswith("+08:00")
    rows = rows_of(client, f"/console/audit?actor_id={agent.id}&format=csv", "en")
    assert rows[0][:3] == ["Leaf index", "Time", "Actor kind"]


def test_states_of_other_lists_are_words_too(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    from tests.telematics.test_ingest_api import ndjson, post, trip_with_deviation

    act_as(Role.INTEGRATION, kind="api_key", id="key_TEST")
    post(client, ndjson(trip_with_deviation("T-CSV")))
    db.commit()
    act_as(Role.SAFETY_AGENT)
    rows = rows_of(client, "/console/trips?format=csv", "zh-CN")
    row = dict(zip(rows[0], rows[1], strict=True))
    assert rows[0][:3] == ["行程", "状态", "车辆"] and row["状态"] in ("进行中", "已结束")
    assert row["开始时间"].endswith("+08:00")
