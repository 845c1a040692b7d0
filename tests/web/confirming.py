"""Checks shared by the confirmation tests: a console action that asks first, over HTTP and in a browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from markupsafe import escape


def asks_first(client: TestClient, url: str, data: dict[str, Any] | None = None, *,
               question: str, consequence: str) -> Any:
    """POST without `confirm=yes`: the shell's confirmation page (in English), which asks `question`, says
    `consequence`, and would send the same form again, confirmed. The caller checks that nothing happened."""
    answer = client.post(url, data=data or {}, headers={"accept-language": "en"}, follow_redirects=False)
    assert answer.status_code == 200, answer.text
    page = answer.text
    assert 'data-testid="confirm"' in page and f"<h1>{question}</h1>" in page
    assert f"<p>{consequence}</p>" in page  # msgids: shown as written
    assert f'action="{url}"' in page and 'name="confirm" value="yes"' in page
    for name, given in (data or {}).items():
        for value in given if isinstance(given, list) else [given]:
            assert f'name="{name}" value="{escape(str(value))}"' in page, (name, value)
    return answer


def confirmed(client: TestClient, url: str, data: dict[str, Any] | None = None) -> Any:
    """The same POST, confirmed: the action runs (a redirect, or the page it comes back to)."""
    answer = client.post(url, data={**(data or {}), "confirm": "yes"}, follow_redirects=False)
    assert answer.status_code in (200, 303), answer.text
    assert 'data-testid="confirm"' not in answer.text
    return answer


def in_dialog(page: Any, button: str, *, question: str, consequence: str, unchanged: Callable[[], None],
              changed: Callable[[], None], prepare: Callable[[], None] | None = None) -> None:
    """In a browser: the button opens the shell's dialog with the question and what will happen; Cancel
    does nothing (`unchanged` holds); clicked again and confirmed, it is done (`changed` holds). `prepare`
    fills the form before each click."""
    dialog = page.locator("#confirm-dialog")
    for confirm in (False, True):
        if prepare is not None:
            prepare()
        page.click(button)
        dialog.wait_for(state="visible")
        assert dialog.locator("#confirm-question").inner_text() == question
        assert dialog.locator("#confirm-consequence").inner_text() == consequence
        dialog.locator(f"button[value={'confirm' if confirm else 'cancel'}]").click()
        dialog.wait_for(state="hidden")
        if not confirm:
            unchanged()
    changed()
