"""The demo's people and what the operator's backend would have told TripGuard about them, written through
the real services (as `PUT /subjects`, `PUT /applicants`, the agency's round, the courses, `POST /orders`
would): so the dispatch gate and the trip-start safety net hold for the demo as they do for an operator.

- the fleet: one driver and one vehicle per Porto taxi, each driver recorded with a name and phone,
  screened (the simulated agency answers clear), trained (the drivers' required course passed) and
  signed (the workers' confidentiality agreement); the vehicles' monitoring devices installed, and
  three parked vehicles besides (a faulty camera, a device silent since its install, no device yet),
  so the device registry and its rates look like a real fleet's;
- named passengers (the demo's callers), every fourth with a verified emergency contact;
- for the console's walk-through: an applicant waiting for a screening officer (a record the policy does not name, to
  judge), a courier cleared to deliver with an order assigned to them (its label to print), and a
  courier who still has the couriers' required course to pass.

Every step is idempotent: `make run` runs it at every start, and it adds only what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.audit.actor import Actor
from tripguard.core.clock import utcnow
from tripguard.core.db import unit_of_work
from tripguard.delivery import numbers
from tripguard.delivery import service as delivery
from tripguard.delivery.models import Order
from tripguard.notify import service as notify
from tripguard.notify.models import OutboxMessage
from tripguard.privacy import service as privacy
from tripguard.privacy.models import DataSubject
from tripguard.safety import contacts
from tripguard.safety.models import EmergencyContact
from tripguard.screening import agency
from tripguard.screening import service as screening
from tripguard.screening.models import Applicant
from tripguard.screening.providers import SimulatedScreeningAgency
from tripguard.security.permissions import Role
from tripguard.security.principal import Principal
from tripguard.sim.people import Person, id_number, name_of, phone_of
from tripguard.sim.porto import load_trips
from tripguard.telematics.fleet import registry
from tripguard.telematics.models import Device, Vehicle
from tripguard.vault.service import Vault
from tripguard.workforce import agreements, training
from tripguard.workforce.models import Attempt

ACTOR = Actor("cli", "demo-bootstrap")
NOTICE_VERSION = "2026-12"
NOTICE = {
    "version": NOTICE_VERSION,
    "purposes": ["emergency", "delivery", "support", "subject_request", "screening"],
    "categories": ["user.name", "user.contact.phone_number", "user.contact.email", "user.contact.address",
                   "user.government_id", "user.criminal_history", "user.financial.credit"],
    "retention_zh": "行程数据保存两年；外卖联系方式在订单完成后 72 小时删除；"
                    "背景审查记录在合作期间及结束后三年内保存。",
    "retention_en": "Trip data is kept for two years; delivery contact details are deleted 72 hours after the order; "
                    "screening records are kept while you work with us and three years after.",
    "text_zh": "为保障出行与配送安全，我们收集您的姓名和联系方式，仅用于紧急救助、订单履约和答复您的请求；司机和骑手的"
               "身份证号码、犯罪记录和信用评估仅用于背景审查，需您单独同意。",
    "text_en": "To keep trips and deliveries safe we collect your name and contact details, used only for emergency "
               "help, fulfilling your order and answering your requests; drivers' and couriers' ID numbers, criminal "
               "records and credit evaluations are used only for background screening, with your separate consent.",
}
SCREENING_CONSENTS = ("user.criminal_history", "user.financial.credit")
CITY = "porto"
PASSENGERS = 160  # named passengers the demo city's trips are given, in turn (more than ride at once)
MERCHANT = "M-DEMO-1"
CUSTOMER = Person("C-DEMO-1", "陈小红", phone_of(5, 1))
COURIER = Person("K-DEMO-1", "周骑手", phone_of(4, 1))  # cleared: the demo order is theirs
NEW_COURIER = Person("K-DEMO-2", "吴新手", phone_of(4, 2))  # screened and signed, the course still to pass
APPLICANT = Person("D-DEMO-APPLICANT", "郑申请", phone_of(4, 3))  # a record for the screening officer to judge
ORDER = "O-DEMO-1"
VIRTUAL_NUMBERS = [f"1700000{n:04d}" for n in range(1, 21)]
PARKED = [("V-PARK-1", "faulty"), ("V-PARK-2", "silent"), ("V-PARK-3", "no_device")]
COLOURS = ("white", "black", "silver", "blue")
MODELS = ("Toyota Prius", "Mercedes E-Class", "Skoda Octavia", "Peugeot 508")


def passenger(n: int) -> Person:
    """The n-th named passenger (0-based, wraps): the demo city's callers."""
    n %= PASSENGERS
    return Person(f"P-DEMO-{n + 1:03d}", name_of(500 + n), phone_of(2, n))


def has_contact(n: int) -> bool:
    """Whether passenger n (the n-th trip's) named a verified emergency contact: every fourth does."""
    return n % PASSENGERS % 4 == 0


def contact_of(n: int) -> Person:
    """The emergency contact of passenger n (when `has_contact`)."""
    return Person(f"contact-{n}", name_of(700 + n), phone_of(3, n))


@dataclass(frozen=True)
class Taxi:
    number: int
    taxi_id: str

    @property
    def vehicle_id(self) -> str:
        return f"V{self.taxi_id}"

    @property
    def device_id(self) -> str:
        return f"DEV-V{self.taxi_id}"

    @property
    def driver(self) -> Person:
        return Person(f"D{self.taxi_id}", name_of(self.number), phone_of(1, self.number))


def fleet(trips: int | None = None) -> list[Taxi]:
    """The taxis of the Porto trips the demo city replays (the first `trips` of them), in order."""
    seen: dict[str, None] = {}
    for trip in load_trips()[:trips]:
        seen.setdefault(trip.taxi_id, None)
    return [Taxi(n, taxi_id) for n, taxi_id in enumerate(seen)]


COURSES: dict[str, dict[str, object]] = {
    "driver-safety": {
        "kind": "safety", "audience": "driver", "title_zh": "网约车安全驾驶与应急处置",
        "title_en": "Safe driving and emergencies for ride-hailing drivers",
        "modules": [
            {"title_zh": "行车安全", "title_en": "Driving safely",
             "body_zh": "保持安全车距，不疲劳驾驶，连续驾驶 4 小时须休息 20 分钟。",
             "body_en": "Keep a safe distance, never drive tired: rest 20 minutes after 4 hours at the wheel."},
            {"title_zh": "乘客求助", "title_en": "When a passenger asks for help",
             "body_zh": "乘客按下一键求助时，安全中心会联系您：请在安全处停车并配合处置。",
             "body_en": "When a passenger presses SOS the safety centre calls you: stop somewhere safe and help."}],
        "quiz": [{"text_zh": "连续驾驶 4 小时后应当？", "text_en": "After 4 hours at the wheel you…",
                  "options_zh": ["继续接单", "休息 20 分钟"], "options_en": ["take the next trip", "rest 20 minutes"],
                  "answer": 1},
                 {"text_zh": "乘客按下一键求助后应当？", "text_en": "When the passenger presses SOS you…",
                  "options_zh": ["在安全处停车并配合安全中心", "加速离开"],
                  "options_en": ["stop somewhere safe and help the safety centre", "drive faster"], "answer": 0}],
        "pass_mark": 100, "required": True, "refresher_months": 12},
    "courier-confidentiality": {
        "kind": "confidentiality", "audience": "courier", "title_zh": "外卖保密送达",
        "title_en": "Delivering in confidence",
        "modules": [
            {"title_zh": "只为送达而用", "title_en": "Only to deliver",
             "body_zh": "顾客的地址和电话只用于本单送达，送达后不得保存、转告或拍照。",
             "body_en": "Use the customer's address and phone only to deliver this order; never keep, pass on or "
                        "photograph them."},
            {"title_zh": "当面核验", "title_en": "Check at the door",
             "body_zh": "送达时请顾客告诉您收货码，核对无误后交付。",
             "body_en": "At the door, ask the customer for the hand-over code and hand over once it matches."}],
        "quiz": [{"text_zh": "送达后可以保存顾客电话吗？",
                  "text_en": "May you keep the customer's phone after delivery?",
                  "options_zh": ["可以", "不可以"], "options_en": ["Yes", "No"], "answer": 1},
                 {"text_zh": "交付前要核对什么？", "text_en": "What do you check before handing over?",
                  "options_zh": ["收货码", "顾客的身份证"],
                  "options_en": ["The hand-over code", "The customer's ID card"],
                  "answer": 0}],
        "pass_mark": 100, "required": True, "refresher_months": 12},
}


def publish(session: Session) -> None:
    """The notice every demo person is shown, and the courses the workers must pass."""
    privacy.publish_notice(session, actor=ACTOR, **NOTICE)  # type: ignore[arg-type]
    for course_id, content in COURSES.items():
        training.put_course(session, actor=ACTOR, course_id=course_id, content=content)


def record(session: Session, *, vault: Vault, person: Person, kind: str) -> None:
    """The operator records the person (as `PUT /api/v1/subjects/{id}`), once."""
    if session.get(DataSubject, person.id) is None:
        privacy.upsert_subject(session, vault=vault, actor=ACTOR, subject_id=person.id, kind=kind,
                               notice_version=NOTICE_VERSION, values={"name": person.name, "phone": person.phone})


def apply(session: Session, *, vault: Vault, person: Person, role: str, n: int, scenario: str = "001") -> None:
    """The operator's backend posts the applicant (as `PUT /api/v1/applicants/{id}`), once."""
    if session.get(Applicant, person.id) is not None:
        return
    screening.apply(session, vault=vault, actor=ACTOR, applicant_id=person.id, agency=SimulatedScreeningAgency.name,
                    application=screening.Application(role=role, name=person.name, id_number=id_number(n, scenario),
                                                      notice_version=NOTICE_VERSION, phone=person.phone, city=CITY,
                                                      consents=SCREENING_CONSENTS))


def screen_queued(factory: sessionmaker[Session], *, vault: Vault, rules: screening.Rules) -> int:
    """The agency's round, until nothing is queued (the simulated agency answers at once)."""
    sent = 0
    while True:
        result = agency.dispatch_reports(factory, vault=vault, agency=SimulatedScreeningAgency(), rules=rules,
                                         batch=200)
        sent += result.sent
        if not result.sent:
            return sent


def train_and_sign(session: Session, *, person: Person, role: Role, course_id: str | None) -> None:
    """The worker signs the agreement in force and passes their required course, as in their app."""
    worker = Principal.for_roles("subject", person.id, frozenset({role}))
    text, signature = agreements.in_force_for(session, principal=worker)
    if signature is None:
        agreements.sign(session, principal=worker, sha256=text.sha256, ip=None,
                        user_agent="demo bootstrap")
    if course_id is None or session.scalar(select(Attempt.id).where(
            Attempt.worker_id == person.id, Attempt.course_id == course_id, Attempt.passed.is_(True)).limit(1)):
        return
    course = training.get_course(session, course_id=course_id)
    training.submit(session, actor=worker.actor, worker_id=person.id, role=role.value, course_id=course_id,
                    answers=[int(q["answer"]) for q in course.quiz], idempotency_key=f"demo:{course_id}")


def install_fleet(session: Session, *, taxis: list[Taxi]) -> None:
    """Each taxi's vehicle with its monitoring device, and the three parked vehicles, once."""
    installed = utcnow() - timedelta(days=90)
    for taxi in taxis:
        if session.get(Vehicle, taxi.vehicle_id) is None:
            n = taxi.number
            registry.upsert_vehicle(session, actor=ACTOR, vehicle_id=taxi.vehicle_id, plate=f"{n:02d}-PT-{n % 97:02d}",
                                    colour=COLOURS[n % len(COLOURS)], model=MODELS[n % len(MODELS)])
        if session.get(Device, taxi.device_id) is None:
            registry.install_device(session, actor=ACTOR, device_id=taxi.device_id, vehicle_id=taxi.vehicle_id,
                                    installed_at=installed)
    for n, (vehicle_id, state) in enumerate(PARKED):
        if session.get(Vehicle, vehicle_id) is None:
            registry.upsert_vehicle(session, actor=ACTOR, vehicle_id=vehicle_id, plate=f"PK-{n + 1:02d}-PT",
                                    colour=COLOURS[n], model=MODELS[n])
        if state != "no_device" and session.get(Device, f"DEV-{vehicle_id}") is None:
            registry.install_device(session, actor=ACTOR, device_id=f"DEV-{vehicle_id}", vehicle_id=vehicle_id,
                                    installed_at=installed)


def heartbeating_devices(taxis: list[Taxi]) -> list[tuple[str, str, bool]]:
    """(device, vehicle, camera works) of every device the demo city makes heartbeat: the fleet's, and the
    parked vehicle whose camera is broken. The silent one never speaks."""
    return [(t.device_id, t.vehicle_id, True) for t in taxis] + \
        [(f"DEV-{v}", v, False) for v, state in PARKED if state == "faulty"]


def name_passengers(session: Session, *, vault: Vault, secret_key: str) -> None:
    """The named passengers; every fourth names an emergency contact and verifies them with the code
    texted to the contact (read from the message, as the contact would)."""
    for n in range(PASSENGERS):
        person = passenger(n)
        record(session, vault=vault, person=person, kind="passenger")
        if not has_contact(n) or session.scalar(select(EmergencyContact.id)
                                                .where(EmergencyContact.subject_id == person.id)):
            continue
        owner = Principal.for_roles("subject", person.id, frozenset({Role.PASSENGER}))
        friend = contact_of(n)
        added = contacts.add(session, vault=vault, secret_key=secret_key, owner=owner, name=friend.name,
                             phone=friend.phone, auto_share="night")
        session.flush()
        code = _texted_code(session, vault, f"contact-code:{added.id}")
        contacts.verify(session, secret_key=secret_key, owner=owner, contact_id=added.id, code=code)


def _texted_code(session: Session, vault: Vault, idempotency_key: str) -> str:
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == idempotency_key))
    shown = notify.opened(session, vault=vault, message=message) if message is not None else None
    found = re.search(r"\d{6}", shown.body) if shown is not None else None
    if found is None:
        raise RuntimeError(f"no code was texted ({idempotency_key})")
    return found.group(0)


def stock_delivery(session: Session, *, vault: Vault) -> None:
    """The kitchen's order for the cleared courier (its label to print, its codes to give), once."""
    numbers.add_numbers(session, city=CITY, numbers=VIRTUAL_NUMBERS)
    if session.get(Order, ORDER) is not None:
        return
    record(session, vault=vault, person=CUSTOMER, kind="customer")
    delivery.take_order(session, vault=vault, actor=ACTOR, intake=delivery.Intake(
        order_id=ORDER, customer_id=CUSTOMER.id, merchant_id=MERCHANT, city=CITY, notice_version=NOTICE_VERSION,
        name=CUSTOMER.name, phone=CUSTOMER.phone, address="深圳市南山区科技园南路 18 号 3 栋 1201 室",
        items=[{"name": "牛肉面", "quantity": 1, "category": "food"},
               {"name": "酸梅汤", "quantity": 2, "category": "drink"}],
        notes="到了请打电话", merchant_phone=phone_of(6, 1)))
    delivery.assign(session, vault=vault, actor=ACTOR, order_id=ORDER, courier_id=COURIER.id,
                    courier_phone=COURIER.phone,
                    on_exhausted=numbers.alert_exhausted)


def cast(factory: sessionmaker[Session], *, vault: Vault, secret_key: str, rules: screening.Rules,
         taxis: list[Taxi]) -> None:
    """Everyone, in the order an operator's backend would bring them."""
    with unit_of_work(factory) as session:
        publish(session)
        install_fleet(session, taxis=taxis)
        for taxi in taxis:
            record(session, vault=vault, person=taxi.driver, kind="driver")
            apply(session, vault=vault, person=taxi.driver, role="driver", n=taxi.number)
        for n, (person, scenario) in enumerate(((COURIER, "001"), (NEW_COURIER, "001"), (APPLICANT, "006"))):
            record(session, vault=vault, person=person, kind="courier" if person is not APPLICANT else "driver")
            apply(session, vault=vault, person=person, role="courier" if person is not APPLICANT else "driver",
                  n=900 + n, scenario=scenario)
        name_passengers(session, vault=vault, secret_key=secret_key)
    screen_queued(factory, vault=vault, rules=rules)
    with unit_of_work(factory) as session:
        for taxi in taxis:
            train_and_sign(session, person=taxi.driver, role=Role.DRIVER, course_id="driver-safety")
        train_and_sign(session, person=COURIER, role=Role.COURIER, course_id="courier-confidentiality")
        train_and_sign(session, person=NEW_COURIER, role=Role.COURIER,
                       course_id=None)  # their course is for the walk-through
        stock_delivery(session, vault=vault)
