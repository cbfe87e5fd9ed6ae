"""``python -m agentpress_otel demo|doctor|stack`` (same as the ``agentpress-otel`` command)."""

from agentpress_otel.cli import main

raise SystemExit(main())
