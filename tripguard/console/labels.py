"""Strings the templates translate by value (navigation, roles, outcomes): listed so Babel extracts them."""

from __future__ import annotations

from tripguard.console import readable
from tripguard.core import i18n
from tripguard.core.i18n import N_

LABELS = [
    N_("manual"), N_("investigation"),
    N_("Check-ins"), N_("Devices"), N_("Complaints"), N_("camera"), N_("storage"),
    N_("Home"), N_("Audit log"), N_("Staff"), N_("API keys"),
    N_("success"), N_("failure"), N_("denied"),
    N_("system_admin"), N_("security_admin"), N_("audit_admin"), N_("safety_agent"),
    N_("investigator"), N_("screening_officer"), N_("privacy_officer"), N_("trainer"),
    N_("supervisor"), N_("merchant"),
    N_("Not authenticated"), N_("Permission denied"), N_("Not found"), N_("Conflict"),
    N_("Invalid input"), N_("Too many requests"),
    N_("Wrong user name or password, or the account is locked."),
    N_("That code did not match. Sign in again."), N_("That code did not match. Try the next one."),
    N_("Account created."), N_("Roles saved."),
    N_("Data catalogue"), N_("Requests"), N_("Retention"), N_("Breaches"),
    N_("access"), N_("correction"), N_("erasure"), N_("awaiting_verification"), N_("verified"), N_("completed"),
    N_("rejected"), N_("open"), N_("contained"), N_("notifying"), N_("closed"),
    N_("delivery"), N_("emergency"), N_("investigation"), N_("screening"), N_("support"), N_("subject_request"),
    N_("breach_response"), N_("privacy_officer"), N_("Live map"),
    N_("Trips"), N_("ended"), N_("online"), N_("offline"), N_("faulty"), N_("tampered"), N_("not_installed"),
    N_("route_deviation"), N_("long_stop"), N_("possible_crash"), N_("early_end"), N_("gps_lost"), N_("speeding"),
    N_("device_offline"), N_("passenger"), N_("driver"), N_("pending"), N_("ok"), N_("help"), N_("unanswered"),
    # retention rules (privacy.retention), shown on the retention page
    N_("food-delivery customers' contact data after the order window"),
    N_('passengers, drivers, couriers and contacts inactive past the trip-data period'),
    N_('trips, their positions, alerts and check-ins past the trip-data period (key shredded)'),
    N_('sent or abandoned outbox messages (they carry contact details)'),
    N_("idempotency keys of trip-event batches (a retry comes within minutes)"),
    # incidents
    N_("SOS queue"), N_("critical"), N_("high"), N_("medium"), N_("sos"), N_("alert"), N_("check_in"),
    N_("created"), N_("notified"), N_("claim_verified"), N_("acknowledge"), N_("start"), N_("resolve"), N_("close"),
    N_("note"),
    N_("escalated"), N_("genuine"), N_("false_alarm"), N_("mistaken"), N_("malicious"), N_("customer"), N_("courier"),
    N_("This link no longer works"), N_("Too many requests"),
    N_("in-car recordings past their period, unless a case about the trip is open"),
    N_("audio"), N_("video"), N_("uploading"), N_("complete"), N_("corrupt"),
    N_("assign"), N_("evidence"),
    N_("complaints and ratings past the trip-data period, unless their author is on hold"),
    N_("orders' contact, address and notes after the order (an anonymous record stays)"),
    # workforce
    N_("Agreement"), N_("Confidentiality agreement not signed"), N_("Access suspended"), N_("Decision about yourself"),
]

# Keys of timeline details, alert evidence and audit details, as people read them.
DETAILS = {
    "distance_m": N_("Distance from the route (m)"), "distance_to_dropoff_m": N_("Distance to the destination (m)"),
    "since": N_("Since"), "stopped_s": N_("Stopped for (s)"), "speed_kmh": N_("Speed (km/h)"),
    "still_s": N_("Still for (s)"), "speed_before_kmh": N_("Speed before (km/h)"), "silent_s": N_("Silent for (s)"),
    "device_id": N_("Device"), "silent": N_("Silent"), "trip": N_("Trip"), "order": N_("Order"),
    "contacts": N_("Contacts told"), "gateway": N_("Police dispatch queued"), "caller_erased": N_("Caller erased"),
    "source": N_("Source"), "alert_kind": N_("Alert"), "answer": N_("Answer"), "role": N_("Role"),
    "outcome": N_("Outcome"), "late_s": N_("Late by (s)"), "to": N_("To"), "via": N_("Via"), "result": N_("Result"),
    "reference": N_("Reference"), "fields": N_("Fields"), "plaintext": N_("Shown in full"), "reason": N_("Reason"),
    "points": N_("Positions"), "format": N_("Format"), "purpose": N_("Purpose"),
    "claimed_trip": N_("Trip named, unverified"), "claimed_order": N_("Order named, unverified"),
    # form fields, named in a form's errors
    "action": N_("Action"), "note": N_("Note"), "assignee": N_("Assign to"), "username": N_("User name"),
    "password": N_("Password"), "display_name": N_("Display name"), "name": N_("Name"), "scopes": N_("Scopes"),
    "roles": N_("Roles"), "code": N_("Code"), "ticket": N_("Sign-in step"), "trip_id": N_("Trip"),
    "incident_id": N_("Case"), "started_at": N_("Started"), "ended_at": N_("Ended"), "detected_at": N_("Detected"),
    "description": N_("Description"), "subject_id": N_("Person"), "decision": N_("Decision"), "next": N_("Return to"),
    # audit details
    "actions": N_("Actions"), "added": N_("Added"), "after": N_("After"), "alert": N_("Alert"),
    "applied": N_("Applied"),
    "before": N_("Before"), "case": N_("Case"), "category": N_("Category"), "check_in": N_("Check-in"),
    "consents": N_("Separate consents"), "contacts_told": N_("Contacts told"), "count": N_("Count"),
    "driver": N_("Driver"), "dry_run": N_("Dry run"),
    "entries": N_("Entries"), "hold": N_("Legal hold"), "kind": N_("Kind"), "notice": N_("Notice version"),
    "notified": N_("Notified"), "reader": N_("Reader"), "recording": N_("Recording"), "request": N_("Request"),
    "rewrapped": N_("Keys re-wrapped"), "serious": N_("Serious"), "session": N_("Session"),
    "shares": N_("Shares"), "subjects": N_("People"), "vehicle": N_("Vehicle"), "verify_by": N_("Verify by"),
    "why": N_("Why"), "trajectory": N_("Trip positions"), "reason_ref": N_("Reason (sealed)"),
    "reason_mac": N_("Reason check code"), "note_ref": N_("Note (sealed)"), "note_mac": N_("Note check code"),
    # screening
    "previous": N_("Previous state"), "dispute": N_("Dispute"), "documents": N_("Documents"),
    "dispute_due_at": N_("Dispute by"), "check": N_("Check"), "score": N_("Match score"), "provider": N_("Provider"),
    "report": N_("Report"), "agency": N_("Agency"), "policy": N_("Policy version"), "reasons": N_("Reasons"),
    "attempts": N_("Attempts"),
    # delivery
    "items": N_("Items"), "courier": N_("Courier"), "method": N_("How"), "exception": N_("Exception"),
    "merchant": N_("Merchant"), "field": N_("Field"), "for": N_("For"),
    "use": N_("Use"), "resolved": N_("Opened by the system"),
    # workforce
    "audience": N_("Audience"), "version": N_("Version"), "sha256": N_("Text hash (SHA-256)"),
    "required": N_("Required"), "offender": N_("Person"), "sanction": N_("Sanction"), "attempt": N_("Attempt"),
    "inspection": N_("Inspection"), "failed": N_("Failed items"),
    # an erasure's footprint (privacy.service.erase_footprint)
    "requests": N_("Requests closed"), "invitations": N_("Invitations voided"), "messages": N_("Messages cancelled"),
    "named_as_contact": N_("Named as someone's contact"), "owners_told": N_("People told their contact left"),
    "categories": N_("Categories"), "record": N_("Deletion record"),
    # a breach's closing report
    "affected": N_("Affected people"), "containment_actions": N_("Containment actions"),
    "authority_report_on_time": N_("Reported in time"), "hours_open": N_("Hours open"),
}
# Messages the console shows through i18n_text or translates from a domain error's detail.
MESSAGES = [
    N_("There is no such role."), N_("There is no such scope."), N_("Method not allowed"), N_("not valid"),
    N_("system, security and audit administration must be held by different people"),
    # complaint categories and states (feedback)
    N_("safety"), N_("conduct"), N_("privacy"), N_("service"), N_("low_rating"), N_("other"), N_("received"),
    N_("assigned"), N_("answered"),
]
VALUES = [
    N_("caller"), N_("system"), N_("subject"), N_("contact"), N_("recorded"), N_("ringing"), N_("failed"),
    N_("record-only"), N_("call"), N_("yes"), N_("no"), N_("active"), N_("check_in"),
    N_("identity_mismatch"),  # a case's timeline: the shift-start selfie was not the screened driver
    N_("discipline"), N_("hr_officer"), N_("staff"), N_("worker"), N_("warning"), N_("fine"), N_("suspension"),
    N_("dismissal"), N_("referral"), N_("retraining"), N_("decided"), N_("overturned"),
    N_("lifted"), N_("justified"), N_("violation"), N_("reviewed"), N_("onboarding"), N_("refresher"),
    N_("optional"), N_("done"), N_("emergency"), N_("confidentiality"), N_("many_people"), N_("after_hours"),
    N_("bulk_export"), N_("unassigned"), N_("gate_override"),
    N_("ineligible_driver"),  # an alert and a case: a trip started by a driver or in a vehicle the gate refuses
    N_("machine"), N_("label"),  # machine use: a label the system filled in for whoever printed it
]


def detail_label(key: str) -> str:
    """A detail's key as a person reads it: its label, else the key's name in a vocabulary (a retention
    rule, a screening finding), else the key."""
    if key in DETAILS:
        return i18n.gettext(DETAILS[key])
    return readable.term(key) or key


# Who acted and what they acted on, in the audit log.
KINDS = {
    "staff": N_("staff"), "subject": N_("person"), "api_key": N_("API key"), "system": N_("system"),
    "cli": N_("command line"), "incident": N_("case"), "breach": N_("breach"), "contact": N_("emergency contact"),
    "tree_head": N_("signed tree head"), "check_in": N_("check-in"), "privacy_subjects": N_("person"),
    "privacy_requests": N_("subject request"), "device": N_("device"), "share": N_("trip share"),
    "live_map": N_("live map"), "notice": N_("privacy notice"), "complaint": N_("complaint"),
    "recording": N_("recording"), "vehicle": N_("vehicle"), "trip": N_("trip"), "session": N_("session"),
    "backup": N_("backup"), "retention_run": N_("retention run"), "safety_contacts": N_("emergency contact"),
    "safety_incidents": N_("case"), "telematics_trips": N_("trip"), "notify_outbox": N_("message"),
    "legal_hold": N_("legal hold"), "data_key": N_("data key"), "feedback_complaints": N_("complaint"),
    "screening_applicants": N_("applicant"), "screening_dispute_documents": N_("dispute document"),
    "delivery_orders": N_("order"), "workforce_agreements": N_("confidentiality agreement"),
    "workforce_courses": N_("course"), "workforce_violations": N_("violation"), "workforce_findings": N_("finding"),
    "workforce_checklists": N_("checklist"),
}


def kind_label(kind: str | None) -> str:
    return i18n.gettext(KINDS[kind]) if kind in KINDS else (kind or "")


TRIP_STATES = {"active": N_("under way"), "ended": N_("trip ended")}


def trip_state(status: str) -> str:
    """A trip's state in trip words (an "active" account is a different thing)."""
    return i18n.gettext(TRIP_STATES[status]) if status in TRIP_STATES else status
