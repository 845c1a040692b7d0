"""Eligibility as data: every condition of Art. 14 of the ride-hailing measures, a city's own
conditions laid over it, and the policy version named in every decision."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from tests.screening.test_identity import with_check
from tripguard.screening.identity import read_id_number
from tripguard.screening.policy import Facts, evaluate, load_policy

pytestmark = pytest.mark.no_database
TODAY = date(2026, 11, 30)
ADULT = read_id_number(with_check("44030619900101123"), today=TODAY)  # born 1990
CLEAN_DRIVER = Facts(role="driver", identity=ADULT, licence_years=5, records=frozenset(), points_by_cycle=(0, 3, 6),
                     credit_score=700, name_match=True, transport_certificate=True)


@pytest.mark.parametrize(("change", "outcome", "reason"), [
    ({}, "clear", None),
    # Art. 14 (一): a licence held three years or more
    ({"licence_years": 2.9}, "reject", "licence.too_recent"),
    ({"licence_years": 3}, "clear", None),
    # Art. 14 (二): no traffic-accident or dangerous-driving crime, no drug record, no drink-driving record
    ({"records": frozenset({"traffic_accident_crime"})}, "reject", "record.traffic_accident_crime"),
    ({"records": frozenset({"dangerous_driving_crime"})}, "reject", "record.dangerous_driving_crime"),
    ({"records": frozenset({"drug_use"})}, "reject", "record.drug_use"),
    ({"records": frozenset({"drink_driving"})}, "reject", "record.drink_driving"),
    # ... and no full 12 points in any of the last three scoring cycles
    ({"points_by_cycle": (0, 12, 0)}, "reject", "points.full_in_recent_cycles"),
    ({"points_by_cycle": (11, 11, 11)}, "clear", None),
    ({"points_by_cycle": (0, 0, 0, 12)}, "clear", None),  # a fourth cycle back does not count
    # Art. 14 (三): no violent crime
    ({"records": frozenset({"violent_crime"})}, "reject", "record.violent_crime"),
    # a record the policy does not name goes to a person
    ({"records": frozenset({"fraud"})}, "consider", "record.other"),
    # identity
    ({"identity": read_id_number("110105194912310021", today=TODAY)}, "reject", "identity.check_digit"),
    ({"identity": read_id_number(with_check("44030620100101123"), today=TODAY)}, "reject", "age.below_minimum"),
    # the agency could not match the name to the ID number: a person looks (a typo, a changed name)
    ({"name_match": False}, "consider", "identity.name_mismatch"),
    ({"liveness": False}, "consider", "identity.liveness_failed"),
    ({"liveness": None}, "clear", None),  # not checked by the agency: the operator's own check stands
    # Art. 14 (四) and the 网约车驾驶员证: a driver without the transport certificate goes to a person
    ({"transport_certificate": False}, "consider", "transport_certificate.missing"),
    ({"transport_certificate": None}, "pending", None),
    # outstanding checks: pending, not guessed
    ({"records": None}, "pending", None),
    ({"licence_years": None, "points_by_cycle": None}, "pending", None),
])
def test_every_article_14_condition(change: dict[str, object], outcome: str, reason: str | None) -> None:
    decision = evaluate(load_policy(), replace(CLEAN_DRIVER, **change), today=TODAY)  # type: ignore[arg-type]
    assert decision.outcome == outcome
    assert decision.policy_version == "art14-2016.1"
    if reason:
        assert reason in decision.reasons
    if outcome == "pending":
        assert decision.pending


def test_a_rejection_names_every_reason_and_what_is_still_pending() -> None:
    facts = replace(CLEAN_DRIVER, licence_years=1, records=frozenset({"drug_use", "violent_crime", "fraud"}),
                    points_by_cycle=None)
    decision = evaluate(load_policy(), facts, today=TODAY)
    assert decision.outcome == "reject"
    assert decision.reasons == ("licence.too_recent", "record.drug_use", "record.violent_crime", "record.other")
    assert decision.pending == ("driving_points",)


def test_couriers_need_no_licence_but_the_same_clean_record() -> None:
    courier = Facts(role="courier", identity=ADULT, records=frozenset(), name_match=True)
    assert evaluate(load_policy(), courier, today=TODAY).outcome == "clear"
    assert evaluate(load_policy(), replace(courier, records=frozenset({"violent_crime"})), today=TODAY).outcome == "reject"


def test_a_citys_conditions_are_laid_over_article_14() -> None:
    policy = load_policy("shenzhen")
    assert policy.version == "art14-2016.1+shenzhen-2024.1"
    assert evaluate(policy, CLEAN_DRIVER, today=TODAY).outcome == "clear"
    assert evaluate(policy, replace(CLEAN_DRIVER, credit_score=500), today=TODAY).reasons == ("credit.below_threshold",)
    old = read_id_number(with_check("44030619500101123"), today=TODAY)  # 76
    assert "age.above_maximum" in evaluate(policy, replace(CLEAN_DRIVER, identity=old), today=TODAY).reasons
    assert evaluate(policy, replace(CLEAN_DRIVER, credit_score=None), today=TODAY).pending == ("credit",)
    assert evaluate(load_policy(), replace(CLEAN_DRIVER, credit_score=None), today=TODAY).outcome == "clear"


@pytest.mark.parametrize("city", ["../art14", "nowhere", "shen zhen"])
def test_an_unknown_or_crafted_city_is_refused(city: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError)):
        load_policy(city)
