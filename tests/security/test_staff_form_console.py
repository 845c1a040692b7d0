"""The new-account form: a mistake comes back with the input kept (never the password), the field
marked and explained in the page's language; separated roles are refused in words, not reprs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.builders import staff
from tests.web.untranslated import english_words
from tripguard.security.permissions import Role


@pytest.mark.parametrize(("username", "display_name", "marked"), [
    ("Bad Name!", "刘洋", "username"), ("ok.name", "", "display_name"), ("x" * 70, "刘洋", "username"),
    ("ok\x00name", "刘洋", "username"), ("ok.name", "刘\x07洋", "display_name")])
def test_a_bad_field_is_marked_and_the_input_kept(client: TestClient, act_as, username: str, display_name: str,  # type: ignore[no-untyped-def]
                                                  marked: str) -> None:
    act_as(Role.SYSTEM_ADMIN)
    answer = client.post("/console/staff", data={"username": username, "display_name": display_name,
                                                 "password": "a long initial password"},
                         headers={"accept-language": "zh-CN"})
    assert answer.status_code == 422
    assert f'id="n-{marked}-error"' in answer.text and 'aria-invalid="true"' in answer.text
    assert "a long initial password" not in answer.text
    if "\x00" not in username and "\x07" not in display_name and len(username) < 70:
        assert f'value="{username}"' in answer.text.replace("&#34;", '"') or username == ""
    assert english_words(answer.text) == []


def test_separated_roles_are_refused_in_words(client: TestClient, db: Session, act_as) -> None:  # type: ignore[no-untyped-def]
    person = staff(db, "two.hats")
    act_as(Role.SECURITY_ADMIN)
    for language, expected in (("en", "security_admin"), ("zh-CN", "三员分立")):
        answer = client.post(f"/console/staff/{person.id}/roles", data={"roles": ["system_admin", "security_admin"]},
                             headers={"accept-language": language})
        assert answer.status_code == 422 and expected in answer.text and "<Role." not in answer.text
        assert "&lt;Role." not in answer.text
