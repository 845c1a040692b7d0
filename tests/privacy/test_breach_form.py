"""The console's breach form: a breach cannot end before it starts; a mistake comes back with the
input kept and the field marked; hostile input is a 422, never a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tripguard.security.permissions import Role

GOOD = {"title": "导出外泄", "occurred_from": "2026-11-01T08:00", "occurred_to": "2026-11-02T08:00",
        "categories": ["user.name"], "cause": "导出", "harm": "骚扰", "measures": "停用", "advice": "警惕",
        "contact": "privacy@example.com"}


def test_a_breach_cannot_end_before_it_starts(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    answer = client.post("/console/privacy/breaches", data={**GOOD, "occurred_to": "2026-10-01T08:00"},
                         headers={"accept-language": "en"})
    assert answer.status_code == 422
    assert 'id="b-occurred_to" name="occurred_to"' in answer.text and 'aria-invalid="true"' in answer.text
    assert "A breach cannot end before it starts." in answer.text
    assert 'value="导出外泄"' in answer.text and 'value="2026-10-01T08:00"' in answer.text  # kept
    ok = client.post("/console/privacy/breaches", data=GOOD, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"].startswith("/console/privacy/breaches/brh_")


def test_the_times_are_the_operators(client: TestClient, act_as, db) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from tripguard.privacy.models import Breach

    act_as(Role.PRIVACY_OFFICER)
    client.post("/console/privacy/breaches", data=GOOD, follow_redirects=False)
    breach = db.scalars(select(Breach)).one()
    assert breach.occurred_from.isoformat().startswith("2026-11-01T00:00")  # 08:00 in Asia/Shanghai


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(GOOD)), value=st.one_of(
    st.text(max_size=300), st.sampled_from(["\x00", "\ud800", "9999-99-99T99:99", "-100000-01-01T00:00",
                                             "2026-11-01T08:00+99:00", "x" * 5000])))
@example(field="occurred_to", value="2026-11-02T08:00Z")  # one time with a zone, one without: was a 500
def test_hostile_input_is_never_a_server_error(client: TestClient, act_as, field: str, value: str) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    data = {**GOOD, field: value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")}
    answer = client.post("/console/privacy/breaches", data=data, follow_redirects=False)
    assert answer.status_code in (303, 422), answer.text[:500]


def test_invalid_utf8_in_the_form_is_not_a_server_error(client: TestClient, act_as) -> None:  # type: ignore[no-untyped-def]
    act_as(Role.PRIVACY_OFFICER)
    answer = client.post("/console/privacy/breaches", content=b"title=%ED%A0%80&cause=%FF%00",
                         headers={"content-type": "application/x-www-form-urlencoded"}, follow_redirects=False)
    assert answer.status_code == 422
