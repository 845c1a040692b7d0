"""`make run`'s set-up (`tripguard demo bootstrap`): an account for every role a person holds, printed with how
the second factor is enrolled (the README's count is the printed one), the operator backend's API key and app
tokens that work, the demo's people through the real services, nothing made twice; and `make run PORT=`."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tripguard.app import create_app
from tripguard.cli import app as cli
from tripguard.core.settings import Settings, get_settings
from tripguard.delivery.models import MerchantStaff, Order
from tripguard.screening import gate
from tripguard.screening.models import Applicant
from tripguard.security.models import StaffAccount
from tripguard.security.permissions import STAFF_ROLES, TOTP_REQUIRED_ROLES
from tripguard.security.subject_tokens import verify_subject_token
from tripguard.sim import cast

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def development(cli_site: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The cli_site's database and key folder, as `make run` sees them (development: generated secrets)."""
    monkeypatch.setenv("TRIPGUARD_ENV", "development")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def bootstrap(tmp_path: Path) -> str:
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["demo", "bootstrap", "--credentials-file", str(tmp_path / "creds.txt"),
                                      "--trips", "3"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return result.output


def accounts_in(output: str) -> dict[str, tuple[str, str, str]]:
    """user name -> (password, role, second factor), from the printed table."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^  (\S+)\s+(\S+)\s+([a-z_]+)\s+(authenticator app \(TOTP\)|password only)$", line)
        if match:
            found[match[1]] = (match[2], match[3], match[4])
    return found


def test_make_run_prints_an_account_for_every_role_a_key_and_tokens_that_work(development: Settings,
                                                                              tmp_path: Path) -> None:
    output = bootstrap(tmp_path)
    accounts = accounts_in(output)
    assert {role for _, role, _ in accounts.values()} == {r.value for r in STAFF_ROLES}
    assert f"Demo accounts: {len(STAFF_ROLES)}," in output
    for _, role, factor in accounts.values():
        assert (factor == "authenticator app (TOTP)") == (role in {r.value for r in TOTP_REQUIRED_ROLES})
    assert "QR code" in output and "authenticator app" in output  # how the second factor is enrolled
    key = re.search(r"Authorization: Bearer (tg_\S+)", output)
    passenger = re.search(rf"passenger {cast.passenger(0).id} \(\S+\): (\S+)", output)
    training = re.search(r"/training#token=(\S+)", output)
    assert key and passenger and training
    settings = get_settings()
    assert verify_subject_token(passenger[1], settings).subject_id == cast.passenger(0).id
    assert verify_subject_token(training[1], settings).role.value == "courier"
    app = create_app(settings)
    with TestClient(app) as client:
        me = client.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {key[1]}"})
        assert me.status_code == 200 and me.json()["kind"] == "api_key", me.text
        assert client.get("/api/v1/me/training", headers={"Authorization": f"Bearer {training[1]}"}).status_code == 200
    with app.state.sessionmaker() as session:
        for taxi in cast.fleet(3):  # screened, trained and signed: the gate asks only about the vehicle
            assert gate.refusal(session, worker_id=taxi.driver.id, role="driver", with_vehicle=False).eligible
        assert session.get(Applicant, cast.APPLICANT.id).status == "review"  # type: ignore[union-attr]
        assert gate.refusal(session, worker_id=cast.NEW_COURIER.id, role="courier").codes == ["training.missing"]
        order = session.get(Order, cast.ORDER)
        assert order is not None and order.courier_id == cast.COURIER.id
        kitchen = session.scalar(select(StaffAccount.id).where(StaffAccount.username == "kitchen"))
        assert session.get(MerchantStaff, kitchen).merchant_id == cast.MERCHANT  # type: ignore[union-attr]
    # The credentials file keeps what was printed, for the owner only.
    stored = (tmp_path / "creds.txt").read_text()
    assert all(f"account {name} {password} " in stored for name, (password, _, _) in accounts.items())
    assert (tmp_path / "creds.txt").stat().st_mode & 0o077 == 0


def test_a_second_run_adds_nothing_and_prints_the_same(development: Settings, tmp_path: Path) -> None:
    first = bootstrap(tmp_path)
    second = bootstrap(tmp_path)
    assert accounts_in(first) == accounts_in(second)
    key = re.compile(r"Bearer (tg_\S+)")
    assert key.findall(first) == key.findall(second)
    app = create_app(get_settings())
    with app.state.sessionmaker() as session:
        assert len(session.scalars(select(StaffAccount)).all()) == len(STAFF_ROLES)


def test_the_readme_counts_the_accounts_make_run_prints() -> None:
    readme = (ROOT / "README.md").read_text()
    counted = re.search(r"`make run` creates (\w+) demo staff accounts", readme)
    words = {"twelve": 12, "eleven": 11, "thirteen": 13}
    assert counted and words.get(counted[1], counted[1]) in (len(STAFF_ROLES), str(len(STAFF_ROLES)))


def test_the_bootstrap_is_for_development_only(cli_site: Settings, tmp_path: Path) -> None:
    get_settings.cache_clear()
    refused = CliRunner().invoke(cli, ["demo", "bootstrap", "--credentials-file", str(tmp_path / "c.txt")])
    assert refused.exit_code == 2 and not (tmp_path / "c.txt").exists()


@pytest.mark.no_database
def test_make_run_listens_where_port_and_host_say() -> None:
    def planned(*args: str) -> str:
        return subprocess.run(["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout

    assert "--host 127.0.0.1 --port 8000" in planned()
    custom = planned("PORT=9123", "HOST=0.0.0.0")
    assert "--host 0.0.0.0 --port 9123" in custom
    assert "TRIPGUARD_BASE_URL:-http://0.0.0.0:9123" in custom  # the links it prints and texts follow


def test_continuous_monitoring_can_be_tried_a_pushed_record_suspends_a_demo_driver(
        development: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tripguard demo agency-push` signs a `record.found` with development's generated callback secret, as the
    agency would: the running TripGuard takes it and suspends the driver at once."""
    import httpx2

    bootstrap(tmp_path)
    driver = cast.fleet(1)[0].driver.id
    app = create_app(get_settings())
    with TestClient(app) as client:
        monkeypatch.setattr(httpx2, "post", lambda url, timeout, **kw: client.post(url.split("8000", 1)[1], **kw))
        pushed = CliRunner().invoke(cli, ["demo", "agency-push", "--worker", driver, "--record", "drink_driving"])
        assert pushed.exit_code == 0, pushed.output
        assert '"received":"taken"' in pushed.output.replace(" ", "")
    with app.state.sessionmaker() as session:
        assert session.get(Applicant, driver).status == "suspended"  # type: ignore[union-attr]
        assert "worker.suspended" in gate.refusal(session, worker_id=driver, role="driver", with_vehicle=False).codes


def test_passwords_kept_by_an_earlier_release_are_still_printed(development: Settings, tmp_path: Path) -> None:
    """An earlier `make run` wrote `<user> <password> <role>` lines: its accounts keep being shown, not lost."""
    first = accounts_in(bootstrap(tmp_path))
    creds = tmp_path / "creds.txt"
    creds.write_text("".join(f"{name} {password} {role}\n" for name, (password, role, _) in first.items()))
    assert accounts_in(bootstrap(tmp_path)) == first
    assert "account admin " in creds.read_text()
