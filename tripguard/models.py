"""Every domain's ORM models, imported so that the metadata is complete (Alembic, tests)."""

from tripguard.audit import models as audit_models  # noqa: F401
from tripguard.core import models as core_models  # noqa: F401
from tripguard.core.db import Base
from tripguard.delivery import models as delivery_models  # noqa: F401
from tripguard.feedback import models as feedback_models  # noqa: F401
from tripguard.notify import models as notify_models  # noqa: F401
from tripguard.privacy import models as privacy_models  # noqa: F401
from tripguard.regulator import models as regulator_models  # noqa: F401
from tripguard.reporting import models as reporting_models  # noqa: F401
from tripguard.safety import models as safety_models  # noqa: F401
from tripguard.screening import models as screening_models  # noqa: F401
from tripguard.security import models as security_models  # noqa: F401
from tripguard.telematics import models as telematics_models  # noqa: F401
from tripguard.vault import models as vault_models  # noqa: F401
from tripguard.workforce import models as workforce_models  # noqa: F401

metadata = Base.metadata
