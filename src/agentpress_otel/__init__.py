"""agentpress-otel: OpenTelemetry observability for AI-agent backends, in one line.

Example::

    import agentpress_otel
    from fastapi import FastAPI

    app = FastAPI()
    agentpress_otel.instrument(app, service_name="agentpress-api")
"""

from __future__ import annotations

from agentpress_otel._config import Config, ConfigError
from agentpress_otel._setup import Telemetry, current, instrument
from agentpress_otel.integrations.fastapi import PROPAGATION_HEADERS

__version__ = "0.1.0"

__all__ = [
    "PROPAGATION_HEADERS",
    "Config",
    "ConfigError",
    "Telemetry",
    "__version__",
    "current",
    "instrument",
]
