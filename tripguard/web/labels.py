"""Strings the templates translate by value (navigation, roles, outcomes): listed so Babel extracts them."""

from __future__ import annotations

from tripguard.core import i18n


def N_(message: str) -> str:
    return message


LABELS = [
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
    N_("food-delivery customers' contact data after the order window (seed 004 二(四)1)"),
    N_('passengers, drivers, couriers and contacts inactive past the trip-data period'),
    N_('trips, their positions, alerts and check-ins past the trip-data period (key shredded)'),
    N_('sent or abandoned outbox messages (they carry contact details)'),
    N_("idempotency keys of trip-event batches (a retry comes within minutes)"),
    # incidents
    N_("SOS queue"), N_("critical"), N_("high"), N_("medium"), N_("sos"), N_("alert"), N_("check_in"),
    N_("created"), N_("notified"), N_("acknowledge"), N_("start"), N_("resolve"), N_("close"), N_("note"),
    N_("escalated"), N_("genuine"), N_("false_alarm"), N_("mistaken"), N_("malicious"), N_("customer"), N_("courier"),
    N_("This link no longer works"), N_("Too many requests"),
    N_("in-car recordings past their period, unless a case about the trip is open"),
    N_("audio"), N_("video"), N_("uploading"), N_("complete"), N_("corrupt"),
    N_("assign"), N_("evidence"),
    N_("complaints and ratings past the trip-data period, unless their author is on hold"),
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
}
VALUES = [
    N_("caller"), N_("system"), N_("subject"), N_("contact"), N_("recorded"), N_("ringing"), N_("failed"),
    N_("record-only"), N_("call"), N_("yes"), N_("no"), N_("active"), N_("check_in"),
]


def detail_label(key: str) -> str:
    return i18n.gettext(DETAILS.get(key, key))
