"""One poison value never costs its neighbours: a batch holding one item of each poison kind still
delivers every other item, and the poison items themselves, to a real OTLP receiver.

Poison: a lone surrogate (valid in a Python ``str``, invalid UTF-8, so protobuf rejects it) in a span
name, an event name, a tracer (scope) name, a status description, a log message, a logger (scope) name
and a metric description; separately, in the resource. (A bad attribute value, metric label or resource
attribute, and an integer beyond 64 bits, are dropped by the SDK's encoder itself, attribute by
attribute: checked too.) Redaction is off, as it would otherwise clean some of these strings first.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from agentpress_otel._harness._proc import wait_until
from harness.otlp_sink import OTLPSink, attrs_to_dict

pytestmark = pytest.mark.integration

GOOD = 100
BAD = "bad\ud800x"  # lone high surrogate
FIXED = "bad\ufffdx"

_APP = r"""
import logging, sys
from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode
import agentpress_otel

BAD = "bad\ud800x"
res = {"poison.attr": BAD} if sys.argv[1] == "resource" else {}
tel = agentpress_otel.instrument(service_name="poison", integrations=["logging"], redact=False,
                                 resource_attributes=res)
tracer = trace.get_tracer("poison-app")
log = logging.getLogger("poison-app")
good_counter = metrics.get_meter("poison-app").create_counter("poison.good")
for i in range(100):
    with tracer.start_as_current_span("good") as s:
        s.set_attribute("i", i)
    log.warning("good %d", i)
    good_counter.add(1, {"kind": "good"})
with tracer.start_as_current_span(BAD):  # span name
    pass
with tracer.start_as_current_span("poison.event") as s:
    s.add_event(BAD)
with trace.get_tracer(BAD).start_as_current_span("poison.scope"):
    pass
with tracer.start_as_current_span("poison.status") as s:
    s.set_status(Status(StatusCode.ERROR, BAD))
with tracer.start_as_current_span("poison.value") as s:
    s.set_attribute("v", BAD)
with tracer.start_as_current_span("poison.bigint") as s:
    s.set_attribute("big", 2**70)
log.warning(BAD)
logging.getLogger(BAD).warning("poison logger")
metrics.get_meter("poison-app").create_counter("poison.bad", description=BAD).add(1, {"kind": BAD})
assert tel.force_flush(timeout_s=20)
print("done", flush=True)
"""


@pytest.mark.parametrize("where", ["items", "resource"])
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_one_poison_item_of_each_kind_costs_no_neighbour(protocol: str, where: str) -> None:
    """One poison item of each kind costs none of the good items in its batch, and arrives wire-safe."""
    with OTLPSink() as sink:
        env = {**os.environ, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
               "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint,
               # one batch per signal: the poison items travel with the good ones
               "OTEL_BSP_SCHEDULE_DELAY": "30000", "OTEL_BLRP_SCHEDULE_DELAY": "30000",
               "AGENTPRESS_OTEL_METRIC_INTERVAL_S": "60", "AGENTPRESS_OTEL_LOG_JSON": "false"}
        res = subprocess.run([sys.executable, "-c", _APP, where], capture_output=True, text=True, timeout=120,
                             env=env)
        assert res.returncode == 0 and "done" in res.stdout, res.stderr[-3000:]

        def spans() -> dict[str, list[dict[str, object]]]:
            out: dict[str, list[dict[str, object]]] = {}
            with sink.lock:
                reqs = list(sink.received.traces)
            for r in reqs:
                for rs in r.resource_spans:
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            out.setdefault(s.name, []).append({
                                "attrs": attrs_to_dict(s.attributes), "scope": ss.scope.name,
                                "events": [e.name for e in s.events], "status": s.status.message,
                                "resource": attrs_to_dict(rs.resource.attributes)})
            return out

        wait_until(lambda: len(spans().get("good", [])) >= GOOD, timeout=10, what="the good spans")
        got = spans()
        assert sorted(int(str(s["attrs"]["i"])) for s in got["good"]) == list(range(GOOD))
        # ...and every poison span, as a wire-safe copy (U+FFFD in place of the lone surrogate)
        assert FIXED in got, sorted(got)
        assert got["poison.event"][0]["events"] == [FIXED]
        assert got["poison.scope"][0]["scope"] == FIXED
        assert got["poison.status"][0]["status"] == FIXED
        # The SDK's encoder drops a bad attribute value itself (and logs it); the span still arrives.
        assert got["poison.value"][0]["attrs"].get("v") in (None, FIXED)
        assert got["poison.bigint"][0]["attrs"].get("big") in (None, str(2**70))
        if where == "resource":
            assert all(s["resource"].get("poison.attr") in (None, FIXED) for v in got.values() for s in v)

        bodies = [lr.body.string_value for lr in sink.log_records()]
        assert sorted(int(b.split()[1]) for b in bodies if b.startswith("good ")) == list(range(GOOD))
        assert FIXED in bodies and "poison logger" in bodies, bodies[-5:]
        points = {(m.name, m.description, attrs_to_dict(p.attributes).get("kind")): int(p.as_int)
                  for m in sink.iter_metrics() if m.name.startswith("poison.") for p in m.sum.data_points}
        # a bad label value is dropped by the SDK's encoder itself; a bad description fails the whole export
        assert points in ({("poison.good", "", "good"): GOOD, ("poison.bad", FIXED, None): 1},
                          {("poison.good", "", "good"): GOOD, ("poison.bad", FIXED, FIXED): 1}), points
