"""The demo, end to end in a subprocess: span tree, per-thread tokens equal to what the LLM server sent,
the redacted secret, the Slack stand-in message; and the demo exporting to a real OTLP receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel._harness._proc import free_port
from agentpress_otel._harness.otlp_sink import OTLPSink

pytestmark = pytest.mark.integration


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["NO_COLOR"] = "1"
    return env


def _run_demo(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    summary = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, "-m", "agentpress_otel", "demo", "--threads", "3", "--json-summary", str(summary), *extra],
        capture_output=True, text=True, env=_env(), timeout=240, check=False,
    )
    assert proc.returncode == 0, f"demo failed\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    return proc, json.loads(summary.read_text())


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, dict[str, Any]]:
    proc, summary = _run_demo(tmp_path_factory.mktemp("demo"))
    return proc.stdout, proc.stderr, summary


def _table_row(stdout: str, thread_id: str) -> list[str]:
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 6 and cells[1] == thread_id[:8]:
            return cells[1:-1]
    raise AssertionError(f"no table row for {thread_id[:8]}")


def test_span_tree_shows_run_llm_calls_tools_and_errors(embedded: tuple[str, str, dict[str, Any]]) -> None:
    out, _, summary = embedded
    assert f"Span tree of thread {summary['shown_thread']}" in out
    for needle in ("invoke_agent suna", "chat gpt-5-mini", "TTFT", "tokens in", "execute_tool web_search",
                   "✗ execute_tool sb_shell", "tool_failure", "rate_limit", "POST /api/thread/{thread_id}/agent/start",
                   "gen_ai.evaluation.result user_feedback=1.0 (thumbs_up)"):
        assert needle in out, needle


def test_per_thread_tokens_equal_what_the_llm_server_sent(embedded: tuple[str, str, dict[str, Any]]) -> None:
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
        assert row[1] == t["scenario"]
        assert (int(row[5]), int(row[6])) == (want_in, want_out)
        assert int(row[4]) == t["llm_calls"]
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


def test_secret_is_redacted_everywhere(embedded: tuple[str, str, dict[str, Any]]) -> None:
    out, err, summary = embedded
    secret = summary["demo_secret"]
    assert secret.startswith("sk-proj-")
    assert secret not in out
    assert secret not in err
    assert secret[8:24] not in out  # not even a fragment
    assert "[REDACTED:openai_key:" in out


def test_slack_stand_in_message_is_shown(embedded: tuple[str, str, dict[str, Any]]) -> None:
    out, _, summary = embedded
    assert "Slack message received by the local stand-in" in out
    assert "agent run failed" in out
    failed = next(t for t in summary["threads"] if t["scenario"] == "fail")
    assert summary["slack_posts"], "no post reached the Slack stand-in"
    assert failed["thread_id"] in json.dumps(summary["slack_posts"])
    assert failed["thread_id"] in out


def test_correlated_logs_carry_ids(embedded: tuple[str, str, dict[str, Any]]) -> None:
    out, _, summary = embedded
    lines = [ln for ln in out.split("\n{") if '"trace_id"' in ln]
    assert lines, "no correlated log lines"
    assert summary["shown_thread"] in out.split("Correlated log lines", 1)[1]


def test_demo_exports_to_an_otlp_endpoint(tmp_path: Path) -> None:
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
    assert "agentpress-thread-explorer?var-thread_id=" + summary["shown_thread"] in proc.stdout.replace("\n", "")


def test_demo_asyncio_worker_and_dead_endpoint_fallback(tmp_path: Path) -> None:
    # One run covers two fallbacks: the asyncio worker, and an endpoint where nothing listens (the demo
    # says so and shows the telemetry in the terminal instead of exporting into nothing).
    dead = f"http://127.0.0.1:{free_port()}"
    proc, summary = _run_demo(tmp_path, "--worker", "asyncio", "--endpoint", dead)
    assert "worker: asyncio" in proc.stdout
    assert "invoke_agent suna" in proc.stdout
    assert "nothing accepts connections" in proc.stdout
    assert summary["mode"] == "embedded"
    assert {t["status"] for t in summary["threads"]} == {"completed", "failed"}
    assert "Traceback" not in proc.stderr


def test_demo_worker_is_dramatiq_by_default(embedded: tuple[str, str, dict[str, Any]]) -> None:
    out, _, _ = embedded
    assert "worker: dramatiq" in out
    assert "process run_agent_background" in out
