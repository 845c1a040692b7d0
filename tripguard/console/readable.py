"""What a person reads in place of a machine value: the console's one set of helpers (Jinja filters and
globals, installed by `rendering`) for roles, purposes, data categories, audit actions, rules, screening
findings, yes and no, personal values that no longer open, and people named by their name.

Each vocabulary lists its keys as msgids (the project's convention: the zh catalog gives the Chinese, the
en catalog the English); `tests/console/test_readable.py` checks that every key the code can produce is listed
and translated both ways. A key not listed is shown as it is, which the zh crawl
(`tests/web/test_readable_pages.py`) reports.

Ids shown on purpose (a case, a trip, a request, a person whose name is personal data behind the access
gate) go through `ref`: `<code class="ref" translate="no">`, the one mark the crawl allows an id in. A staff
member or an API key is always named (`who`): their names are not personal data."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tripguard.core import i18n
from tripguard.core.i18n import N_
from tripguard.privacy.access import ERASED, UNREADABLE
from tripguard.security.models import ApiKey, StaffAccount

ROLES = {key: key for key in (
    N_("system_admin"), N_("security_admin"), N_("audit_admin"), N_("safety_agent"), N_("investigator"),
    N_("screening_officer"), N_("privacy_officer"), N_("trainer"), N_("supervisor"), N_("support_agent"),
    N_("hr_officer"), N_("merchant"), N_("integration"), N_("passenger"), N_("customer"), N_("driver"),
    N_("courier"))}
PURPOSES = {key: key for key in (
    N_("delivery"), N_("emergency"), N_("investigation"), N_("screening"), N_("support"), N_("subject_request"),
    N_("breach_response"), N_("legal_claims"), N_("discipline"), N_("legal_obligation"))}
CATEGORIES = {key: key for key in (
    N_("user.name"), N_("user.contact.phone_number"), N_("user.contact.email"), N_("user.contact.address"),
    N_("user.government_id"), N_("user.financial.bank_account"), N_("user.content.free_text"), N_("user.location"),
    N_("user.criminal_history"), N_("user.biometric.face"), N_("user.financial.credit"))}
# Every action the audit log records (`audit.record(action=…)`), as a person reads it.
ACTIONS = {key: key for key in (
    N_("agreement.publish"), N_("agreement.sign"), N_("answer_template.create"), N_("answer_template.update"),
    N_("answer_template.retire"), N_("messages.recorded_read"), N_("trip.abandoned"), N_("apikey.create"),
    N_("apikey.revoke"), N_("audit.sign_head"),
    N_("auth.sign_in"), N_("auth.sign_out"), N_("auth.totp_enrol"), N_("backup.create"), N_("backup.restore"),
    N_("backup.restore.journal_override"), N_("breach.add_subjects"), N_("breach.close"), N_("breach.contain"),
    N_("breach.investigate"), N_("breach.notify"), N_("breach.open"), N_("breach.report_authority"),
    N_("check_in.answer"), N_("complaint.answer"), N_("complaint.assign"), N_("complaint.file"),
    N_("complaint.to_incident"), N_("complaint.to_breach"), N_("console.export"), N_("contact.add"),
    N_("contact.register_existing"), N_("contact.remove"), N_("contact.verify"), N_("device.install"),
    N_("device.tampered"), N_("digest.subscribe"), N_("digest.unsubscribe"), N_("finding.review"),
    N_("hold.place"), N_("hold.release"), N_("incident.acknowledge"), N_("incident.start"), N_("incident.resolve"),
    N_("incident.close"), N_("inspection.checklist_put"), N_("inspection.record"), N_("keys.journal.restart"),
    N_("keys.retire"), N_("keys.rotate"), N_("live_map.open"), N_("live_map.shown"), N_("merchant.staff"),
    N_("notice.publish"), N_("order.assign"), N_("order.assign_override"), N_("order.reveal"), N_("order.take"),
    N_("order.prepared"), N_("order.picked_up"), N_("order.delivered"), N_("order.cancelled"),
    N_("order.exception"), N_("order.pickup_code"), N_("order.handover_code"), N_("personal.read"),
    N_("personal.use"), N_("privacy.blind_index_rebuild"), N_("recording.open"), N_("recording.register"),
    N_("regulator.backfill"), N_("regulator.export"), N_("regulator.outage_announce"), N_("report.close"),
    N_("report.restate"), N_("request.decide"), N_("request.file"), N_("request.verify"),
    N_("retention.run"), N_("sanction.appeal"), N_("sanction.appeal_decide"), N_("sanction.decide"),
    N_("sanction.lift"), N_("screening.apply"), N_("screening.face_match"), N_("screening.invite"),
    N_("screening.notice_undelivered"), N_("screening.take"), N_("screening.decide.clear"),
    N_("screening.decide.pre_adverse"), N_("screening.decide.reject"), N_("screening.decide.notice_delivered"),
    N_("screening.screening"), N_("screening.review"), N_("screening.pre_adverse"), N_("screening.disputed"),
    N_("screening.active"), N_("screening.suspended"), N_("screening.rejected"), N_("screening.offboarded"),
    N_("security.scan"), N_("share.create"), N_("share.revoke"), N_("share.view"), N_("sos.raise"),
    N_("staff.create"), N_("staff.disable"), N_("staff.roles"), N_("staff.sessions_revoke"), N_("staff.totp_reset"),
    N_("staff.unlock"), N_("subject.erase"), N_("subject.export"), N_("subject.upsert"), N_("training.attempt"),
    N_("training.course_put"), N_("trip.trajectory_read"), N_("vehicle.upsert"), N_("violation.raise"))}
# Rules: the monitor's alert kinds, supervision's finding rules, retention's rules and their counts.
RULES = {key: key for key in (
    N_("route_deviation"), N_("long_stop"), N_("possible_crash"), N_("early_end"), N_("gps_lost"), N_("speeding"),
    N_("device_offline"), N_("ineligible_driver"), N_("many_people"), N_("after_hours"), N_("bulk_export"),
    N_("unassigned"), N_("gate_override"),
    N_("delivery_contacts"), N_("delivery_orders"), N_("ride_subjects"), N_("trips"), N_("case_positions"),
    N_("recordings"), N_("ingest_keys"), N_("complaints"), N_("sent_messages"), N_("key_backup_keys"),
    N_("erased"), N_("would_erase"), N_("held"), N_("keep_days"))}
# The API scopes an operator's key may hold (security.permissions.API_KEY_SCOPES).
SCOPES = {key: key for key in (
    N_("self.read"), N_("subject.write"), N_("telematics.ingest"), N_("alerts.read"), N_("screening.submit"),
    N_("eligibility.read"), N_("order.submit"), N_("order.read"), N_("label.print"), N_("telephony.route"),
    N_("regulator.submit"))}
# What a screening agency found, by key, and the records it names.
FACTS = {key: key for key in (
    N_("name_match"), N_("liveness"), N_("licence_years"), N_("valid"), N_("records"), N_("points_by_cycle"),
    N_("credit_score"))}
RECORDS = {key: key for key in (
    N_("traffic_accident_crime"), N_("dangerous_driving_crime"), N_("drug_use"), N_("drink_driving"),
    N_("violent_crime"), N_("fraud"), N_("other"))}
# Why something happened and how, as audit details carry it: an erasure's or a sign-out's reason, a channel.
REASONS = {key: key for key in (
    N_("operator"), N_("retention"), N_("roles changed"), N_("second factor reset"), N_("unknown user"),
    N_("wrong password"), N_("wrong enrolment code"), N_("sms"), N_("email"), N_("in_person"))}
VOCABULARIES = (ROLES, PURPOSES, CATEGORIES, ACTIONS, RULES, SCOPES, FACTS, RECORDS, REASONS)
# Personal fields by column (the data catalogue's), as the audit log's "fields" and "plaintext" name them.
FIELDS = {
    "address": N_("Address"), "answer": N_("Answer"), "appeal": N_("Appeal"), "content": N_("Content"),
    "correction": N_("Correction asked"), "courier_phone": N_("Courier's phone"),
    "customer_name": N_("Customer's name"),
    "customer_phone": N_("Customer's phone"), "email": N_("E-mail"), "facts": N_("What the checks found"),
    "id_number": N_("ID number"), "merchant_phone": N_("Merchant's phone"), "name": N_("Full name"),
    "notes": N_("Notes"),
    "packed": N_("Trip positions"), "phone": N_("Phone"), "plan": N_("Planned route"), "position": N_("Position"),
    "proof_photo": N_("Proof photo"), "reasons": N_("Reasons"), "selfie": N_("Selfie"), "state": N_("Monitor state"),
    "summary": N_("Summary"), "text": N_("Text"),
}
FIELD_DETAILS = frozenset({"fields", "plaintext", "field"})

ID = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")  # tripguard.core.ids.new_id


def _term(vocabulary: dict[str, str], key: object) -> str:
    text = "" if key is None else str(key)
    return i18n.gettext(vocabulary[text]) if text in vocabulary else text


def role_name(key: object) -> str:
    return _term(ROLES, key)


def purpose_name(key: object) -> str:
    return _term(PURPOSES, key)


def category_name(key: object) -> str:
    return _term(CATEGORIES, key)


def action_name(key: object) -> str:
    return _term(ACTIONS, key)


def rule_name(key: object) -> str:
    return _term(RULES, key)


def scope_name(key: object) -> str:
    return _term(SCOPES, key)


def action_choices() -> list[tuple[str, str]]:
    """Every audit action as (key, name), by name: the audit log's filter."""
    return sorted(((key, action_name(key)) for key in ACTIONS), key=lambda pair: pair[1])


def term(key: object) -> str | None:
    """A key of any vocabulary as a person reads it; None when no vocabulary knows it."""
    text = "" if key is None else str(key)
    for vocabulary in VOCABULARIES:
        if text in vocabulary:
            return i18n.gettext(vocabulary[text])
    return None


def yes_no(value: object) -> str:
    """True and False as words; None (not known, not checked) as a dash."""
    if value is None or value == "None":
        return "—"
    return i18n.gettext("yes") if value in (True, "True", "true") else i18n.gettext("no")


def ref(value: object) -> Markup:
    """An id shown as an id, on purpose (the zh crawl allows ids inside this mark only)."""
    if value is None or value == "":
        return Markup("—")
    return Markup('<code class="ref" translate="no">{}</code>').format(value)


def shown(value: object) -> Markup:
    """A personal value as the access gate gave it: the value, or what says it no longer opens."""
    if value is None or value == "":
        return Markup("—")
    if value == ERASED:
        return Markup('<span class="muted">{}</span>').format(i18n.gettext("erased with the person"))
    if value == UNREADABLE:
        return Markup('<span class="muted">{}</span>').format(i18n.gettext("no longer readable"))
    return escape(value)


# ---- screening findings ----------------------------------------------------------------------


def facts(found: dict[str, object]) -> list[tuple[str, Markup]]:
    """An agency's findings as (label, value) rows: keys named, yes and no, records named, lists joined.
    A key no vocabulary knows (a real agency's extra field) is shown as a ref: TripGuard cannot name it."""
    rows = []
    for key, value in found.items():
        label = _term(FACTS, key) if key in FACTS else str(ref(key))
        rows.append((label, _fact(key, value)))
    return rows


def _fact(key: str, value: object) -> Markup:
    if value is None:
        return Markup('<span class="muted">{}</span>').format(i18n.gettext("not checked"))
    if isinstance(value, bool):
        return escape(yes_no(value))
    if isinstance(value, list):
        if not value:
            return escape(i18n.gettext("none"))
        parts = [_term(RECORDS, v) if key == "records" else str(v) for v in value]
        return escape(" / " if key == "points_by_cycle" else "、").join(parts)
    return escape(_term(RECORDS, value) if key == "records" else value)


# ---- details of audit entries and timelines ----------------------------------------------------


# Detail keys whose values are ids (of records, of people outside the staff, hashes): shown as refs.
ID_DETAILS = frozenset({
    "offender", "courier", "driver", "passenger", "subject", "subject_id", "subjects", "trip", "trip_id", "order",
    "vehicle", "device", "device_id", "case", "incident", "incident_id", "request", "recording", "session",
    "check_in", "alert", "sanction", "violation", "inspection", "merchant", "dispute", "hold", "share",
    "report", "claimed_trip", "claimed_order", "sha256", "reference", "notice", "policy", "version", "record",
    "document", "key", "backup"})


ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


def detail_value(value: object, people: People | None = None, key: str | None = None,
                 zone: tzinfo | None = None) -> Markup:
    """A value of an audit entry's or a timeline's details, read: yes and no, keys named, staff by name,
    lists joined, ids as refs (`key`: the detail's key, naming values that are ids), times in `zone` (the
    operator's); free text and numbers as they are."""
    if key in FIELD_DETAILS and isinstance(value, str):
        return escape("、".join(_term(FIELDS, part) for part in value.split(",") if part) or "—")
    if key in ID_DETAILS and isinstance(value, str) and value not in ("", "None"):
        parts = [p for p in value.split(",") if p] if "," in value and " " not in value else [value]
        return Markup(" ").join(who(p, people=people) if people is not None and p.startswith(("stf_", "key_"))
                                else ref(p) for p in parts)
    if key in ID_DETAILS and isinstance(value, (list, tuple)):
        return Markup(" ").join(detail_value(str(v), people, key) for v in value) if value else Markup("—")
    if value is None or value == "" or value == "None":
        return Markup("—")
    if isinstance(value, bool) or value in ("True", "False"):
        return escape(yes_no(value))
    if isinstance(value, (int, float)):
        return escape(value)
    if isinstance(value, (list, tuple)):
        return Markup("、").join(detail_value(v, people, None, zone) for v in value) if value else Markup("—")
    if isinstance(value, dict):
        return Markup("；").join(Markup("{}: {}").format(detail_key(k), detail_value(v, people, str(k), zone))
                                for k, v in value.items())
    text = str(value)
    if ISO_TIME.match(text):  # a moment: in the operator's zone, as the page's other times
        try:
            moment = datetime.fromisoformat(text)  # Python 3.11 reads a trailing Z
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return escape(moment.astimezone(zone or UTC).strftime("%Y-%m-%d %H:%M:%S"))
    if text.startswith("{") and text.endswith("}") and len(text) < 1000:  # a dict kept as its repr (retention runs)
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            return detail_value(parsed, people, None, zone)
    named = term(text)
    if named is not None:
        return escape(named)
    if i18n.gettext(text) != text:  # a word the catalogs translate (a state, an outcome)
        return escape(i18n.gettext(text))
    if people is not None and (text.startswith(("stf_", "key_")) or text.partition(":")[0] in ACTOR_KINDS):
        return who(text, people=people)
    if "," in text and all(term(part) is not None for part in text.split(",")):
        return escape("、".join(str(term(part)) for part in text.split(",")))
    if ID.match(text):
        return ref(text)
    return escape(text)


def detail_key(key: object) -> str:
    from tripguard.console.labels import (
        detail_label,  # the labels of detail keys live with the shell's labels
    )

    return detail_label(str(key))


# ---- people ------------------------------------------------------------------------------------


@dataclass
class People:
    """Staff and API keys by name, for one page: read once, when a page first asks."""

    session: Session | None = None
    factory: sessionmaker[Session] | None = None
    _staff: dict[str, str] | None = field(default=None, repr=False)
    _keys: dict[str, str] = field(default_factory=dict, repr=False)

    def _load(self) -> dict[str, str]:
        if self._staff is None:
            if self.session is not None:
                self._staff, self._keys = self._read(self.session)
            elif self.factory is not None:
                with self.factory() as session:
                    self._staff, self._keys = self._read(session)
            else:
                self._staff = {}
        return self._staff

    @staticmethod
    def _read(session: Session) -> tuple[dict[str, str], dict[str, str]]:
        staff = {str(i): str(n) for i, n in session.execute(select(StaffAccount.id, StaffAccount.display_name))}
        keys = {str(i): str(n) for i, n in session.execute(select(ApiKey.id, ApiKey.name))}
        return staff, keys

    def staff(self, staff_id: str) -> str | None:
        return self._load().get(staff_id)

    def api_key(self, key_id: str) -> str | None:
        self._load()
        return self._keys.get(key_id)


ACTOR_KINDS = {"staff", "api_key", "subject", "system", "cli", "worker", "anonymous"}


def who(actor: object, actor_id: object = None, *, people: People) -> Markup:
    """Who did something, as a person reads it. `actor`: "kind:id" (timelines, runs), a kind with
    `actor_id` (the audit log), or a bare staff id (an assignee). Staff and API keys by their name; people
    outside the staff by their id (their name is personal data, opened through the access gate); the
    system and the command line as such."""
    if actor is None and actor_id is None:
        return Markup("—")
    text = str(actor or "")
    if actor_id is not None:
        kind, ident = text, str(actor_id)
    elif text.partition(":")[0] in ACTOR_KINDS and ":" in text:
        kind, _, ident = text.partition(":")
    else:
        kind, ident = ("staff" if text.startswith("stf_") else "api_key" if text.startswith("key_") else ""), text
    if kind == "staff":
        name = people.staff(ident)
        return Markup('<span class="person" translate="no">{}</span>').format(name) if name else ref(ident)
    if kind == "api_key":
        name = people.api_key(ident)
        return Markup('<span class="person" translate="no">{}</span>').format(name) if name else ref(ident)
    if kind == "system":
        return escape(i18n.gettext("system"))
    if kind == "cli":
        return escape(i18n.gettext("command line"))
    if kind == "anonymous":
        return escape(i18n.gettext("anonymous"))
    return ref(ident)


def staff_names(session: Session) -> dict[str, str]:
    """Every staff member's name by id (a CSV export names assignees)."""
    return People._read(session)[0]
