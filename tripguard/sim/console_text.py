"""What `tripguard demo bootstrap` prints at the start of `make run`: how to sign in, with what, and what to
try first (README.md, "What is there today", walks through the same)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from tripguard.core.settings import Settings
from tripguard.sim import cast
from tripguard.sim.bootstrap import TOKEN_MINUTES, Demo


def print_demo(out: Console, settings: Settings, demo: Demo, credentials_file: Path) -> None:
    base = settings.base_url

    def say(text: str = "") -> None:
        out.print(text, highlight=False, markup=False)

    say()
    say(f"TripGuard console: {base}/console   API docs: {base}/docs")
    say()
    say(f"Demo accounts: {len(demo.accounts)}, one for every role a person holds (kept in {credentials_file}):")
    say(f"  {'user name':<13} {'password':<18} {'role':<18} second factor")
    for account in demo.accounts:
        password = account.password or "(set by an earlier run; not in the file)"
        factor = "authenticator app (TOTP)" if account.second_factor else "password only"
        say(f"  {account.username:<13} {password:<18} {account.role.value:<18} {factor}")
    say("  TOTP: at the first sign-in the page shows a QR code and its secret: add it to any authenticator app")
    say("  (FreeOTP, Google Authenticator, 1Password…) and type the 6-digit code; each sign-in asks for a code")
    say("  after that. Everyone signs the confidentiality agreement (Agreement, in the menu) before opening")
    say("  personal data.")
    say()
    say("The operator's backend (API key, every integration scope; docs/api.md):")
    say(f"  Authorization: Bearer {demo.api_key}")
    say(f"App tokens, as the operator's app would hold them (valid {TOKEN_MINUTES} minutes; a fresh one: "
        f"tripguard demo token --role passenger --sub {cast.passenger(0).id}):")
    say(f"  passenger {cast.passenger(0).id} ({cast.passenger(0).name}): {demo.passenger_token}")
    say(f"  courier {cast.NEW_COURIER.id} ({cast.NEW_COURIER.name}), their course to pass: "
        f"{base}/training#token={demo.courier_token}")
    say()
    say("To try:")
    say(f"  screening: screener -> Screening queue: {cast.APPLICANT.id} ({cast.APPLICANT.name}) has a record "
        "the agency found (fraud) to judge")
    say(f"  delivery: kitchen -> Orders -> {cast.ORDER}: the privacy label to print; its courier's token: "
        f"tripguard demo token --role courier --sub {cast.COURIER.id} (pickup with the label's code, hand-over "
        "with the code the customer is texted: admin -> Messages sent)")
    say("  training: the courier's link above; trainer -> Training for coverage and satisfaction")
    say("  reporting: supervisor -> Reports: the quarter's figures against their targets, and its report "
        "(PDF, HTML, CSV); or tripguard report quarterly --format pdf")
    say("  continuous monitoring: tripguard demo agency-push --worker <a driver, e.g. "
        f"{cast.fleet(1)[0].driver.id}> --record drink_driving")
    say("  SOS: the demo city's passengers press it now and then; agent -> SOS queue")
    say()
