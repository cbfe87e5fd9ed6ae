"""Real Alertmanager (Debian's package) with the shipped config, posting to local Slack stand-ins.

There are two stand-ins, one per severity webhook (``slack_webhook_url_critical`` / ``_warning``), as in production
where each Slack incoming webhook is bound to its own channel:

* a storm of 20 firing alerts of one group -> exactly one Slack message, on the critical webhook only (shipped
  timing: critical group_wait 10s);
* the resolved message follows; a warning is inhibited while its critical fires, but only the warning of the SAME
  alert instance (same provider/model), not the warning of another provider. These use a timing overlay
  (group_wait 1s, group_interval 2s) because the shipped group_interval is 5 minutes; routing, grouping,
  inhibition, receivers and templates are the shipped ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from agentpress_otel._harness.alertmanager import Alertmanager, binary
from agentpress_otel._harness.slack_stub import SlackStub
from conftest import need

FAST = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


def storm(n: int = 20, *, severity: str = "critical", service: str = "api") -> list[dict[str, Any]]:
    return [{
        "labels": {"alertname": "LLMErrorRateHigh", "severity": severity, "service_name": service,
                   "gen_ai_provider_name": f"provider-{i}"},
        "annotations": {
            "summary": f"{service}: 40% of provider-{i} LLM calls fail",
            "description": "More than 25% of LLM calls fail (after retries).",
            "grafana_url": f"http://localhost:3000/d/agentpress-llm-usage?var-service={service}",
        },
    } for i in range(n)]


@dataclass
class Slack:
    critical: SlackStub
    warning: SlackStub

    @property
    def posts(self) -> list[Any]:
        return sorted(self.critical.posts + self.warning.posts, key=lambda p: p.at)

    def wait_for(self, n: int, *, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {n} Slack posts within {timeout}s, got {len(self.posts)}")
            time.sleep(0.1)
        return self.posts


@pytest.fixture
def slack() -> Iterator[Slack]:
    with SlackStub() as crit, SlackStub() as warn:
        yield Slack(critical=crit, warning=warn)


def _am(slack: Slack, timing: dict[str, str] | None = None) -> Alertmanager:
    need(binary)
    return Alertmanager(webhook_urls={"critical": slack.critical.url, "warning": slack.warning.url}, timing=timing)


def attachment(post: Any) -> dict[str, Any]:
    body = post.json
    assert body and body.get("attachments"), post.body
    att: dict[str, Any] = body["attachments"][0]
    return att


def test_storm_of_20_is_one_message_with_shipped_config(slack: Slack) -> None:
    """With the shipped config, a storm of 20 alerts is one Slack message after the critical group wait."""
    with _am(slack) as am:
        alerts = storm(20)
        t0 = time.monotonic()
        for i in range(0, 20, 5):  # the storm trickles in over ~3 s, as rule evaluations would send it
            am.post_alerts(alerts[i:i + 5])
            time.sleep(1)
        posts = slack.wait_for(1, timeout=40)
        assert posts[0].at - t0 >= 9, "sent before the shipped critical group_wait (10s)"
        time.sleep(4)  # anything else from the same storm would have arrived by now
        posts = slack.posts
        assert len(posts) == 1, [p.text for p in posts]
        # It went to the critical channel's own webhook, nothing to the warning one.
        assert slack.critical.posts == posts and slack.warning.posts == []
        att = attachment(posts[0])
        assert att["title"] == "[FIRING:20] LLMErrorRateHigh in api (critical)"
        assert att["color"] == "danger"
        assert att["title_link"] == "http://localhost:3000/d/agentpress-llm-usage?var-service=api"
        text = att["text"]
        assert "20 alerts (first 5 shown)" in text
        assert "`alertname=LLMErrorRateHigh`" in text and "`service_name=api`" in text
        assert "api: 40% of provider-0 LLM calls fail" in text and "`gen_ai_provider_name=provider-0`" in text
        assert "<http://localhost:3000/d/agentpress-llm-usage?var-service=api|Open in Grafana>" in text
        assert "provider-7" not in text  # the storm is summarised, not pasted
        assert "stubstub" not in posts[0].text  # the webhook secret is not echoed into the message


def test_resolved_message_follows(slack: Slack) -> None:
    """A resolved message follows the firing one."""
    with _am(slack, FAST) as am:
        alerts = storm(20)
        am.post_alerts(alerts)
        slack.wait_for(1, timeout=20)
        am.post_alerts(alerts, resolved=True)
        posts = slack.wait_for(2, timeout=20)
        time.sleep(3)
        posts = slack.posts
        assert len(posts) == 2, [p.text for p in posts]
        first, second = attachment(posts[0]), attachment(posts[1])
        assert first["title"].startswith("[FIRING:20]")
        assert second["title"] == "[RESOLVED] LLMErrorRateHigh in api (critical)"
        assert second["color"] == "good"
        assert ":white_check_mark:" in second["text"]


def test_warning_inhibited_while_critical_fires(slack: Slack) -> None:
    """A warning is inhibited while a critical alert of the same service fires, and announced after it resolves."""
    with _am(slack, FAST) as am:
        am.post_alerts(storm(1, severity="critical", service="api") + storm(1, severity="warning", service="api")
                       + storm(1, severity="warning", service="worker"))
        slack.wait_for(2, timeout=20)
        time.sleep(4)
        titles = sorted(attachment(p)["title"] for p in slack.posts)
        assert titles == ["[FIRING:1] LLMErrorRateHigh in api (critical)",
                          "[FIRING:1] LLMErrorRateHigh in worker (warning)"], titles
        # Each severity reached its own webhook URL.
        assert [attachment(p)["title"] for p in slack.critical.posts] == [
            "[FIRING:1] LLMErrorRateHigh in api (critical)"]
        assert [attachment(p)["title"] for p in slack.warning.posts] == [
            "[FIRING:1] LLMErrorRateHigh in worker (warning)"]
        inhibited = [a for a in am.alerts() if a["status"]["inhibitedBy"]]
        assert [(a["labels"]["service_name"], a["labels"]["severity"]) for a in inhibited] == [("api", "warning")]

        # Once the critical resolves, the warning is no longer inhibited and is announced.
        am.post_alerts(storm(1, severity="critical", service="api"), resolved=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(attachment(p)["title"] == "[FIRING:1] LLMErrorRateHigh in api (warning)" for p in slack.posts):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"warning not announced after the critical resolved: {[p.text for p in slack.posts]}")


def _llm_alert(severity: str, provider: str, model: str) -> dict[str, Any]:
    return {"labels": {"alertname": "LLMErrorRateHigh", "severity": severity, "service_name": "api",
                       "deployment_environment_name": "prod", "gen_ai_provider_name": provider,
                       "gen_ai_request_model": model},
            "annotations": {"summary": f"api: {provider} {model} calls fail"}}


def test_critical_on_one_provider_does_not_inhibit_a_warning_on_another(slack: Slack) -> None:
    """A critical alert on one LLM provider does not inhibit a warning on another."""
    with _am(slack, FAST) as am:
        am.post_alerts([
            _llm_alert("critical", "anthropic", "claude"),
            _llm_alert("warning", "anthropic", "claude"),   # its own warning twin: inhibited
            _llm_alert("warning", "openai", "gpt-4o"),      # another provider and model: must be announced
        ])
        slack.critical.wait_for(1, timeout=20)
        slack.warning.wait_for(1, timeout=20)
        time.sleep(4)
        inhibited = [(a["labels"]["gen_ai_provider_name"], a["labels"]["severity"])
                     for a in am.alerts() if a["status"]["inhibitedBy"]]
        assert inhibited == [("anthropic", "warning")]
        assert len(slack.critical.posts) == 1 and len(slack.warning.posts) == 1, [p.text for p in slack.posts]
        warned = slack.warning.posts[0].text
        assert "gen_ai_provider_name=openai" in warned and "anthropic" not in warned
        assert "gen_ai_provider_name=anthropic" in slack.critical.posts[0].text
