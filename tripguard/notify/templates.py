"""Message templates in zh-CN and en (Jinja2 files: `templates/<name>.<locale>.txt`).

The first line of a template is the subject (used by e-mail and push), the rest the body. Every text
begins with the deployment's one SMS signature (`TRIPGUARD_SMS_SIGNATURE`, 【行安卫士】 by default):
`use_signature` sets it when the service starts (`build_notifier`) and for each CLI command.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
DEFAULT_SIGNATURE = "行安卫士"
# Plain text for SMS, push and e-mail text bodies, never HTML: escaping would put `&amp;` into a text message.
_env = Environment(loader=FileSystemLoader(TEMPLATE_DIR), undefined=StrictUndefined, autoescape=False,  # noqa: S701
                   keep_trailing_newline=False)
_env.globals["signature"] = DEFAULT_SIGNATURE


def use_signature(signature: str) -> None:
    """The SMS signature every message carries from now on (one per deployment, from the settings)."""
    _env.globals["signature"] = signature


def signature() -> str:
    return str(_env.globals["signature"])


def render(template: str, locale: str, params: dict[str, object]) -> tuple[str, str]:
    locale = locale if locale in ("zh_CN", "en") else "zh_CN"
    text = _env.get_template(f"{template}.{locale}.txt").render(**params)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.strip()


def available() -> set[str]:
    return {path.name.split(".")[0] for path in TEMPLATE_DIR.glob("*.txt")}
