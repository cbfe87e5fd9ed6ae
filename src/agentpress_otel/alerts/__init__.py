"""Alerting from inside the app: :mod:`agentpress_otel.alerts.slack` (errors with stack traces to Slack).

Metric-based alerts live in ``stack/prometheus/rules`` and go through Alertmanager; see docs/alerts.md.
"""
