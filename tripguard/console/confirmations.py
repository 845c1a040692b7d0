"""What an irreversible or punitive console action asks before it runs, in one place.

Each such action registers its `Question` (English msgids: the question, what will happen, the button)
under a key. Its button carries `{{ asks("key") }}` (the shell's dialog reads `data-confirm` and
`data-consequence`), and its route calls `shell.ask_first` with the same question: without `confirm=yes`
the server answers with a confirmation page of its own and does nothing, so nothing runs unconfirmed even
without JavaScript. The dialog and the page say the same words because they read the same entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from tripguard.core import i18n


@dataclass(frozen=True)
class Question:
    key: str
    question: str  # "Suspend this person?"
    consequence: str  # what will happen, said plainly
    button: str  # the confirming button's label (the same as the page's button)


QUESTIONS: dict[str, Question] = {}


def ask(key: str, question: str, consequence: str, button: str) -> Question:
    """Register what the action `key` asks first (at import time of its console module)."""
    asked = Question(key=key, question=question, consequence=consequence, button=button)
    if QUESTIONS.setdefault(key, asked) != asked:
        raise ValueError(f"two different confirmations under {key!r}")
    return asked


def dialog_attributes(key: str) -> Markup:
    """The attributes that make a button (or an <option> a button reads) ask in the shell's dialog, in the
    page's language: ` data-confirm="…" data-consequence="…"`."""
    asked = QUESTIONS[key]
    return Markup(' data-confirm="{}" data-consequence="{}"').format(
        i18n.gettext(asked.question), i18n.gettext(asked.consequence))
