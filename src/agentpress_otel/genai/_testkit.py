"""Old import path of the test kit, now :mod:`agentpress_otel.testing` (``Kit``, ``make_kit``).

Kept only until branches written against it are merged (issue 20); new code imports ``agentpress_otel.testing``.
"""

from agentpress_otel.testing import Kit, make_kit

__all__ = ["Kit", "make_kit"]
