"""Secrets put where only ids or labels were expected never leave the process (real process, real receiver).

* Metric labels: a GitHub token and an e-mail in counter attributes are redacted like span attributes before
  they reach the OTLP receiver (they would become Prometheus labels verbatim and live as long as the series).
* Correlation ids: an ``sk-`` API key passed as a thread id is redacted in the JSON stdout line and in the
  OTLP log record, not only in span attributes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from agentpress_otel._harness._proc import wait_until
from harness.otlp_sink import OTLPSink, attrs_to_dict

pytestmark = pytest.mark.integration

GHP = "ghp_" + "A1b2C3d4" * 5
SK = "sk-proj-" + "abcdefghij" * 4
EMAIL = "bob.smith@example.com"

_APP = f"""
import logging
from opentelemetry import metrics
import agentpress_otel
from agentpress_otel import thread_context
tel = agentpress_otel.instrument(service_name="redact-metrics", integrations=["logging"], log_json=True)
metrics.get_meter("app").create_counter("app.calls").add(1, {{"token": "{GHP}", "user": "{EMAIL}", "route": "/ok"}})
with thread_context(thread_id="{SK}"):
    logging.getLogger("app").warning("thread started")
assert tel.force_flush(timeout_s=10)
"""


def test_metric_labels_and_ids_are_redacted() -> None:
    """Secrets in metric labels and ids are redacted before export, ordinary labels kept."""
    with OTLPSink() as sink:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
               "OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint}
        res = subprocess.run([sys.executable, "-c", _APP], capture_output=True, text=True, timeout=60, env=env)
        assert res.returncode == 0, res.stderr[-2000:]

        def labels() -> list[dict[str, object]]:
            return [attrs_to_dict(p.attributes) for m in sink.iter_metrics() if m.name == "app.calls"
                    for p in m.sum.data_points]

        wait_until(lambda: bool(labels()), timeout=10, what="the counter")
        for point in labels():  # one per export (the flush, then the shutdown's final collection)
            assert point["route"] == "/ok"  # an ordinary label is kept
            assert GHP not in str(point) and EMAIL not in str(point), point
            assert str(point["token"]).startswith("[REDACTED") and str(point["user"]).startswith("[REDACTED"), point

        wait_until(lambda: bool(sink.log_records()), timeout=10, what="the log record")
        recs = [r for r in sink.log_records() if r.body.string_value == "thread started"]
        assert len(recs) == 1
        assert SK not in str(attrs_to_dict(recs[0].attributes)), attrs_to_dict(recs[0].attributes)
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    (doc,) = [d for d in lines if d.get("message") == "thread started"]
    assert SK not in json.dumps(doc) and str(doc["thread_id"]).startswith("[REDACTED"), doc
