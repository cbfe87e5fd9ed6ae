"""Pure pieces of the CLI: argument parsing, version rules, percentiles, Slack text, Grafana links."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agentpress_otel._config import load_config
from agentpress_otel.cli import build_parser, stack
from agentpress_otel.cli.demo_plan import (
    CASES,
    ExportOutcome,
    ThreadPlan,
    ThreadStats,
    _skipped_cases,
    make_secret,
    percentile,
    plan_threads,
)
from agentpress_otel.cli.demo_render import _cost, grafana_links, slack_text, thread_table
from agentpress_otel.cli.doctor import (
    GUESSED_SOURCE,
    _Quiet,
    _thread_name,
    config_rows,
    guess_protocol,
    load_effective_config,
    version_findings,
)


def test_parser_has_the_three_commands() -> None:
    """The CLI parser knows ``demo`` (with its options), ``doctor`` and ``stack``."""
    ap = build_parser()
    a = ap.parse_args(["demo", "--threads", "5", "--seed", "3", "--endpoint", "http://x:4317"])
    assert (a.command, a.threads, a.seed, a.endpoint) == ("demo", 5, 3, "http://x:4317")
    assert ap.parse_args(["doctor"]).command == "doctor"
    assert ap.parse_args(["stack", "status"]).action == "status"


def test_coherent_versions_pass() -> None:
    """doctor reports no failure for a coherent set of OpenTelemetry package versions."""
    f = version_findings({"opentelemetry-sdk": "1.45.2", "opentelemetry-api": "1.45.2",
                          "opentelemetry-instrumentation-fastapi": "0.66b2"})
    assert not [x for x in f if x.level == "fail" and x.what in ("opentelemetry-api",
                                                                  "opentelemetry-instrumentation-fastapi")]


def test_mismatched_versions_fail() -> None:
    """doctor fails mismatched OpenTelemetry versions and names the version each package needs."""
    f = version_findings({"opentelemetry-sdk": "1.45.2", "opentelemetry-api": "1.44.0",
                          "opentelemetry-instrumentation-fastapi": "0.60b1"})
    bad = {x.what: x.detail for x in f if x.level == "fail"}
    assert "opentelemetry-api" in bad
    assert "1.39.x" in bad["opentelemetry-instrumentation-fastapi"]
    assert "0.66bX" in bad["opentelemetry-instrumentation-fastapi"]


def test_percentile_nearest_rank() -> None:
    """``percentile`` uses the nearest-rank method and returns None for no data."""
    assert percentile([], 50) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_plans_are_deterministic_and_cover_the_cases() -> None:
    """The demo's thread plans are the same for the same seed and include the secret-carrying thread."""
    a = plan_threads(4, 7, make_secret(7))
    b = plan_threads(4, 7, make_secret(7))
    assert [p.thread_id for p in a] == [p.thread_id for p in b]
    assert [p.scenario for p in a] == ["full", "ok", "fail", "full"]
    assert make_secret(7) in a[0].prompt


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_every_case_is_covered_whatever_the_thread_count(n: int) -> None:
    """Every demo case is planned whatever the thread count, the secret-carrying thread included."""
    plans = plan_threads(n, 7, make_secret(7))
    assert len(plans) == n
    assert _skipped_cases(plans) == []
    # The secret-carrying thread (the one shown) is always planned.
    assert any(make_secret(7) in p.prompt for p in plans)


def test_skipped_cases_are_named() -> None:
    """The demo names the cases a plan leaves out."""
    assert _skipped_cases([ThreadPlan("t", "ok", "m", "p")]) == list(CASES)
    assert _skipped_cases([ThreadPlan("t", "full", "m", "p")]) == ["failed run (Slack alert)"]


def test_every_number_is_intact_at_80_columns() -> None:
    """At 80 columns the demo table fits and only the thread column is shortened, every number intact."""
    plans = [ThreadPlan(f"{i}bcdef01-2345-4678-9abc-def012345678", sc, "openai/gpt-4.1-mini", "p", status=st)
             for i, (sc, st) in enumerate([("full", "completed"), ("ok", "completed"), ("fail", "failed")])]
    stats = {
        plans[0].thread_id: ThreadStats(llm_calls=12, llm_errors=1, tool_calls=9, tool_errors=2, input_tokens=123456,
                                        output_tokens=98765, cost_usd=0.000133,
                                        durations_ms=[81.0, 1234.0, 56789.0], ttft_ms=[40.0]),
        plans[1].thread_id: ThreadStats(llm_calls=2, input_tokens=84, output_tokens=26, cost_usd=12.5,
                                        durations_ms=[338.0, 999.0]),
        plans[2].thread_id: ThreadStats(llm_calls=4, llm_errors=3, input_tokens=39, output_tokens=10,
                                        cost_usd=0.0000326, durations_ms=[20.0, 336.0], run_error=True),
    }
    buf = io.StringIO()
    Console(width=80, file=buf, color_system=None, legacy_windows=False).print(thread_table(plans, stats, 80))
    lines = buf.getvalue().splitlines()
    assert max(len(ln) for ln in lines) <= 80
    header = next(ln for ln in lines if ln.startswith("┃"))
    cols = [c.strip() for c in header.split("┃")[1:-1]]
    assert cols == ["thread", "run", "LLM", "in", "out", "cost $", "p50", "p95", "err"]
    want = {
        "0": {"run": "✓ full", "LLM": "12", "in": "123456", "out": "98765", "cost $": "0.000133",
              "p50": "1.23 s", "p95": "56.79 s", "err": "3"},
        "1": {"run": "✓ ok", "LLM": "2", "in": "84", "out": "26", "cost $": "12.50", "p50": "338 ms",
              "p95": "999 ms", "err": "0"},
        "2": {"run": "✗ fail", "LLM": "4", "in": "39", "out": "10", "cost $": "0.0000326",
              "p50": "20 ms", "p95": "336 ms", "err": "4"},
    }
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in lines if ln.startswith("│")]
    assert len(rows) == 3
    for row in rows:
        cells = dict(zip(cols, row, strict=True))
        assert cells["thread"][1:].rstrip("…") and "bcdef01".startswith(cells["thread"][1:].rstrip("…"))
        assert {k: cells[k] for k in want[cells["thread"][0]]} == want[cells["thread"][0]]
        # Only the thread column may be shortened.
        assert not any("…" in v for k, v in cells.items() if k != "thread"), cells


def test_wide_table_has_every_column() -> None:
    """A wide terminal shows every column of the demo table in full."""
    plans = [ThreadPlan("abcdef01-2345", "full", "openai/gpt-5-mini", "p", status="completed")]
    buf = io.StringIO()
    Console(width=140, file=buf, color_system=None).print(thread_table(plans, {}, 140))
    header = next(ln for ln in buf.getvalue().splitlines() if ln.startswith("┃"))
    assert [c.strip() for c in header.split("┃")[1:-1]] == [
        "thread", "run", "model", "LLM", "in", "out", "cost $", "p50", "p95", "TTFT p50", "tools", "err"]
    assert "gpt-5-mini" in buf.getvalue() and "abcdef01" in buf.getvalue()


def test_compact_cost() -> None:
    """Costs are printed compactly with the significant digits kept."""
    assert [_cost(v) for v in (0.0, 0.000133, 0.0421, 1.234, 12.5)] == ["0", "0.000133", "0.0421", "1.23", "12.50"]


def test_export_outcome_names_what_was_lost() -> None:
    """A failed or late export names how many records of each signal were lost."""
    assert ExportOutcome(False, False, {"spans": 3}).ok  # embedded: nothing to export
    assert ExportOutcome(True).problem("http://c:4317") is None
    msg = ExportOutcome(True, True, {"spans": 12, "logs": 3}).problem("http://c:4317")
    assert msg == "export to http://c:4317 failed: 3 log records, 12 spans were lost (agentpress_otel.exporter.dropped)"
    late = ExportOutcome(True, False, {}).problem("http://c:4317")
    assert late is not None and "did not finish" in late


_NO_PROTOCOL: dict[str, str] = {}


@pytest.mark.parametrize(("endpoint", "protocol", "env", "want"), [
    ("http://c:4318", None, _NO_PROTOCOL, "http/protobuf"),
    ("http://c:4317", None, _NO_PROTOCOL, None),
    ("http://c:4318", "grpc", _NO_PROTOCOL, "grpc"),
    # The guess applies to the endpoint from the environment too...
    (None, None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http/protobuf"),
    (None, None, {"AGENTPRESS_OTEL_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
     "http/protobuf"),
    # ...but only when no protocol is configured anywhere.
    (None, None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, None),
    ("http://c:4318", None, {"AGENTPRESS_OTEL_PROTOCOL": "grpc"}, None),
    ("http://c:bad", None, _NO_PROTOCOL, None),
])
def test_guess_protocol(endpoint: str | None, protocol: str | None, env: dict[str, str], want: str | None) -> None:
    """The OTLP protocol is guessed from the endpoint port and explicit settings as the table expects."""
    assert guess_protocol(endpoint, protocol, env) == want


def test_env_endpoint_on_4318_gets_http_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """An env endpoint on port 4318 gets http/protobuf, and the config reports the protocol as guessed."""
    for var in ("AGENTPRESS_OTEL_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL", "AGENTPRESS_OTEL_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    cfg = load_effective_config(None, None)
    assert (cfg.endpoint, cfg.protocol) == ("http://collector:4318", "http/protobuf")
    assert cfg.sources["protocol"] == GUESSED_SOURCE
    assert cfg.sources["endpoint"] == "OTEL_EXPORTER_OTLP_ENDPOINT"


def test_config_rows_name_the_real_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """doctor's config rows name where each value came from (env variable, generated)."""
    monkeypatch.delenv("AGENTPRESS_OTEL_INTEGRATIONS", raising=False)
    monkeypatch.delenv("AGENTPRESS_OTEL_SERVICE_INSTANCE_ID", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.setenv("AGENTPRESS_OTEL_DISABLED_INTEGRATIONS", "redis")
    rows = {name: (value, src) for name, value, src in config_rows(load_config())}
    value, src = rows["integrations"]
    assert src == "AGENTPRESS_OTEL_DISABLED_INTEGRATIONS"
    assert "redis" not in value.split(", ")
    instance, src = rows["service_instance_id"]
    assert src == "generated"
    assert instance.split(" ", 1)[0].count("-") >= 2  # hostname-pid-random


def test_quiet_blames_the_signal_that_logged() -> None:
    """The exporter log catcher attributes each error to the signal whose exporter logged it."""
    quiet = _Quiet()
    grpc_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter")

    def warn(sig: str, msg: str) -> None:
        t = threading.Thread(target=lambda: grpc_logger.warning(msg), name=_thread_name(sig))
        t.start()
        t.join()

    with quiet:
        warn("traces", "traces: StatusCode.UNIMPLEMENTED")
        warn("logs", "logs: StatusCode.UNAVAILABLE")  # the last warning overall
        logging.getLogger("opentelemetry.exporter.otlp.proto.http.metric_exporter").warning("metrics: 404")
    assert quiet.last_for("traces") == "traces: StatusCode.UNIMPLEMENTED"
    assert quiet.last_for("logs") == "logs: StatusCode.UNAVAILABLE"
    assert quiet.last_for("metrics") == "metrics: 404"


def _python_sleeper() -> subprocess.Popen[bytes]:
    """A sleeping python3 child, returned once it has exec'd (until then its command line is still pytest's)."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    proc = subprocess.Popen(argv, start_new_session=True)
    deadline = time.monotonic() + 10
    while stack._argv(proc.pid) != argv and time.monotonic() < deadline:
        time.sleep(0.01)
    return proc


def test_stack_down_spares_an_unrelated_process_with_a_reused_pid(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``stack down`` does not kill an unrelated process that reuses a recorded pid."""
    # The recorded slack stand-in is gone and its pid now belongs to another python3 process.
    other = _python_sleeper()
    try:
        monkeypatch.setenv("APOTEL_STATE_DIR", str(tmp_path))
        comp = {"name": "slack-stub", "pid": other.pid, "argv0": sys.executable,
                "argv": [sys.executable, "-m", "agentpress_otel._harness.slack_stub"],
                "start_ticks": stack._start_ticks(other.pid), "log": "x"}
        (tmp_path / "stack.json").write_text(json.dumps({"components": [comp]}))
        assert stack.down(Console(file=io.StringIO())) == 0
        assert other.poll() is None, "stack down killed an unrelated process"
        # Same command line but another start time: a different process too.
        same_cmd = {**comp, "argv": [sys.executable, "-c", "import time; time.sleep(60)"],
                    "start_ticks": int(stack._start_ticks(other.pid) or 0) - 1}
        assert not stack._running(same_cmd)
        assert stack._running({**same_cmd, "start_ticks": stack._start_ticks(other.pid)})
    finally:
        other.kill()
        other.wait()


class _Post:
    def __init__(self, data: Any) -> None:
        self.json = data
        self.body = b""


def test_slack_text_reads_block_kit() -> None:
    """The demo's Slack summary reads the text of Block Kit messages and of plain ones."""
    msg = {"text": "fallback", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "ERROR in api"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Thread*\n`t-1`"}]},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"},
                                          "url": "http://g/x"}]}]}
    text = slack_text(_Post(msg))
    assert "ERROR in api" in text and "*Thread* `t-1`" in text and "Open" in text
    assert slack_text(_Post({"text": "plain"})) == "plain"


@pytest.mark.parametrize("base", ["http://localhost:3000", "http://localhost:3000/"])
def test_grafana_links(base: str) -> None:
    """The demo prints Grafana links to the dashboards folder, the thread, the trace and the frontend."""
    links = dict(grafana_links(base, "t-1", "ab" * 16))
    assert links["Dashboards (folder AgentPress)"] == "http://localhost:3000/dashboards/f/agentpress/"
    assert links["Thread t-1"].endswith("/d/agentpress-thread-explorer?var-thread_id=t-1")
    assert "explore?" in links["Trace " + "ab" * 16]
    assert links["Frontend"] == "http://localhost:3000/d/agentpress-frontend"


def test_dashboard_links_match_the_provisioned_dashboards() -> None:
    """The dashboards the demo links to are exactly the provisioned ones."""
    from agentpress_otel.cli.demo_plan import DASHBOARDS
    from harness import REPO_ROOT

    uids = {json.loads(f.read_text())["uid"] for f in (REPO_ROOT / "grafana" / "dashboards").glob("*.json")}
    assert uids, "no dashboards found"
    assert {uid for _, uid in DASHBOARDS} == uids
