"""Start, health-check and stop the real components (Collector, Prometheus, ...).

One implementation used by the test suite, ``agentpress-otel stack`` and the
benchmarks, so that all three run the same binaries with the same configs.
Private: not part of the public API.
"""
