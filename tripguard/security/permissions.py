"""The one permission table: every role, every permission, and which role holds which.

Routes declare the permission they need (``requires``); nothing else decides access.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    # staff (console)
    SYSTEM_ADMIN = "system_admin"
    SECURITY_ADMIN = "security_admin"
    AUDIT_ADMIN = "audit_admin"
    SAFETY_AGENT = "safety_agent"
    INVESTIGATOR = "investigator"
    SCREENING_OFFICER = "screening_officer"
    PRIVACY_OFFICER = "privacy_officer"
    TRAINER = "trainer"
    SUPERVISOR = "supervisor"
    SUPPORT_AGENT = "support_agent"  # answers customers and couriers about orders
    HR_OFFICER = "hr_officer"  # violations and discipline
    MERCHANT = "merchant"
    # the operator's backend (API key)
    INTEGRATION = "integration"
    # app users (subject tokens minted by the operator)
    PASSENGER = "passenger"
    CUSTOMER = "customer"
    DRIVER = "driver"
    COURIER = "courier"


class Permission(StrEnum):
    PUBLIC = "public"  # no principal needed: health, sign-in, the OpenAPI document
    SELF_READ = "self.read"  # who am I
    CONSOLE_USE = "console.use"
    STAFF_READ = "staff.read"
    STAFF_MANAGE = "staff.manage"  # create and disable accounts (system administrator)
    STAFF_ROLES = "staff.roles"  # grant roles, unlock, reset second factor (security administrator)
    SESSION_REVOKE = "session.revoke"
    APIKEY_MANAGE = "apikey.manage"
    AUDIT_READ = "audit.read"
    AUDIT_SIGN = "audit.sign"
    SUBJECT_WRITE = "subject.write"  # the operator's backend records a data subject's details
    PERSONAL_READ = "personal.read"  # open a subject's record (plaintext only for a purpose held)
    SUBJECT_ERASE = "subject.erase"
    CATALOGUE_READ = "catalogue.read"
    NOTICE_PUBLISH = "notice.publish"
    SELF_PRIVACY = "self.privacy"  # a person's own requests: access, correction, erasure
    REQUEST_HANDLE = "request.handle"  # the privacy officer's queue of subject requests
    RETENTION_MANAGE = "retention.manage"  # retention runs and legal holds
    BREACH_MANAGE = "breach.manage"  # contain, investigate, notify, report a data breach
    TELEMATICS_INGEST = "telematics.ingest"  # the operator's backend streams trips, pings, heartbeats
    # Trip-monitoring alerts (without where they happened), trips (without positions), devices, check-ins.
    ALERTS_READ = "alerts.read"
    TRAJECTORY_READ = "trajectory.read"  # a trip's positions as evidence, with a purpose and a reason
    LIVE_MAP_READ = "live_map.read"  # every active trip's position, live, for the emergency purpose (audited)
    CHECKIN_REPLY = "checkin.reply"  # a passenger or driver answers "are you OK?"
    SOS_RAISE = "sos.raise"  # a person presses the emergency button
    CONTACTS_SELF = "contacts.self"  # a person's own emergency contacts
    TRIP_SHARE = "trip.share"  # a passenger or driver shares their trip with family (a link)
    RECORDING_OPEN = "recording.open"  # play an in-car recording, inside an open case, with a reason
    INCIDENT_HANDLE = "incident.handle"  # the safety centre's queue: acknowledge, work, resolve, close
    COMPLAINT_FILE = "complaint.file"  # a person complains about a trip or an order, or rates it low
    COMPLAINT_READ = "complaint.read"  # the supervisors' list of complaints
    SUPERVISION_READ = "supervision.read"  # the supervision team's findings over the audit log
    COMPLAINT_HANDLE = "complaint.handle"  # the feedback desk: take, answer, turn into a case or a breach
    COMPLAINT_TEMPLATES = "complaint.templates"  # the feedback desk's answer templates: write, change, retire
    SCREENING_SUBMIT = "screening.submit"  # the operator's backend: applicants, leavers, shift-start selfies
    ELIGIBILITY_READ = "eligibility.read"  # the operator's dispatch asks whether a worker may work
    SCREENING_ADJUDICATE = "screening.adjudicate"  # a screening officer's queue: review, notices, decisions
    SCREENING_SELF = "screening.self"  # an applicant's own screening: its status, a dispute
    ORDER_SUBMIT = "order.submit"  # the operator's backend: orders, couriers, states, the number pool
    ORDER_READ = "order.read"  # an order, as the reader's part in it lets them see it
    ORDER_HANDLE = "order.handle"  # a courier proves pickup and hand-over
    ORDER_REVEAL = "order.reveal"  # support opens one field of an order for a stated reason
    LABEL_PRINT = "label.print"  # the privacy label for the bag
    # The telephony provider asks whom a virtual number bridges to: a real number, audited as its use.
    TELEPHONY_ROUTE = "telephony.route"
    TRAINING_MANAGE = "training.manage"  # courses, who has passed them, coverage and satisfaction
    TRAINING_SELF = "training.self"  # a worker takes their courses, rates them, gets the certificate
    AGREEMENT_PUBLISH = "agreement.publish"  # a new version of a confidentiality agreement
    AGREEMENT_SIGN = "agreement.sign"  # a person signs the agreement for their audience
    VIOLATION_RAISE = "violation.raise"  # record a violation with its evidence (from a finding or a complaint)
    DISCIPLINE_DECIDE = "discipline.decide"  # sanctions on a violation, and decisions on appeals
    SANCTION_APPEAL = "sanction.appeal"  # the person sanctioned appeals
    REPORT_READ = "report.read"  # the KPIs against their targets, the quarterly report, their records
    REPORT_CLOSE = "report.close"  # close a finished quarter (freeze its figures) and restate it, with a reason
    # The regulator's feed (网约车监管信息交互平台): the operator's backend passes through the upload types
    # TripGuard does not hold; the compliance officer reads the feed's state and reconciliation, back-fills a
    # range and records planned outages.
    REGULATOR_SUBMIT = "regulator.submit"
    REGULATOR_READ = "regulator.read"
    REGULATOR_OPERATE = "regulator.operate"
    # Development only: what the recording channels (SMS, e-mail, push, the emergency gateway) would have sent,
    # so that whoever tries the demo reads the codes texted to its fictional people (404 in any other setting).
    MESSAGES_RECORDED = "messages.recorded"


class Purpose(StrEnum):
    """Why personal data is read. A plaintext read names one; the audit entry carries it."""

    DELIVERY = "delivery"  # fulfil an order
    EMERGENCY = "emergency"  # answer an SOS or a safety alert
    INVESTIGATION = "investigation"  # investigate an incident or a complaint
    SCREENING = "screening"  # background-screen a driver or courier
    SUPPORT = "support"  # answer the person's complaint or question
    SUBJECT_REQUEST = "subject_request"  # answer the person's own access or correction request
    BREACH_RESPONSE = "breach_response"  # tell people a breach affected them
    LEGAL_CLAIMS = "legal_claims"  # establish, exercise or defend legal claims (data kept by law after erasure)
    DISCIPLINE = "discipline"  # decide on a violation by a worker or a staff member
    # Send the regulator what the law requires (网约车 运行管理办法): held by no role, only the regulator feed's
    # machine reads name it (`regulator.gate`).
    LEGAL_OBLIGATION = "legal_obligation"


class Decision(StrEnum):
    """Decisions about a person that the person never takes: separation of duties. The staff member's
    person id is their account id, as their violations, sanctions and `/me` requests carry it."""

    SANCTION = "sanction"  # a sanction on a violation, and lifting it
    APPEAL = "appeal"  # the decision on an appeal against a sanction
    SCREENING = "screening"  # taking and deciding a screening case
    SUBJECT_REQUEST = "subject_request"  # verifying, deciding or carrying out an access, correction or erasure
    FINDING = "finding"  # reviewing a supervision finding about one's own use of data


def decides_own(actor_type: str, actor_id: str, person_ids: Iterable[str | None]) -> bool:
    """Whether a staff member would decide about themselves (the decision's subject, offender or applicant)."""
    return actor_type == "staff" and actor_id in {person for person in person_ids if person}


STAFF_ROLES = frozenset(
    {
        Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN, Role.SAFETY_AGENT,
        Role.INVESTIGATOR, Role.SCREENING_OFFICER, Role.PRIVACY_OFFICER, Role.TRAINER,
        Role.SUPERVISOR, Role.SUPPORT_AGENT, Role.MERCHANT, Role.HR_OFFICER,
    }
)
SUBJECT_ROLES = frozenset({Role.PASSENGER, Role.CUSTOMER, Role.DRIVER, Role.COURIER})
WORKER_ROLES = frozenset({Role.DRIVER, Role.COURIER})  # they sign the workers' agreement and are trained

# 等保 2.0: system, security and audit administration are held by different people.
SEPARATED_ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})

# Staff roles whose sign-in needs a second factor (TOTP). All that can reach personal data,
# administer the system or read the audit trail.
TOTP_REQUIRED_ROLES = STAFF_ROLES - {Role.TRAINER, Role.MERCHANT}

_STAFF_BASE = frozenset({Permission.SELF_READ, Permission.CONSOLE_USE, Permission.AGREEMENT_SIGN,
                         Permission.SANCTION_APPEAL})
_WORKER_BASE = frozenset({Permission.SCREENING_SELF, Permission.TRAINING_SELF, Permission.AGREEMENT_SIGN,
                          Permission.SANCTION_APPEAL})
_SUBJECT_BASE = frozenset({Permission.SELF_READ, Permission.SELF_PRIVACY, Permission.SOS_RAISE,
                           Permission.CONTACTS_SELF, Permission.TRIP_SHARE, Permission.COMPLAINT_FILE})

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.SYSTEM_ADMIN: _STAFF_BASE
    | {Permission.STAFF_READ, Permission.STAFF_MANAGE, Permission.APIKEY_MANAGE, Permission.MESSAGES_RECORDED,
       Permission.REGULATOR_READ, Permission.REGULATOR_OPERATE},
    Role.SECURITY_ADMIN: _STAFF_BASE
    | {Permission.STAFF_READ, Permission.STAFF_ROLES, Permission.SESSION_REVOKE},
    Role.AUDIT_ADMIN: _STAFF_BASE | {Permission.AUDIT_READ, Permission.AUDIT_SIGN},
    Role.SAFETY_AGENT: _STAFF_BASE | {Permission.PERSONAL_READ, Permission.ALERTS_READ, Permission.TRAJECTORY_READ,
                                      Permission.INCIDENT_HANDLE, Permission.LIVE_MAP_READ},
    Role.INVESTIGATOR: _STAFF_BASE | {Permission.PERSONAL_READ, Permission.ALERTS_READ, Permission.TRAJECTORY_READ,
                                      Permission.INCIDENT_HANDLE, Permission.RECORDING_OPEN, Permission.LIVE_MAP_READ},
    Role.SCREENING_OFFICER: _STAFF_BASE | {Permission.PERSONAL_READ, Permission.SCREENING_ADJUDICATE},
    Role.PRIVACY_OFFICER: _STAFF_BASE
    | {Permission.PERSONAL_READ, Permission.SUBJECT_ERASE, Permission.CATALOGUE_READ,
       Permission.NOTICE_PUBLISH, Permission.REQUEST_HANDLE, Permission.RETENTION_MANAGE,
       Permission.BREACH_MANAGE},
    Role.TRAINER: _STAFF_BASE | {Permission.TRAINING_MANAGE, Permission.AGREEMENT_PUBLISH},
    Role.SUPERVISOR: _STAFF_BASE | {Permission.AUDIT_READ, Permission.CATALOGUE_READ, Permission.COMPLAINT_READ,
                                    Permission.SUPERVISION_READ, Permission.VIOLATION_RAISE, Permission.REPORT_READ,
                                    Permission.REPORT_CLOSE, Permission.COMPLAINT_TEMPLATES, Permission.REGULATOR_READ,
                                    Permission.REGULATOR_OPERATE},
    Role.SUPPORT_AGENT: _STAFF_BASE | {Permission.PERSONAL_READ, Permission.ORDER_READ, Permission.ORDER_REVEAL,
                                       Permission.COMPLAINT_READ, Permission.COMPLAINT_HANDLE,
                                       Permission.VIOLATION_RAISE},
    Role.HR_OFFICER: _STAFF_BASE | {Permission.PERSONAL_READ, Permission.VIOLATION_RAISE,
                                    Permission.DISCIPLINE_DECIDE, Permission.SUPERVISION_READ},
    Role.MERCHANT: _STAFF_BASE | {Permission.ORDER_READ, Permission.LABEL_PRINT},
    Role.INTEGRATION: frozenset({Permission.SELF_READ, Permission.SUBJECT_WRITE, Permission.TELEMATICS_INGEST,
                                 Permission.ALERTS_READ, Permission.SCREENING_SUBMIT, Permission.ELIGIBILITY_READ,
                                 Permission.ORDER_SUBMIT, Permission.ORDER_READ, Permission.LABEL_PRINT,
                                 Permission.TELEPHONY_ROUTE, Permission.REGULATOR_SUBMIT}),
    Role.PASSENGER: _SUBJECT_BASE | {Permission.CHECKIN_REPLY},
    Role.CUSTOMER: _SUBJECT_BASE | {Permission.ORDER_READ},
    Role.DRIVER: _SUBJECT_BASE | _WORKER_BASE | {Permission.CHECKIN_REPLY},
    Role.COURIER: _SUBJECT_BASE | _WORKER_BASE | {Permission.ORDER_READ, Permission.ORDER_HANDLE},
}

# The purposes for which a role may see personal data in plaintext (else it sees the mask).
ROLE_PURPOSES: dict[Role, frozenset[Purpose]] = {
    Role.SAFETY_AGENT: frozenset({Purpose.EMERGENCY}),
    Role.INVESTIGATOR: frozenset({Purpose.EMERGENCY, Purpose.INVESTIGATION, Purpose.LEGAL_CLAIMS}),
    Role.SCREENING_OFFICER: frozenset({Purpose.SCREENING}),
    Role.PRIVACY_OFFICER: frozenset({Purpose.SUBJECT_REQUEST, Purpose.BREACH_RESPONSE, Purpose.LEGAL_CLAIMS}),
    Role.SUPPORT_AGENT: frozenset({Purpose.SUPPORT}),
    Role.HR_OFFICER: frozenset({Purpose.DISCIPLINE}),
    Role.COURIER: frozenset({Purpose.DELIVERY}),  # the address of the order they carry, until hand-over
}


def purposes_for(roles: frozenset[Role] | set[Role]) -> frozenset[Purpose]:
    held: set[Purpose] = set()
    for role in roles:
        held |= ROLE_PURPOSES.get(role, frozenset())
    return frozenset(held)


# What an API key may be scoped to: the integration role's permissions. What each returns is the table in
# docs/api.md ("What each API key scope returns"): none returns a position (tests/security/test_scope_table.py).
API_KEY_SCOPES = ROLE_PERMISSIONS[Role.INTEGRATION]

# The same sets as enums, so the OpenAPI schema lists exactly what may be granted.
StaffRole = StrEnum("StaffRole", {role.name: role.value for role in Role if role in STAFF_ROLES})  # type: ignore[misc]
ApiKeyScope = StrEnum("ApiKeyScope", {p.name: p.value for p in Permission if p in API_KEY_SCOPES})  # type: ignore[misc]


def permissions_for(roles: frozenset[Role] | set[Role]) -> frozenset[Permission]:
    granted: set[Permission] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)


def role_conflicts(roles: set[Role]) -> set[Role]:
    """The separated administrator roles present together (empty when the set is allowed)."""
    held = roles & SEPARATED_ADMIN_ROLES
    return held if len(held) > 1 else set()
