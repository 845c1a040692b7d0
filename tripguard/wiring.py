"""Start-up wiring: every package's models on `core.db.Base.metadata`, and what each package registers with
the layers below it (retention rules, the access gate's clearance checks, a restore's steps, the monitor's
threshold names). The lower layers never import the higher: they keep registries, filled here.

Called wherever TripGuard starts: `create_app` (the embedded app and every API replica), the `tripguard`
command's root callback (every CLI command, so the scale-out workers and the scheduler too), and
`alembic`'s env through `tripguard.models`'s metadata. Calling it again changes nothing.
"""

from __future__ import annotations

from tripguard import models  # noqa: F401  # every table on the metadata (backups, the privacy catalogue)
from tripguard.delivery import wiring as delivery
from tripguard.feedback import desk
from tripguard.feedback import service as complaints
from tripguard.feedback import wiring as feedback
from tripguard.notify import wiring as notify
from tripguard.privacy import wiring as privacy
from tripguard.regulator import wiring as regulator
from tripguard.safety import recordings
from tripguard.safety import service as cases
from tripguard.safety import wiring as safety
from tripguard.screening import gate, workers
from tripguard.screening import wiring as screening
from tripguard.telematics import cases as trip_cases
from tripguard.telematics import wiring as telematics
from tripguard.workforce import eligibility, supervision
from tripguard.workforce import wiring as workforce

PACKAGES = (notify, privacy, telematics, safety, screening, delivery, workforce, feedback, regulator)


def wire() -> None:
    for package in PACKAGES:
        package.register()
    # Between two business domains: the lower never imports the higher (.importlinter's layers), which
    # registers here what the lower asks of it.
    # - safety: a trip complained about keeps its cabin recordings longer;
    recordings.LONGER_HOLDS["complaint"] = complaints.complained_about
    # - workforce's supervision: a support agent holding a complaint about a record has a reason to read it;
    supervision.register_complaint_holder(desk.is_assigned)
    # - telematics' routes: a check-in answered "help" opens a case; evidence opened from a case is on its timeline;
    trip_cases.register(open_for_help=cases.case_for_help, note_evidence=cases.evidence_for_case)
    # - screening: a shift-start face that does not match opens a case; the dispatch gate asks workforce's
    #   blockers (training, the agreement, discipline).
    workers.register_mismatch_case(cases.open_for_identity_mismatch)
    gate.register_blockers(eligibility.workforce_blockers, reads=eligibility.READS)
