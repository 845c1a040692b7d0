"""The label's phone line: the last four digits and nothing more, whatever way the number was written; and
its item lines: each item and its count, or only how many when one is sensitive or the operator hides them all."""

from __future__ import annotations

import pytest

from tripguard.core.settings import Settings
from tripguard.delivery.labels import ItemPolicy, item_lines, last_four

pytestmark = pytest.mark.no_database


@pytest.mark.parametrize(("phone", "shown"), [
    ("13800001234", "1234"),
    ("+86 138-0000-5678", "5678"),
    ("(010) 6552 9988", "9988"),
    ("1234", "1234"),
    ("123", ""),  # too short to mask: nothing rather than the whole number
    ("", ""),
    ("分机 ext.", ""),
])
def test_only_the_last_four_digits_are_shown(phone: str, shown: str) -> None:
    assert last_four(phone) == shown


# What the label says of the bag (`item_lines`), each rule on its own: the API tests (test_label_items.py)
# read the same through a printed PDF, one case each.
MEDICINE = {"name": "布洛芬缓释胶囊", "quantity": 2, "category": "medicine"}
RICE = {"name": "米饭", "quantity": 3, "category": "staple"}


def test_the_policy_is_the_operators_switch_and_categories() -> None:
    chosen = Settings(label_hide_item_names=True, label_sensitive_categories="medicine,adult")
    assert ItemPolicy.of(chosen) == ItemPolicy(hide_all=True, sensitive=frozenset({"medicine", "adult"}))
    default = ItemPolicy.of(Settings())
    assert default.hide_all is False and default.sensitive == frozenset(Settings().label_sensitive_categories)
    assert "medicine" in default.sensitive


def test_items_are_named_with_their_counts_when_nothing_is_sensitive() -> None:
    policy = ItemPolicy(sensitive=frozenset({"medicine"}))
    assert not policy.hides([RICE, {"name": "汤"}])
    assert item_lines([RICE, {"name": "汤"}, {"quantity": 2}], policy) == ["米饭 × 3", "汤 × 1", " × 2"]
    # a quantity that is not a whole number counts as one
    assert item_lines([{"name": "面", "quantity": "2"}, {"name": "饼", "quantity": None}], policy) == [
        "面 × 1", "饼 × 1"]


def test_one_sensitive_item_hides_every_name_and_the_label_says_how_many() -> None:
    policy = ItemPolicy(sensitive=frozenset({"medicine"}))
    assert policy.hides([RICE, MEDICINE]) and policy.hides([MEDICINE])
    assert policy.hides([RICE, MEDICINE | {"category": "Medicine"}])  # the category in any case
    assert item_lines([RICE, MEDICINE, {"name": "汤", "quantity": "x"}], policy) == ["共 6 件 · 6 items"]
    assert item_lines([MEDICINE | {"quantity": 1}], policy) == ["共 1 件 · 1 item"]


def test_the_operators_switch_hides_every_name_whatever_the_categories() -> None:
    policy = ItemPolicy(hide_all=True)
    assert policy.hides([RICE]) and policy.hides([])
    assert item_lines([RICE, {"name": "汤"}], policy) == ["共 4 件 · 4 items"]
    assert not ItemPolicy(hide_all=False).hides([RICE, MEDICINE])  # no categories chosen: nothing is sensitive


class _Asked(frozenset[str]):
    """A set of categories that notes each one the policy looks up."""

    asked: list[object]

    def __contains__(self, category: object) -> bool:
        self.asked.append(category)
        return False


def test_each_item_is_looked_up_by_its_category_in_lower_case_and_one_without_by_the_empty_word() -> None:
    categories = _Asked()
    categories.asked = []
    items: list[dict[str, object]] = [{"name": "a", "category": "Adult"}, {"name": "b"},
                                      {"name": "c", "category": None}, {"name": "d", "category": ""}]
    assert not ItemPolicy(sensitive=categories).hides(items)
    # "" is no category the operator can name (CATEGORY_PATTERN): an item without one is never taken for one
    assert categories.asked == ["adult", "", "", ""]


def test_six_items_are_named_and_the_rest_counted() -> None:
    policy = ItemPolicy()
    six = [{"name": f"菜{n}", "quantity": n} for n in range(1, 7)]
    assert item_lines(six, policy) == [f"菜{n} × {n}" for n in range(1, 7)]
    assert item_lines([*six, {"name": "汤"}], policy) == [f"菜{n} × {n}" for n in range(1, 7)] + ["… +1"]
    assert item_lines([*six, {"name": "汤"}, {"name": "饭"}, {"name": "茶"}], policy)[-1] == "… +3"
    assert item_lines([], policy) == []
