"""Eligibility as data: every condition of Art. 14 of the ride-hailing measures, a city's own
conditions laid over it, and the policy version named in every decision."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from tests.screening.test_identity import with_check
from tripguard.screening.identity import read_id_number
from tripguard.screening.policy import Facts, PolicyInvalid, evaluate, load_policy

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
    assert evaluate(load_policy(), replace(courier, records=frozenset({"violent_crime"})),
                    today=TODAY).outcome == "reject"


def test_a_citys_conditions_are_laid_over_article_14() -> None:
    policy = load_policy("shenzhen")
    assert policy.version == "art14-2016.1+shenzhen-2024.1"
    assert evaluate(policy, CLEAN_DRIVER, today=TODAY).outcome == "clear"
    assert evaluate(policy, replace(CLEAN_DRIVER, credit_score=500), today=TODAY).reasons == ("credit.below_threshold",)
    old = read_id_number(with_check("44030619500101123"), today=TODAY)  # 76
    assert "age.above_maximum" in evaluate(policy, replace(CLEAN_DRIVER, identity=old), today=TODAY).reasons
    assert evaluate(policy, replace(CLEAN_DRIVER, credit_score=None), today=TODAY).pending == ("credit",)
    assert evaluate(load_policy(), replace(CLEAN_DRIVER, credit_score=None), today=TODAY).outcome == "clear"


@pytest.mark.parametrize("city", ["../art14", "shen zhen", "Shenzhen", "a", "x" * 41, "cities/shenzhen"])
def test_a_crafted_city_name_is_refused(city: str) -> None:
    with pytest.raises(ValueError):
        load_policy(city)


@pytest.mark.parametrize("city", ["beijing", "nowhere", "guangzhou"])
def test_a_city_without_an_overlay_is_screened_under_the_national_baseline(city: str) -> None:
    policy = load_policy(city)
    assert policy == load_policy() and policy.version == "art14-2016.1"
    assert evaluate(policy, replace(CLEAN_DRIVER, licence_years=2), today=TODAY).reasons == ("licence.too_recent",)


def test_an_operators_overlay_in_the_data_folder_is_laid_over_article_14(tmp_path: Path) -> None:
    (tmp_path / "hangzhou.json").write_text(json.dumps({
        "version": "hz-2026.1", "source": "杭州市网约车管理实施细则",
        "roles": {"driver": {"age_max": 60, "disqualifying_records_added": ["fraud"]},
                  "courier": {"credit_score_min": 600}}}), encoding="utf-8")
    policy = load_policy("hangzhou", tmp_path)
    assert policy.version == "art14-2016.1+hz-2026.1"
    assert evaluate(policy, replace(CLEAN_DRIVER, records=frozenset({"fraud"})), today=TODAY).reasons == (
        "record.fraud",)  # rejected in Hangzhou, a person's judgement under Art. 14 alone
    assert policy.roles["courier"].credit_score_min == 600
    assert load_policy("hangzhou").version == "art14-2016.1"  # without the folder: the baseline
    # the operator's file comes before the package's, and a changed file is read again
    (tmp_path / "shenzhen.json").write_text(json.dumps({"version": "sz-op.1", "roles": {"driver": {"age_max": 55}}}),
                                            encoding="utf-8")
    assert load_policy("shenzhen", tmp_path).roles["driver"].age_max == 55
    (tmp_path / "shenzhen.json").write_text(json.dumps({"version": "sz-op.22", "roles": {"driver": {"age_max": 50}}}),
                                            encoding="utf-8")
    assert load_policy("shenzhen", tmp_path).version == "art14-2016.1+sz-op.22"


@pytest.mark.parametrize(("content", "problem"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[]", "file"),
    (b'{"version": "x1"}', "roles"),
    (b'{"version": "x1", "roles": {}}', "roles"),
    (b'{"version": "x 1", "roles": {"driver": {"age_max": 60}}}', "version"),
    (b'{"version": "x1", "roles": {"pilot": {"age_max": 60}}}', "roles.pilot"),
    (b'{"version": "x1", "roles": {"driver": {"age_maximum": 60}}}', "age_maximum"),
    (b'{"version": "x1", "roles": {"driver": {"age_max": "60"}}}', "age_max"),
    (b'{"version": "x1", "roles": {"driver": {"age_max": 60}}, "extra": 1}', "extra"),
    (b'{"version": "x1", "roles": {"driver": {"disqualifying_records_added": ["Fraud!"]}}}', "disqualifying"),
    # a city adds conditions to Art. 14, never removes them
    (b'{"version": "x1", "roles": {"driver": {"licence_years_min": 1}}}', "licence_years_min: below the national"),
    (b'{"version": "x1", "roles": {"driver": {"age_min": null}}}', "age_min: below the national"),
    (b'{"version": "x1", "roles": {"driver": {"points_full": 20}}}', "points_full: above the national"),
    (b'{"version": "x1", "roles": {"driver": {"transport_certificate_required": false}}}', "transport_certificate"),
    (b'{"version": "x1", "roles": {"driver": {"age_min": 30, "age_max": 25}}}', "age_min is above age_max"),
    (b"[" * 50_000, "not JSON"),  # nested past any parser's depth
    (b" " * (70 * 1024), "larger than"),
], ids=lambda value: value[:40].decode("latin-1") if isinstance(value, bytes) else None)
def test_an_overlay_that_cannot_be_used_is_a_clear_error(tmp_path: Path, content: bytes, problem: str) -> None:
    (tmp_path / "wuhan.json").write_bytes(content)
    with pytest.raises(PolicyInvalid) as refused:
        load_policy("wuhan", tmp_path)
    assert problem in refused.value.problems and refused.value.file == str(tmp_path / "wuhan.json")
