"""monitoring's models, one module per part (presence, telemetry, alerts, summary)."""

from monitoring.models.alerts import *  # noqa: F403
from monitoring.models.presence import *  # noqa: F403
from monitoring.models.summary import *  # noqa: F403
from monitoring.models.telemetry import *  # noqa: F403
