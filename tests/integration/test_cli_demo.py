"""The demo, end to end in a subprocess: span tree, per-thread tokens equal to what the LLM server sent,
the redacted secret, the Slack stand-in message; and the demo exporting to a real OTLP receiver."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel._harness._proc import free_port
from harness.otlp_sink import OTLPSink

pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["NO_COLOR"] = "1"
    return env


def _run_demo(tmp_path: Path, *extra: str, threads: int = 3, env: dict[str, str] | None = None,
              expect: int = 0) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "agentpress_otel", "demo", "--threads", str(threads), "--json-summary", str(summary),
         *extra],
        capture_output=True, text=True, env={**_env(), **(env or {})}, timeout=240, check=False,
    )
    assert proc.returncode == expect, (f"demo exited {proc.returncode}, wanted {expect}\n"
                                       f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}")
    return proc, (json.loads(summary.read_text()) if summary.exists() else {})


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, Any]]:
    proc, summary = _run_demo(tmp_path_factory.mktemp("demo"))
    return proc.stdout, proc.stderr, summary


def _table_row(stdout: str, thread_id: str) -> dict[str, str]:
    """The per-thread table row of ``thread_id``, keyed by column header."""
    header: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("┃"):
            header = [c.strip() for c in line.split("┃")[1:-1]]
        cells = [c.strip() for c in line.split("│")]
        if header and len(cells) > 6 and cells[1] == thread_id[:8]:
            return dict(zip(header, cells[1:-1], strict=True))
    raise AssertionError(f"no table row for {thread_id[:8]}")


def _shown(summary: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in summary["threads"] if t["thread_id"] == summary["shown_thread"])


def test_span_tree_shows_run_llm_calls_tools_and_errors(embedded: tuple[str, str, dict[str, Any]]) -> None:
    """The demo's span tree shows the agent run, LLM calls, tools and errors."""
    out, _, summary = embedded
    assert f"Span tree of thread {summary['shown_thread']}" in out
    for needle in ("invoke_agent suna", "chat gpt-5-mini", "TTFT", "tokens in", "execute_tool web_search",
                   "✗ execute_tool sb_shell", "tool_failure", "rate_limit", "POST /api/thread/{thread_id}/agent/start",
                   "gen_ai.evaluation.result user_feedback=1.0 (thumbs_up)"):
        assert needle in out, needle


def test_per_thread_tokens_equal_what_the_llm_server_sent(embedded: tuple[str, str, dict[str, Any]]) -> None:
    """The demo's per-thread token counts equal what the local LLM server sent."""
    out, _, summary = embedded
    served = {s["response_id"]: s for s in summary["llm_server"] if s["status"] == 200}
    assert served, "the local LLM server answered nothing"
    total_in = total_out = 0
    for t in summary["threads"]:
        ids = t["response_ids"]
        assert ids, t
        assert set(ids) <= set(served)
        want_in = sum(served[r]["prompt_tokens"] for r in ids)
        want_out = sum(served[r]["completion_tokens"] for r in ids)
        assert (t["input_tokens"], t["output_tokens"]) == (want_in, want_out)
        row = _table_row(out, t["thread_id"])
        assert row["run"] == ("✓ " if t["status"] == "completed" else "✗ ") + t["scenario"]
        assert (int(row["in"]), int(row["out"])) == (want_in, want_out)
        assert int(row["LLM"]) == t["llm_calls"]
        total_in += want_in
        total_out += want_out
    # Every successful answer the server sent is accounted for in exactly one thread.
    assert total_in == sum(s["prompt_tokens"] for s in served.values())
    assert total_out == sum(s["completion_tokens"] for s in served.values())
    # The cases people debug all happened.
    by = {t["scenario"]: t for t in summary["threads"]}
    assert by["full"]["status"] == "completed" and by["full"]["llm_errors"] == 1 and by["full"]["tool_errors"] == 1
    assert by["fail"]["status"] == "failed" and by["fail"]["run_error"]
    assert any(s["status"] == 429 for s in summary["llm_server"])
    assert by["full"]["feedback"]["linked_to_llm_call"] is True


def test_slow_llm_call_is_in_the_shown_thread(embedded: tuple[str, str, dict[str, Any]]) -> None:
    """The slow LLM call is in the shown thread, measured on exported spans and visible in its tree."""
    out, _, summary = embedded
    slow_ms = summary["shown_slow_delay_s"] * 1000
    assert slow_ms >= 500, summary["shown_slow_delay_s"]
    # Measured on the exported chat spans of the shown thread...
    assert max(_shown(summary)["chat_durations_ms"]) >= slow_ms
    # ...and visible in its span tree.
    tree = out.split("Span tree of thread", 1)[1].split("Per-thread LLM usage", 1)[0]
    shown = [float(v) * (1000 if unit == "s" else 1)
             for v, unit in re.findall(r"chat gpt-5-mini\s+(\d+(?:\.\d+)?) (ms|s)\b", tree)]
    assert shown and max(shown) >= slow_ms, shown


def test_secret_is_redacted_everywhere(embedded: tuple[str, str, dict[str, Any]]) -> None:
    """The demo's secret appears nowhere in its output, not even in part, only as a redaction tag."""
    out, err, summary = embedded
    secret = summary["demo_secret"]
    assert secret.startswith("sk-proj-")
    assert secret not in out
    assert secret not in err
    assert secret[8:24] not in out  # not even a fragment
    assert "[REDACTED:openai_key:" in out
    # The demo's own statement is the result of a check on everything exported.
    assert summary["redaction_ok"] is True
    assert "Redaction: ✓" in out


def test_slack_stand_in_message_is_shown(embedded: tuple[str, str, dict[str, Any]]) -> None:
    """The demo shows the message its Slack stand-in received for the failed thread."""
    out, _, summary = embedded
    assert "Slack message received by the local stand-in" in out
    assert "agent run failed" in out
    failed = next(t for t in summary["threads"] if t["scenario"] == "fail")
    assert summary["slack_posts"], "no post reached the Slack stand-in"
    assert failed["thread_id"] in json.dumps(summary["slack_posts"])
    assert failed["thread_id"] in out


def test_correlated_logs_carry_ids(embedded: tuple[str, str, dict[str, Any]]) -> None:
    """The demo's correlated log lines carry the shown thread's ids, trace and span."""
    out, _, summary = embedded
    section = out.split("Correlated log lines", 1)[1].split("Slack message", 1)[0].replace("\n", "")
    shown = _shown(summary)
    logs = summary["shown_logs"]
    assert len(logs) >= 3, logs
    run_events = ("starting agent run", "rate limited", "tool failed", "agent run completed", "agent run failed")
    for rec in logs:
        assert rec["thread_id"] == shown["thread_id"], rec
        assert rec["trace_id"] in section and rec["span_id"] in section, rec
        if str(rec["event"]).startswith(run_events):
            # The agent run's log lines are on the shown thread's trace (the one in the span tree).
            assert rec["trace_id"] == shown["trace_id"], (rec, shown["trace_id"])
            assert rec["agent_run_id"] == shown["agent_run_id"], rec
    assert sum(str(r["event"]).startswith(run_events) for r in logs) >= 3


def test_demo_exports_to_an_otlp_endpoint(tmp_path: Path) -> None:
    """With an endpoint, the demo exports spans, logs and metrics over OTLP, redacted."""
    with OTLPSink() as sink:
        proc, summary = _run_demo(tmp_path, "--endpoint", sink.grpc_endpoint)
        assert summary["mode"] == "export"
        names = {s.name for s in sink.spans()}
        assert {"invoke_agent suna", "chat gpt-5-mini", "execute_tool web_search"} <= names
        assert sink.log_records()
        assert "gen_ai.client.token.usage" in sink.metric_names()
        raw = summary["demo_secret"].encode()
        for s in sink.spans():
            assert raw not in s.SerializeToString()
        records = sink.log_records()
        assert any(b"[REDACTED:openai_key:" in r.SerializeToString() for r in records)
        for r in records:
            assert raw not in r.SerializeToString()
    assert summary["export_ok"] is True and summary["export_lost"] == {}
    assert "everything was exported to" in proc.stdout
    assert "agentpress-thread-explorer?var-thread_id=" + summary["shown_thread"] in proc.stdout.replace("\n", "")
    # No Grafana here: the links come with a note instead of pretending.
    assert "these links need the compose stack's Grafana" in proc.stdout.replace("\n", " ")


def test_demo_refuses_a_receiver_speaking_the_other_protocol(tmp_path: Path) -> None:
    """The demo stops with a clear message when the receiver speaks the other OTLP protocol."""
    # OTEL_EXPORTER_OTLP_ENDPOINT at the OTLP/HTTP port of a receiver, no protocol configured and no 4318 in
    # the URL: the exporters speak gRPC to an HTTP server. The pre-flight check says so; nothing runs.
    with OTLPSink() as sink:
        proc, _ = _run_demo(tmp_path, env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint,
                                           "AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": "2"}, expect=1)
        assert not sink.spans()
    out = proc.stdout.replace("\n", " ")
    assert "does not accept OTLP over grpc" in out
    assert "did not accept a test span" in out
    assert "Traceback" not in proc.stderr
    assert "Span tree" not in out


def test_demo_fails_when_exported_telemetry_is_lost(tmp_path: Path) -> None:
    """The demo exits 1 and says what was lost when exported telemetry is lost."""
    # The receiver passes the pre-flight check, then rejects everything: the demo must not report success.
    summary = tmp_path / "summary.json"
    with OTLPSink() as sink:
        demo = subprocess.Popen(
            [sys.executable, "-m", "agentpress_otel", "demo", "--threads", "1", "--json-summary", str(summary),
             "--endpoint", sink.http_endpoint, "--protocol", "http/protobuf"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**_env(), "AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": "1"},
        )
        try:
            deadline = time.monotonic() + 60
            while not (sink.spans() and sink.log_records() and "agentpress.doctor.check" in sink.metric_names()):
                assert demo.poll() is None and time.monotonic() < deadline, "the pre-flight check never arrived"
                time.sleep(0.02)
            sink.mode = "fail"
            out, err = demo.communicate(timeout=240)
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
    assert demo.returncode == 1, out[-3000:] + err[-3000:]
    data = json.loads(summary.read_text())
    assert data["export_ok"] is False
    assert data["export_lost"].get("spans", 0) > 0, data["export_lost"]
    flat = out.replace("\n", " ")
    assert f"export to {sink.http_endpoint} failed" in flat
    assert "spans" in flat.split("failed:", 1)[1] and "were lost" in flat
    assert "everything was exported" not in flat


def test_invalid_configuration_is_one_clear_line(tmp_path: Path) -> None:
    """An invalid configuration makes the demo print one clear line, without a traceback."""
    proc, _ = _run_demo(tmp_path, env={"AGENTPRESS_OTEL_SAMPLE_RATIO": "2"}, expect=2)
    assert proc.stdout.startswith("✗ invalid configuration: AGENTPRESS_OTEL_SAMPLE_RATIO='2'")
    assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout
    assert proc.stderr == ""  # no RuntimeWarning or traceback on top
    assert "Traceback" not in proc.stdout + proc.stderr


def test_one_thread_asyncio_worker_dead_endpoint(tmp_path: Path) -> None:
    """With one thread, the asyncio worker and a dead endpoint, the demo still runs embedded and says why."""
    # One run covers three things: --threads 1 still shows every workload case (429, failing tool, slow call,
    # failed run with its Slack alert, redaction, user score), the asyncio worker, and an endpoint where
    # nothing listens (the demo says so and shows the telemetry in the terminal instead).
    dead = f"http://127.0.0.1:{free_port()}"
    proc, summary = _run_demo(tmp_path, "--worker", "asyncio", "--endpoint", dead, threads=1)
    out = proc.stdout
    assert "worker: asyncio" in out
    assert "nothing accepts connections" in out
    assert summary["mode"] == "embedded"
    assert summary["skipped_cases"] == []
    (t,) = summary["threads"]
    assert t["status"] == "failed" and t["run_error"]
    assert t["tool_errors"] == 1 and t["llm_errors"] >= 2
    assert any(s["status"] == 429 for s in summary["llm_server"])
    assert max(t["chat_durations_ms"]) >= summary["shown_slow_delay_s"] * 1000
    assert t["feedback"]["linked_to_llm_call"] is True
    assert t["thread_id"] in json.dumps(summary["slack_posts"])
    assert "Slack message received by the local stand-in" in out
    assert "✗ execute_tool sb_shell" in out and "user_feedback=0.0 (thumbs_down)" in out
    assert summary["redaction_ok"] is True and summary["demo_secret"] not in out
    assert "Traceback" not in proc.stderr


def test_demo_worker_is_dramatiq_by_default(embedded: tuple[str, str, dict[str, Any]]) -> None:
    """The demo's worker is Dramatiq by default, with its consumer span."""
    out, _, _ = embedded
    assert "worker: dramatiq" in out
    assert "process default" in out  # the Dramatiq consumer span ({operation} {queue})
