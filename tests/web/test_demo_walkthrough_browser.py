"""The README's demo, walked as a newcomer walks it: `make run`'s own commands (read from the Makefile) in an
empty folder, the accounts, the API key and the tokens read from what they print, then, in Chromium, what the
README's "What is there today" says to try: the screening officer judges the applicant with a record; the
kitchen prints O-DEMO-1's label and its courier picks it up and hands it over (the app's side through the API
with the printed courier token command, the customer's texted code read from Messages sent); the printed
courier passes their course from the training link; the supervisor downloads the quarter's report."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pyotp
import pypdfium2 as pdfium
import pytest
from playwright.sync_api import expect

from tests.processes import TRIPGUARD, wait_healthy
from tests.web.conftest import LiveServer, settled
from tests.web.test_console_browser import new_page
from tripguard.sim import cast

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
SETUP_SECONDS = 600  # `db upgrade` and the bootstrap (half a minute alone; minutes under the suite's load)
START_SECONDS = 180  # until the server answers /healthz


@dataclass
class Demo:
    """What `make run` printed, as a newcomer reads it, and the server it started."""

    url: str
    folder: Path
    env: dict[str, str]
    printed: str
    accounts: dict[str, tuple[str, bool]]  # user name -> (password, asks for an authenticator code)
    api_key: str
    training_link: str
    courier_token_command: str  # what the printout says to run for O-DEMO-1's courier's token
    secrets: dict[str, str] = field(default_factory=dict)  # TOTP secrets enrolled during the walk

    @property
    def site(self) -> LiveServer:
        return LiveServer(url=self.url, database_url="", api_key=self.api_key)


def make_run_commands(port: int) -> list[str]:
    """`make run PORT= HOST=`'s commands as the Makefile has them (`make -n`), the venv's tools by full path."""
    listed = subprocess.run(["make", "-n", "run", f"PORT={port}", f"HOST={HOST}"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.replace("\\\n", " ")
    tools = str(Path(TRIPGUARD).parent) + "/"
    return [line.replace(".venv/bin/", tools) for line in listed.splitlines() if "tripguard " in line]


def read_printout(printed: str) -> tuple[dict[str, tuple[str, bool]], str, str, str]:
    """The accounts table, the API key, the courier's training link and the command for the order's courier's
    token, from the bootstrap's printout."""
    accounts = {}
    for line in printed.splitlines():
        row = re.match(r"^  (\S+)\s+(\S+)\s+[a-z_]+\s+(authenticator app \(TOTP\)|password only)$", line)
        if row:
            accounts[row[1]] = (row[2], row[3] != "password only")
    key = re.search(r"Authorization: Bearer (tg_\S+)", printed)
    link = re.search(r"(http\S+/training#token=\S+)", printed)
    command = re.search(rf"its courier's token: (tripguard demo token [^(]*--sub {cast.COURIER.id})", printed)
    assert key and link and command, printed
    return accounts, key[1], link[1], command[1]


def port_outside_the_ephemeral_range() -> int:
    """A free port below Linux's ephemeral range (32768-60999): the setup takes 20 s before the server binds it,
    and meanwhile any other test's free port or outgoing connection could take one from that range."""
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`make run` in an empty folder, as a shell without TripGuard settings runs it; stopped at the end, whatever
    happened (its whole process group)."""
    folder = tmp_path_factory.mktemp("make-run")
    port = port_outside_the_ephemeral_range()
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRIPGUARD_")}
    *setup, serve = make_run_commands(port)
    printed = ""
    for command in setup:
        done = subprocess.run(["bash", "-c", command], check=False, cwd=folder, env=env, capture_output=True,
                              text=True, timeout=SETUP_SECONDS)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        printed += done.stdout
    accounts, api_key, link, courier_command = read_printout(printed)
    log = folder / "serve.log"
    # The shell becomes the server (`exec`), which dies with this process (setpriv's parent-death signal) if
    # the run is killed before its teardown: a server left behind would hold a port and a core.
    orphan_guard = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
    serve = serve.replace(f"{Path(TRIPGUARD).parent}/tripguard serve", f"exec {Path(TRIPGUARD).parent}/tripguard serve")
    assert "exec " in serve, serve
    with log.open("w") as output:
        server = subprocess.Popen([*orphan_guard, "bash", "-c", serve], cwd=folder, env=env, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://{HOST}:{port}"
        wait_healthy(url, server, log, START_SECONDS)
        yield Demo(url, folder, env, printed, accounts, api_key, link, courier_command)
        assert server.poll() is None, f"the server stopped during the walk:\n{log.read_text()[-3000:]}"
    finally:
        stop(server)


def stop(server: subprocess.Popen[Any]) -> None:
    """Ctrl-C's end of `make run`, then a kill for what still runs; nothing is left behind."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=20)


def sign_in(page: Any, demo: Demo, username: str) -> None:
    """The printed account; at the first sign-in of a role with a second factor, enrolled from the page's key."""
    password, second_factor = demo.accounts[username]
    page.goto("/console")
    page.wait_for_url("**/console/sign-in*")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    if second_factor:
        assert username not in demo.secrets, "a second sign-in could reuse the code of the first"
        demo.secrets[username] = page.text_content("[data-testid=totp-secret]").strip()
        page.fill("#code", pyotp.TOTP(demo.secrets[username]).now())
        page.click("main button[type=submit]")
    page.wait_for_url("**/console")
    expect(page.locator("nav.main")).to_be_visible()


def pdf_text(pdf: bytes) -> str:
    document = pdfium.PdfDocument(pdf)
    try:
        return "\n".join(document[n].get_textpage().get_text_range() for n in range(len(document)))
    finally:
        document.close()


def downloaded(page: Any, link: Any, folder: Path, name: str) -> bytes:
    with page.expect_download() as download:
        link.click()
    saved = folder / name
    download.value.save_as(saved)
    return saved.read_bytes()


# What the README's "What is there today" says to try, in the words this walk follows (the console's own labels).
README_STEPS = ("`screener` → Screening queue → D-DEMO-APPLICANT", "send the pre-adverse notice",
                "`kitchen` → Orders → O-DEMO-1 → Print (PDF)", "`tripguard demo token --role courier --sub K-DEMO-1`",
                "`POST /api/v1/orders/O-DEMO-1/pickup` with the label's pickup code",
                "then `…/handover` with the code texted to the customer (`admin` → Messages sent)",
                "the printed courier's `/training#token=…` link",
                "`supervisor` → Reports (download the quarter's report)",
                "before signing the confidentiality agreement in force: a page that needs it says so and links to it")


def test_the_readme_says_what_this_walk_does() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())  # as read, whatever the line breaks
    for step in README_STEPS:
        assert step in readme, step
    assert (cast.APPLICANT.id, cast.ORDER, cast.COURIER.id) == ("D-DEMO-APPLICANT", "O-DEMO-1", "K-DEMO-1")


def test_make_run_prints_what_the_readme_says(demo: Demo) -> None:
    assert len(demo.accounts) == 12
    assert {"screener", "kitchen", "admin", "supervisor"} <= demo.accounts.keys()
    assert demo.training_link.startswith(f"{demo.url}/training#token=")  # the links follow PORT and HOST
    assert f"TripGuard console: {demo.url}/console" in demo.printed


def test_the_screening_officer_judges_the_applicant(browser: Any, demo: Demo) -> None:
    page = new_page(browser, demo.site, "en-US")
    sign_in(page, demo, "screener")
    page.click("nav.main >> text=Screening queue")
    row = page.locator(f"tr[data-applicant='{cast.APPLICANT.id}']")
    expect(row).to_contain_text("to review")
    row.locator("a").click()
    # Personal data opens after the confidentiality agreement (the printout says so): the page leads there.
    page.click("[data-testid=to-agreement]")
    expect(page.locator("[data-testid=agreement-text]")).to_contain_text("confidentiality")
    page.click("[data-testid=sign]")
    expect(page.locator("[data-testid=signed]")).not_to_contain_text("Not yet")
    page.click("nav.main >> text=Screening queue")
    page.locator(f"tr[data-applicant='{cast.APPLICANT.id}'] a").click()
    expect(page.locator("[data-testid=applicant-name]")).to_have_text(cast.APPLICANT.name)
    expect(page.locator("tr[data-check=criminal_record]")).to_contain_text("Fraud")  # the record to judge, named
    page.click("[data-testid=take]")
    settled(page)
    page.fill("#note", "Fraud conviction: the applicant is asked to explain it before a decision.")
    page.click("[data-testid=decide-pre-adverse]")
    dialog = page.locator("#confirm-dialog")
    expect(dialog.locator("#confirm-question")).to_have_text("Send the pre-adverse notice?")
    dialog.locator("button[value=confirm]").click()
    expect(page.locator("[data-testid=applicant-status]")).to_have_text("pre-adverse notice sent")
    expect(page.locator("dl.facts")).to_contain_text("Dispute by")
    expect(page.locator("[data-testid=timeline]")).to_contain_text("Officer sent the pre-adverse notice")


def test_the_kitchen_prints_the_label_and_the_courier_delivers_the_order(browser: Any, demo: Demo) -> None:
    kitchen = new_page(browser, demo.site, "en-US")
    sign_in(kitchen, demo, "kitchen")
    kitchen.click("nav.main >> text=Orders")
    kitchen.get_by_role("link", name=cast.ORDER, exact=True).click()
    expect(kitchen.locator("[data-testid=order-status]")).to_have_text("accepted")
    # The label carries the customer's masked name and phone: the agreement first, as the order page says.
    expect(kitchen.locator("[data-testid=label-refused]")).to_contain_text("confidentiality agreement")
    kitchen.click("[data-testid=to-agreement]")
    kitchen.click("[data-testid=sign]")
    expect(kitchen.locator("[data-testid=signed]")).not_to_contain_text("Not yet")
    kitchen.click("nav.main >> text=Orders")
    kitchen.get_by_role("link", name=cast.ORDER, exact=True).click()
    kitchen.wait_for_function("() => document.querySelector('[data-testid=label-preview]')?.naturalWidth > 0")
    pickup_code = kitchen.locator("[data-testid=pickup-code]").inner_text().strip()  # on the bag's label too
    # "Print (PDF)" opens the label in the browser's PDF viewer, to print from there (the viewer's page is what
    # the browser gives back as the body: the file is read again with the kitchen's session).
    with kitchen.expect_response(lambda r: "/label?format=pdf" in r.url) as opened:
        kitchen.get_by_role("link", name="Print (PDF)").click()
    assert opened.value.status == 200 and opened.value.header_value("content-type") == "application/pdf"
    label = kitchen.request.get(opened.value.url).body()
    assert label.startswith(b"%PDF")
    text = pdf_text(label)
    assert pickup_code in text and cast.CUSTOMER.phone[-4:] in text and "牛肉面" in text
    beside_the_code = text.replace(pickup_code, " ")  # a random code could spell the room
    for secret in (cast.CUSTOMER.name, cast.CUSTOMER.phone, cast.CUSTOMER.phone[:7], "1201"):
        assert secret not in beside_the_code, secret  # a masked name, the phone's last 4 digits, no room

    # The courier's app, with the token the printout says how to mint.
    token = subprocess.run(["bash", "-c", demo.courier_token_command.replace("tripguard ", f"{TRIPGUARD} ", 1)],
                           cwd=demo.folder, env=demo.env, capture_output=True, text=True, check=True,
                           timeout=120).stdout.strip()
    courier = {"Authorization": f"Bearer {token}"}
    order = f"{demo.url}/api/v1/orders/{cast.ORDER}"
    picked = httpx.post(f"{order}/pickup", json={"code": pickup_code}, headers=courier, timeout=30)
    assert picked.status_code == 200 and picked.json()["status"] == "picked_up", picked.text

    # The customer is texted the hand-over code: development shows it under Messages sent.
    admin = new_page(browser, demo.site, "en-US")
    sign_in(admin, demo, "admin")
    admin.click("nav.main >> text=Messages sent")
    texted = admin.locator("[data-testid=messages] tr", has=admin.locator("td", has_text="hand-over code"))
    expect(texted).to_have_count(1)
    expect(texted).to_contain_text(cast.CUSTOMER.phone)
    code = re.search(r"(?<!\d)(\d{4})(?!\d)", texted.locator("[data-testid=message-text]").inner_text())
    assert code, texted.inner_text()
    handed = httpx.post(f"{order}/handover", json={"code": code[1]}, headers=courier, timeout=30)
    assert handed.status_code == 200 and handed.json()["status"] == "delivered", handed.text

    kitchen.goto(f"/console/orders/{cast.ORDER}")
    expect(kitchen.locator("[data-testid=order-status]")).to_have_text("delivered")
    backend = httpx.get(order, headers={"Authorization": f"Bearer {demo.api_key}"}, timeout=30)
    assert backend.status_code == 200 and backend.json()["status"] == "delivered", backend.text


def test_the_printed_courier_passes_their_course(browser: Any, demo: Demo) -> None:
    page = new_page(browser, demo.site, "zh-CN")
    page.goto(demo.training_link)
    course = page.locator("li[data-course=courier-confidentiality]")
    expect(course).to_contain_text("首次接单或出车前")
    course.locator("button").click()
    expect(page.locator("[data-testid=modules]")).to_contain_text("收货码")
    page.locator("fieldset[data-question='0'] label", has_text=re.compile(r"^\s*不可以\s*$")).click()
    page.locator("fieldset[data-question='1'] label", has_text="收货码").click()
    page.click("[data-testid=quiz] button[type=submit]")
    expect(page.locator("[data-testid=result]")).to_contain_text("100 %")
    certificate = downloaded(page, page.locator("[data-testid=certificate]"), demo.folder, "certificate.pdf")
    assert certificate.startswith(b"%PDF")
    assert f"Worker {cast.NEW_COURIER.id}" in pdf_text(certificate) and "外卖保密送达" in pdf_text(certificate)
    page.click("[data-testid=back]")
    expect(page.locator("li[data-course=courier-confidentiality]")).to_contain_text("已完成")


def test_the_supervisor_downloads_the_quarterly_report(browser: Any, demo: Demo) -> None:
    page = new_page(browser, demo.site, "en-US")
    sign_in(page, demo, "supervisor")
    page.click("nav.main >> text=Reports")
    heading = page.locator("h1")
    expect(heading).to_contain_text(re.compile(r"Reports · \d{4}Q[1-4]"))
    quarter = heading.inner_text().rsplit(" ", 1)[-1]
    report = downloaded(page, page.locator(f"[data-download='{quarter}-pdf']"), demo.folder, "report.pdf")
    assert report.startswith(b"%PDF")
    text = pdf_text(report)
    assert f"Quarterly safety and privacy evaluation · {quarter}" in text and "Screening pass rate" in text
