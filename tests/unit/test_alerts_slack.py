"""The in-process Slack handler against a local Slack stand-in (a real HTTP server on loopback)."""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from agentpress_otel import _selftel
from agentpress_otel._config import load_config
from agentpress_otel._harness._proc import free_port
from agentpress_otel._harness.slack_stub import SlackStub
from agentpress_otel.integrations import Skip
from agentpress_otel.integrations import slack as slack_mod
from agentpress_otel.integrations.slack import SlackAlertHandler


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub() as s:
        yield s


_made: list[tuple[logging.Logger, SlackAlertHandler]] = []


@pytest.fixture(autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    while _made:
        lg, h = _made.pop()
        lg.removeHandler(h)
        h.stop()


def make(url: str, name: str = "app", **kw: Any) -> tuple[logging.Logger, SlackAlertHandler]:
    kw.setdefault("service", "api")
    kw.setdefault("environment", "test")
    kw.setdefault("grafana_url", "http://grafana.local:3000")
    h = SlackAlertHandler(webhook_url=url, **kw)
    lg = logging.getLogger(f"test_alerts_slack.{name}")
    lg.propagate = False
    lg.setLevel(logging.DEBUG)
    lg.addHandler(h)
    _made.append((lg, h))
    return lg, h


def fail_here(msg: str) -> None:
    raise ValueError(msg)


def blocks_text(post: Any) -> str:
    return str(post.text)


class _ShiftedClock:
    """The ``time`` module as the Slack handler sees it, with ``monotonic()`` moved forward on demand.

    Lets a test close a dedup window without depending on how fast the machine logs: the burst runs
    inside a long window, then the clock jumps past its end.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_burst_of_1000_identical_errors_is_one_message_and_one_summary(
    stub: SlackStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 identical exceptions inside one dedup window give one alert, then one summary counting 999 repeats.

    The window is long and closed by moving the handler's clock, so a slow machine (a burst taking more than
    the window) cannot split the burst into two windows.
    """
    clock = _ShiftedClock()
    monkeypatch.setattr(slack_mod, "time", clock)
    window_s = 60.0
    log, h = make(stub.url, dedup_window_s=window_s)
    for i in range(1000):
        try:
            fail_here(f"upstream refused request #{i}")
        except ValueError:
            log.exception("agent step failed")
    first = stub.wait_for(1, timeout=5)
    assert "agent step failed" in blocks_text(first[0])
    h.flush(2)
    assert len(stub.posts) == 1, [p.text for p in stub.posts]  # the repeats are held while the window is open
    clock.offset += window_s  # the window closes: the sender's sweep sends the summary
    stub.wait_for(2, timeout=10)
    time.sleep(1.5)  # nothing else may follow
    h.flush(2)
    posts = stub.posts
    assert len(posts) == 2, [p.text for p in posts]
    summary = posts[1].json
    assert "999 repeats" in summary["blocks"][1]["text"]["text"]
    assert ":repeat: 999 more" in summary["text"]
    assert "ValueError" in blocks_text(posts[1])
    assert h.sent == 2
    assert _selftel.dropped("slack") == 0


def test_different_errors_are_not_merged(stub: SlackStub) -> None:
    """Different exception types, loggers and plain error logs each get their own Slack message."""
    log, _ = make(stub.url, dedup_window_s=60)
    other, _ = make(stub.url, name="other", dedup_window_s=60)
    for _ in range(3):
        try:
            fail_here("a")
        except ValueError:
            log.exception("first kind")
        try:
            empty: dict[str, int] = {}
            empty["missing"]  # raises KeyError at a different place
        except KeyError:
            log.exception("second kind")
        try:
            fail_here("a")
        except ValueError:
            other.exception("same error, other logger")
        log.error("no exception, plain error log")
    posts = stub.wait_for(4, timeout=5)
    time.sleep(0.5)
    posts = stub.posts
    assert len(posts) == 4, [p.json["text"] for p in posts]
    heads = sorted(p.json["text"] for p in posts)
    assert any("first kind" in t for t in heads) and any("second kind" in t for t in heads)
    assert any("other logger" in t for t in heads) and any("plain error log" in t for t in heads)


def test_429_retry_after_is_honoured(stub: SlackStub) -> None:
    """A 429 from Slack is retried with the same body only after its Retry-After delay."""
    stub.reply(429, headers={"Retry-After": "1"}, body=b"rate_limited")
    log, h = make(stub.url)
    log.error("disk full")
    posts = stub.wait_for(2, timeout=10)
    assert [p.status for p in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.95, "retried before Retry-After elapsed"
    assert posts[0].body == posts[1].body
    h.flush(2)
    assert h.sent == 1 and _selftel.dropped("slack") == 0


def test_dead_webhook_never_blocks_or_raises() -> None:
    """A dead or hanging webhook never slows the logging call, drops with a count, and stops within its bound."""
    dead_url = f"http://127.0.0.1:{free_port()}/services/x"  # nothing listens
    with SlackStub(default_delay_s=3.0) as hanging:  # accepts, then answers far too late
        for url in (dead_url, hanging.url):
            log, h = make(url, name=f"dead{url[-5:]}", timeout_s=0.3, max_queue=5, rate_per_minute=6000, burst=500)
            t0 = time.monotonic()
            for i in range(1000):
                logging.getLogger(f"test_alerts_slack.dead{url[-5:]}").error("error number %d", i)
                # distinct fingerprints so dedup does not absorb them: a different logger each time
                lg = logging.getLogger(f"test_alerts_slack.dead.{i % 200}")
                lg.propagate = False
                lg.addHandler(h)
                lg.error("boom")
                lg.removeHandler(h)
            elapsed = time.monotonic() - t0
            # 2,000 logging calls while every send hangs or fails: the caller never waits on the network.
            assert elapsed < 5.0, f"logging took {elapsed:.1f}s with a dead webhook"
            assert _selftel.dropped("slack", "queue_full") > 0
            t1 = time.monotonic()
            log.removeHandler(h)
            h.stop()
            _made.remove((log, h))
            assert time.monotonic() - t1 < h.close_timeout_s + 1.5  # shutdown is bounded too
            assert h.sent == 0


def test_no_secret_reaches_the_message(stub: SlackStub) -> None:
    """Secrets in the log message and the exception never reach the Slack message body."""
    log, _ = make(stub.url)
    api_key = "sk-proj-Abc123Def456Ghi789Jkl012Mno345"
    bearer = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    try:
        raise PermissionError(f"OpenAI rejected key {api_key} for user bob@example.com")
    except PermissionError:
        log.exception("LLM call failed: password=hunter2secret Authorization: Bearer %s", bearer)
    post = stub.wait_for(1, timeout=5)[0]
    body = post.body.decode()
    for secret in (api_key, bearer, "hunter2secret", "bob@example.com"):
        assert secret not in body, secret
    assert "PermissionError" in body and "LLM call failed" in body


def test_message_carries_context(stub: SlackStub) -> None:
    """The Slack message carries the error, thread/run/request ids, a short stack and Grafana links."""
    from opentelemetry.sdk.trace import TracerProvider

    from agentpress_otel._context import thread_context

    log, _ = make(stub.url, stack_max_chars=400)
    tracer = TracerProvider().get_tracer("t")

    def deep(n: int) -> None:
        if n == 0:
            raise RuntimeError("tool crashed")
        deep(n - 1)

    with thread_context(project_id="proj-1", thread_id="thr-9", agent_run_id="run-3", request_id="req-7"), \
            tracer.start_as_current_span("run") as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
        try:
            deep(30)
        except RuntimeError:
            log.exception("agent run failed")
    msg = stub.wait_for(1, timeout=5)[0].json
    blocks = msg["blocks"]
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"] == ":red_circle: ERROR in api (test)"
    assert "agent run failed" in blocks[1]["text"]["text"]
    fields = " ".join(f["text"] for f in blocks[2]["fields"])
    for want in ("RuntimeError", "proj-1", "thr-9", "run-3", "req-7", trace_id, "test_alerts_slack"):
        assert want in fields, want
    stack = blocks[3]["text"]["text"]
    assert re.match(r"```…\[\d+ chars cut\]…", stack) and "RuntimeError: tool crashed" in stack and len(stack) < 450
    buttons = {e["text"]["text"]: e["url"] for e in blocks[4]["elements"]}
    assert trace_id in buttons["Open trace in Grafana"]
    assert buttons["Open trace in Grafana"].startswith("http://grafana.local:3000/explore?")
    assert buttons["Thread explorer"].endswith("/d/agentpress-thread-explorer?var-thread_id=thr-9")


def test_global_rate_limit_drops_with_a_count(stub: SlackStub) -> None:
    """Past the rate limit, alerts are dropped and counted as ``rate_limited``."""
    _, h = make(stub.url, burst=3, rate_per_minute=0.0)
    for i in range(10):
        logging.getLogger(f"test_alerts_slack.rl{i}").propagate = False
        logging.getLogger(f"test_alerts_slack.rl{i}").addHandler(h)
        logging.getLogger(f"test_alerts_slack.rl{i}").error("distinct %d", i)
        logging.getLogger(f"test_alerts_slack.rl{i}").removeHandler(h)
    stub.wait_for(3, timeout=5)
    time.sleep(0.5)
    assert len(stub.posts) == 3
    assert _selftel.dropped("slack", "rate_limited") == 7


def test_below_min_level_is_ignored(stub: SlackStub) -> None:
    """Records below the minimum level post nothing."""
    log, h = make(stub.url)
    log.warning("just a warning")
    log.info("info")
    h.flush(1)
    time.sleep(0.3)
    assert stub.posts == []


def test_integration_instrument_uninstrument(stub: SlackStub) -> None:
    """The Slack integration reads its config from env, installs one handler idempotently and removes it."""
    cfg = load_config(env={"AGENTPRESS_OTEL_SLACK_WEBHOOK_URL": stub.url, "OTEL_SERVICE_NAME": "worker",
                           "AGENTPRESS_OTEL_SLACK_MIN_LEVEL": "warning"})
    assert cfg.slack_webhook_url == stub.url and cfg.slack_min_level == "WARNING"
    tel: Any = SimpleNamespace(config=cfg)
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        slack_mod.instrument(tel)
        slack_mod.instrument(tel)  # idempotent: still one handler
        added = [h for h in root.handlers if h not in before]
        assert len(added) == 1 and isinstance(added[0], SlackAlertHandler)
        logging.getLogger("test_alerts_slack.root").warning("queue backlog growing")
        post = stub.wait_for(1, timeout=5)[0]
        assert ":warning: WARNING in worker" in post.json["text"]
    finally:
        slack_mod.uninstrument()
        slack_mod.uninstrument()
    assert list(root.handlers) == before
    no_url: Any = SimpleNamespace(config=load_config(env={}))
    with pytest.raises(Skip, match="slack_webhook_url"):  # no URL: not enabled
        slack_mod.instrument(no_url)
    assert list(root.handlers) == before


def test_alerts_survive_uvicorn_logging_setup(stub: SlackStub) -> None:
    """uvicorn runs logging.config.dictConfig at start-up, which close()s every existing handler."""
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    log, _h = make(stub.url, name="dictconfig")
    logging.config.dictConfig(LOGGING_CONFIG)
    try:
        fail_here("after uvicorn configured logging")
    except ValueError:
        log.exception("still alerting")
    assert "still alerting" in blocks_text(stub.wait_for(1, timeout=5)[0])


def test_structlog_errors_reach_slack(stub: SlackStub) -> None:
    """AgentPress logs only through structlog; its errors must alert like stdlib ones."""
    import io

    import structlog

    from agentpress_otel.testing import capture

    sink = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=sink),
        cache_logger_on_first_use=False,
    )
    with capture(slack_webhook_url=stub.url, integrations=["structlog", "slack", "logging"]):
        log = structlog.get_logger("agentpress.worker")
        try:
            fail_here("tool crashed with key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD")
        except ValueError:
            log.exception("agent run failed", thread_id="th-9")
        text = blocks_text(stub.wait_for(1, timeout=5)[0])
    assert "agent run failed" in text
    assert "th-9" in text
    assert "ValueError" in text
    assert "sk-proj-abcdefghij" not in text


def test_rate_limited_alert_opens_no_window(stub: SlackStub) -> None:
    """A rate-limited first alert was never sent: no follow-up may refer to it; the next occurrence is a full alert."""
    _, h = make(stub.url, burst=1, rate_per_minute=60.0, dedup_window_s=1.0)  # 1 token, refilled after 1 s
    first = logging.getLogger("test_alerts_slack.rlw.first")
    second = logging.getLogger("test_alerts_slack.rlw.second")
    for lg in (first, second):
        lg.propagate = False
        lg.addHandler(h)
    try:
        first.error("takes the only token")
        for _ in range(3):
            second.error("rate limited: never sent")
        assert _selftel.dropped("slack", "rate_limited") == 3
        stub.wait_for(1, timeout=5)
        time.sleep(1.3)  # the bucket refills and any window the rate-limited alert might have opened has closed
        second.error("rate limited: never sent")
        posts = stub.wait_for(2, timeout=5)
        time.sleep(1.5)  # windows close; a (wrong) follow-up would be sent now
        h.flush(2)
        posts = stub.posts
        texts = [p.json["text"] for p in posts]
        assert len(posts) == 2, texts
        assert not any(":repeat:" in t for t in texts), texts
        assert "rate limited: never sent" in texts[1] and texts[1].startswith(":red_circle:")
    finally:
        for lg in (first, second):
            lg.removeHandler(h)


def test_failed_delivery_closes_the_window() -> None:
    """Slack refused the alert (4xx): repeats are not summarised as if it had been seen; the next one alerts again."""
    with SlackStub(default_status=404) as gone:
        log, h = make(gone.url, dedup_window_s=60.0)
        log.error("webhook gone")
        gone.wait_for(1, timeout=5)
        h.flush(2)
        deadline = time.monotonic() + 5
        while h._windows and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not h._windows
        log.error("webhook gone")
        gone.wait_for(2, timeout=5)  # a full alert again, not swallowed by a 60 s window
        assert _selftel.dropped("slack", "send_failed") >= 1


def test_state_lock_is_replaced_in_a_forked_child(stub: SlackStub) -> None:
    """A lock held by another thread at fork time would stay held forever in the child and hang its first alert."""
    log, h = make(stub.url, name="forked")
    h._state_lock.acquire()  # as if an application thread were inside emit() when the process forked
    try:
        pid = os.fork()
        if pid == 0:  # child: must not block, and must still deliver
            code = 1
            try:
                log.error("alert from the child")
                h.flush(5)
                code = 0 if h.sent == 1 else 3
            finally:
                os._exit(code)
    finally:
        h._state_lock.release()
    deadline = time.monotonic() + 15
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on the handler's lock")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert "alert from the child" in stub.wait_for(1, timeout=5)[0].text
