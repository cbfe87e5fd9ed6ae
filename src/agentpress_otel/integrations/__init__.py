"""One module per instrumented library, each an :class:`Integration`; :mod:`._registry` loads them lazily.

Example::

    from agentpress_otel.integrations import Skip, load

    try:
        load("slack").instrument(telemetry)
    except Skip as why:
        print("slack alerts not enabled:", why)
"""

from agentpress_otel.integrations._registry import Integration, Skip, load

__all__ = ["Integration", "Skip", "load"]
