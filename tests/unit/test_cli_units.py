"""Pure pieces of the CLI: argument parsing, version rules, percentiles, Slack text, Grafana links."""

from __future__ import annotations

from typing import Any

import pytest

from agentpress_otel.cli import build_parser
from agentpress_otel.cli.demo import grafana_links, make_secret, percentile, plan_threads, slack_text
from agentpress_otel.cli.doctor import version_findings


def test_parser_has_the_three_commands() -> None:
    ap = build_parser()
    a = ap.parse_args(["demo", "--threads", "5", "--seed", "3", "--endpoint", "http://x:4317"])
    assert (a.command, a.threads, a.seed, a.endpoint) == ("demo", 5, 3, "http://x:4317")
    assert ap.parse_args(["doctor"]).command == "doctor"
    assert ap.parse_args(["stack", "status"]).action == "status"


def test_coherent_versions_pass() -> None:
    f = version_findings({"opentelemetry-sdk": "1.45.2", "opentelemetry-api": "1.45.2",
                          "opentelemetry-instrumentation-fastapi": "0.66b2"})
    assert not [x for x in f if x.level == "fail" and x.what in ("opentelemetry-api",
                                                                  "opentelemetry-instrumentation-fastapi")]


def test_mismatched_versions_fail() -> None:
    f = version_findings({"opentelemetry-sdk": "1.45.2", "opentelemetry-api": "1.44.0",
                          "opentelemetry-instrumentation-fastapi": "0.60b1"})
    bad = {x.what: x.detail for x in f if x.level == "fail"}
    assert "opentelemetry-api" in bad
    assert "1.39.x" in bad["opentelemetry-instrumentation-fastapi"]
    assert "0.66bX" in bad["opentelemetry-instrumentation-fastapi"]


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([10.0], 95) == 10.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_plans_are_deterministic_and_cover_the_cases() -> None:
    a = plan_threads(4, 7, make_secret(7))
    b = plan_threads(4, 7, make_secret(7))
    assert [p.thread_id for p in a] == [p.thread_id for p in b]
    assert [p.scenario for p in a] == ["full", "ok", "fail", "full"]
    assert make_secret(7) in a[0].prompt


class _Post:
    def __init__(self, data: Any) -> None:
        self.json = data
        self.body = b""


def test_slack_text_reads_block_kit() -> None:
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
    links = dict(grafana_links(base, "t-1", "ab" * 16))
    assert links["Dashboards (folder AgentPress)"] == "http://localhost:3000/dashboards/f/agentpress/"
    assert links["Thread t-1"].endswith("/d/agentpress-thread-explorer?var-thread_id=t-1")
    assert "explore?" in links["Trace " + "ab" * 16]
