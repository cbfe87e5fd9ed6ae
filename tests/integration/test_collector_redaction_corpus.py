"""The shipped gateway config's redaction on the real Collector, over the whole redaction corpus
(tests/data/redaction_corpus.jsonl): every secret the value patterns from before issue 17 masked is still masked
after the cost work (patterns split or merged for Go's regexp), and clean text arrives unchanged.

The reference is the pre-issue-17 pattern list, applied with Python's `re` (ASCII classes, as Go's RE2 has).
Each corpus text goes in a free-text attribute (`gen_ai.output.messages`, never in `ignored_keys`) of its own
trace, through the Collector to a Tempo stand-in.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from agentpress_otel._harness._proc import wait_until
from agentpress_otel._harness.collector import start_collector, start_standin
from conftest import need
from harness import REPO_ROOT
from harness.null_http import NullHTTP

CORPUS = REPO_ROOT / "tests" / "data" / "redaction_corpus.jsonl"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
KEY = "gen_ai.output.messages"

# collector-config/config.yaml's blocked_values before issue 17 (git 9e613f7^): the masking users had.
REFERENCE = [
    r"sk-[A-Za-z0-9_-]{20,}",
    r"(?i)bearer\s+[A-Za-z0-9._~+/-]{16,}=*",
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"AKIA[0-9A-Z]{16}",
    r"gh[pousr]_[A-Za-z0-9]{36,}",
    r"xox[abprs]-[A-Za-z0-9-]{10,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"\b4[0-9]{12}(?:[0-9]{3})?\b",
    r"\b5[1-5][0-9]{14}\b",
]


def _reference(text: str) -> str:
    for p in REFERENCE:
        text = re.sub(p, "****", text, flags=re.ASCII)
    return text


def _request(entries: list[dict[str, Any]]) -> bytes:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="corpus-test")))
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for e in entries:
        s = ss.spans.add()
        s.trace_id = int(e["id"] + 1).to_bytes(16, "big")
        s.span_id = int(e["id"] + 1).to_bytes(8, "big")
        s.name = f"corpus-{e['id']}"
        s.start_time_unix_nano, s.end_time_unix_nano = now, now + 1_000_000
        s.attributes.append(KeyValue(key=KEY, value=AnyValue(string_value=e["text"])))
    return bytes(req.SerializeToString())


def test_shipped_redaction_masks_every_corpus_secret_the_old_patterns_masked() -> None:
    """Secrets the pre-issue-17 value patterns masked are masked by the shipped config; clean text is untouched."""
    import grpc

    entries = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    null = ThreadingHTTPServer(("127.0.0.1", 0), NullHTTP)
    threading.Thread(target=null.serve_forever, daemon=True).start()
    null_url = f"http://127.0.0.1:{null.server_address[1]}"
    tempo = need(lambda: start_standin("traces"))
    try:
        col = need(lambda: start_collector(
            traces_endpoint=tempo.endpoint, logs_endpoint=null_url + "/otlp",
            remote_write_url=null_url + "/api/v1/write",
            env={"OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100", "OTELCOL_TAIL_DECISION_WAIT": "1s",
                 "OTELCOL_BATCH_FLUSH_TIMEOUT": "200ms"}))
        try:
            with grpc.insecure_channel(f"127.0.0.1:{col.grpc_port}") as ch:
                ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)(
                    _request(entries), timeout=30)
            wait_until(lambda: len({s.name for s in tempo.spans()}) >= len(entries), timeout=60, interval=0.25,
                       what="every corpus span at the Tempo stand-in")
        finally:
            col.stop()
    finally:
        tempo.stop()
        null.shutdown()
    got = {s.name: str(s.attributes.get(KEY, "")) for s in tempo.spans()}
    leaked, altered, masked = [], [], 0
    for e in entries:
        out, ref = got[f"corpus-{e['id']}"], _reference(e["text"])
        for secret in e["secrets"]:
            if secret not in ref:  # the old patterns masked it
                masked += 1
                if secret in out:
                    leaked.append((e["id"], e["kind"], secret[:12]))
        if ref == e["text"] and out != e["text"]:
            altered.append((e["id"], e["kind"], e["text"][:60], out[:60]))
    print(f"corpus through the Collector: {len(entries)} texts, {masked} secrets masked by the reference, "
          f"{len(leaked)} leaked, {len(altered)} texts the reference left alone but the shipped config changed")
    assert masked >= 200, masked  # the reference covers most kinds: the test is not vacuous
    assert not leaked, leaked[:10]
    assert not altered, altered[:10]
