"""Agency callbacks are verified on the raw body (signature, age, rotation); the simulated agency's
scenarios are chosen by the test ID number, and it says it is simulated."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.screening.test_identity import with_check
from tripguard.screening.identity import read_id_number
from tripguard.screening.policy import evaluate, facts_from, load_policy
from tripguard.screening.providers import AgencyError, SimulatedScreeningAgency, sign, verify

pytestmark = pytest.mark.no_database
SECRET = b"agency-shared-secret-0123456789"
BODY = b'{"report":"rpt_1","check":"criminal_record","result":"clear"}'
NOW = 1_800_000_000


def test_a_signed_callback_verifies_and_any_change_does_not() -> None:
    header = sign(SECRET, BODY, NOW)
    assert verify(SECRET, BODY, header, now=NOW)
    assert verify(SECRET, BODY, header, now=NOW + 300)
    assert not verify(SECRET, BODY, header, now=NOW + 301)  # too old: a replay
    assert not verify(SECRET, BODY + b" ", header, now=NOW)  # the raw body, byte for byte
    assert not verify(b"another secret", BODY, header, now=NOW)
    assert not verify(SECRET, BODY, header.replace(f"t={NOW}", f"t={NOW + 1}"), now=NOW)


def test_during_a_secret_rotation_either_signature_is_enough() -> None:
    old, new = sign(b"old secret", BODY, NOW), sign(SECRET, BODY, NOW)
    both = f"{new},{old.split(',')[1]}"
    assert verify(SECRET, BODY, both, now=NOW) and verify(b"old secret", BODY, both, now=NOW)


@given(st.text(max_size=200))
def test_a_garbage_header_is_refused_never_an_error(header: str) -> None:
    assert verify(SECRET, BODY, header, now=NOW) is False


@pytest.mark.parametrize(("sequence", "outcome", "reason"), [
    ("001", "clear", None), ("002", "reject", "record.drug_use"), ("003", "reject", "points.full_in_recent_cycles"),
    ("004", "reject", "licence.too_recent"), ("006", "consider", "record.other"),
])
def test_simulated_scenarios_drive_the_policy(sequence: str, outcome: str, reason: str | None) -> None:
    number = with_check(f"44030619900101{sequence}")
    findings = {f.check: f.facts for f in SimulatedScreeningAgency().screen(id_number=number, name="测试",
                                                                            role="driver")}
    facts = facts_from("driver", read_id_number(number, today=date(2026, 11, 30)), findings)
    decision = evaluate(load_policy(), facts, today=date(2026, 11, 30))
    assert decision.outcome == outcome and (reason is None or reason in decision.reasons)


def test_the_simulated_agency_fails_on_request_and_knows_couriers_need_no_licence() -> None:
    agency = SimulatedScreeningAgency()
    assert agency.name == "simulated"
    for sequence in ("008", "009"):
        with pytest.raises(AgencyError):
            agency.screen(id_number=with_check(f"44030619900101{sequence}"), name="x", role="driver")
    checks = {f.check for f in agency.screen(id_number=with_check("44030619900101001"), name="x", role="courier")}
    assert checks == {"identity", "criminal_record", "credit"}
