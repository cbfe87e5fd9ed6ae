"""The demo's workload (which threads run which scenario, with which model and prompt) and the numbers taken
from what was exported: per-thread stats, the redaction check, the export outcome.

``agentpress-otel demo`` (``cli/demo.py``) drives these plans through the backend; ``cli/demo_render.py`` shows
the result.
"""

from __future__ import annotations

import json
import math
import random
import string
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentpress_otel._context import ID_ATTRIBUTES

DEMO_SERVICE = "agentpress-api"


MODELS = ("openai/gpt-5-mini", "openai/gpt-5", "openai/gpt-4.1-mini")


_KEY_PROMPT = "Check why last night's deploy failed and post a summary. My OpenAI key for the eval step is {secret}"


PROMPTS = {
    "full": _KEY_PROMPT,
    "all": _KEY_PROMPT,
    "ok": "Summarise yesterday's incidents for the team channel.",
    "fail": "Draft the release notes for v2.3 from the merged pull requests.",
}


SCENARIO_CYCLE = ("full", "ok", "fail")


#: Scenarios that carry the planted secret and are shown as the span tree.
SHOWN_SCENARIOS = ("full", "all")


#: The workload cases; every run covers all of them, whatever the number of threads.
CASES = ("429 retried", "tool failure", "slow LLM call", "failed run (Slack alert)", "redacted secret", "user score")


DASHBOARDS = (
    ("Agent overview", "agentpress-agent-overview"),
    ("LLM usage and cost", "agentpress-llm-usage"),
    ("Service health (RED)", "agentpress-service-health"),
    ("Thread explorer", "agentpress-thread-explorer"),
    ("Frontend", "agentpress-frontend"),
    ("Telemetry pipeline", "agentpress-telemetry-pipeline"),
)


@dataclass
class ThreadPlan:
    thread_id: str
    scenario: str
    model: str
    prompt: str
    agent_run_id: str = ""
    status: str = "pending"
    error: str | None = None
    trace_id: str | None = None
    feedback: dict[str, Any] | None = None


def make_secret(seed: int) -> str:
    """A fake OpenAI-style key, built at run time so no key-shaped literal lives in the repository."""
    rnd = random.Random(seed * 7919 + 1)
    alphabet = string.ascii_letters + string.digits
    return "sk-" + "proj-" + "".join(rnd.choice(alphabet) for _ in range(40))


def scenario_order(n: int) -> list[str]:
    """Scenario per thread. From 3 threads on, ``full``/``ok``/``fail`` in turn; with fewer, the first thread
    runs ``all`` (every case of ``full`` plus a final provider failure that fails the run and alerts Slack),
    so even ``--threads 1`` shows every case.

    Example::

        scenario_order(2)  # ["all", "ok"]
    """
    if n < len(SCENARIO_CYCLE):
        return ["all", "ok"][:n]
    return [SCENARIO_CYCLE[i % len(SCENARIO_CYCLE)] for i in range(n)]


def plan_threads(n: int, seed: int, secret: str) -> list[ThreadPlan]:
    rnd = random.Random(seed)
    plans = []
    for i, scenario in enumerate(scenario_order(n)):
        tid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        model = MODELS[0] if i < len(SCENARIO_CYCLE) else rnd.choice(MODELS)
        plans.append(ThreadPlan(tid, scenario, model, PROMPTS[scenario].format(secret=secret)))
    return plans


def _skipped_cases(plans: Sequence[ThreadPlan]) -> list[str]:
    """Workload cases (see ``CASES``) that no planned thread exercises."""
    have = {p.scenario for p in plans}
    covered: set[str] = set()
    if have & {"full", "all"}:
        covered |= {"429 retried", "tool failure", "slow LLM call", "redacted secret", "user score"}
    if have & {"fail", "all"}:
        covered.add("failed run (Slack alert)")
    return [c for c in CASES if c not in covered]


@dataclass
class ThreadStats:
    llm_calls: int = 0
    llm_errors: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    durations_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)
    run_error: bool = False

    @property
    def errors(self) -> int:
        return self.llm_errors + self.tool_errors + int(self.run_error)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (what a p95 over a handful of calls means)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def thread_stats(spans: Iterable[Any]) -> dict[str, ThreadStats]:
    """Per-thread LLM/tool numbers from finished spans (keyed by ``agentpress.thread.id``)."""
    from opentelemetry.trace import StatusCode

    out: dict[str, ThreadStats] = defaultdict(ThreadStats)
    for s in spans:
        a = dict(s.attributes or {})
        tid = a.get(ID_ATTRIBUTES["thread_id"]) or a.get("gen_ai.conversation.id")
        if not tid:
            continue
        st = out[str(tid)]
        op = a.get("gen_ai.operation.name")
        failed = s.status.status_code == StatusCode.ERROR
        if op == "chat":
            st.llm_calls += 1
            st.llm_errors += int(failed)
            st.input_tokens += int(a.get("gen_ai.usage.input_tokens", 0) or 0)
            st.output_tokens += int(a.get("gen_ai.usage.output_tokens", 0) or 0)
            st.cost_usd += float(a.get("agentpress.llm.cost_usd", 0.0) or 0.0)
            if s.end_time and s.start_time:
                st.durations_ms.append((s.end_time - s.start_time) / 1e6)
            if "gen_ai.response.time_to_first_chunk" in a:
                st.ttft_ms.append(float(a["gen_ai.response.time_to_first_chunk"]) * 1000)
            if a.get("gen_ai.response.id"):
                st.response_ids.append(str(a["gen_ai.response.id"]))
        elif op == "execute_tool":
            st.tool_calls += 1
            st.tool_errors += int(failed)
        elif op == "invoke_agent" and failed:
            st.run_error = True
    return dict(out)


_NOUNS = {"spans": "spans", "logs": "log records", "metrics": "metric points"}


@dataclass
class ExportOutcome:
    """What happened to the OTLP export: whether it was on, flushed in time, and items lost per signal."""

    exporting: bool
    flushed: bool = True
    lost: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.exporting or (self.flushed and not self.lost)

    def problem(self, endpoint: str) -> str | None:
        """One line naming what did not reach ``endpoint``, or None."""
        if self.ok:
            return None
        parts = [f"{n} {_NOUNS.get(sig, sig)}" for sig, n in sorted(self.lost.items())]
        what = (", ".join(parts) + " were lost (agentpress_otel.exporter.dropped)") if parts else ""
        late = "" if self.flushed else "the export did not finish within 10 s"
        return f"export to {endpoint} failed: " + "; ".join(x for x in (what, late) if x)


def _exported_text(items: Iterable[Any]) -> str:
    out = []
    for it in items:
        fn = getattr(it, "to_json", None) or getattr(getattr(it, "log_record", None), "to_json", None)
        out.append(fn() if fn is not None else repr(it))
    return "\n".join(out)


@dataclass
class RedactionCheck:
    """The planted secret against everything that left the process (spans, logs, Slack posts)."""

    leaked_in: list[str]
    tagged: bool

    @property
    def ok(self) -> bool:
        return not self.leaked_in and self.tagged


def check_redaction(secret: str, spans: Sequence[Any], logs: Sequence[Any], posts: Sequence[Any],
                    shown_spans: Sequence[Any]) -> RedactionCheck:
    """Whether ``secret`` is absent from every exported span, log record and Slack post, and its
    ``[REDACTED:...]`` tag is in the shown thread's exported spans."""
    texts = {"spans": _exported_text(spans), "log records": _exported_text(logs),
             "Slack posts": "\n".join(json.dumps(p.json) if p.json is not None else
                                      p.body.decode("utf-8", "replace") for p in posts)}
    leaked = [name for name, text in texts.items() if secret in text]
    return RedactionCheck(leaked, "[REDACTED:openai_key:" in _exported_text(shown_spans))
