"""Redaction throughput: our RE2 engine vs a naive stdlib-``re`` alternation, same run, same text.

Run: .venv/bin/python benchmarks/bench_redaction.py   (writes benchmarks/results/redaction.json)
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
import uuid
from typing import Any

from _common import report
from agentpress_otel.redaction import Redactor, luhn_ok

LINES = [
    "2026-11-25T10:02:00.123Z INFO agentpress.thread_manager run_thread thread_id=3f2a1c4e-9b8d-4e2f-a1b2-c3d4e5f60718 "
    "model=claude-3-5-sonnet-20241022 prompt_tokens=1234 completion_tokens=567 duration_ms=2345.6",
    'GET /api/agent-run/8b7c6d5e-4f3a-2b1c-0d9e-8f7a6b5c4d3e/stream 200 12.3ms ua="Mozilla/5.0 (X11; Linux x86_64)"',
    'Tool web_search returned 10 results in 1.2s for query "latest python 3.13 release notes" (cache miss, v1.4.2)',
    '{"event": "llm_response", "level": "info", "request_id": "a1b2c3d4", "cost_usd": 0.00123, '
    '"finish_reason": "stop", '
    '"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}',
    'Traceback (most recent call last):\n  File "/app/agent/run.py", line 142, in run_agent\n'
    "    await tm.run_thread(t)\n"
    "ValueError: sandbox 12345 not ready after 30 attempts",
    "User asked: can you summarise the quarterly report and email it to the team by Friday? Assistant: Sure, here is",
]


def agentpress_json_lines(rng: random.Random, n: int) -> list[str]:
    """Lines as AgentPress's structlog chain renders them: uuids, trace ids, an ISO timestamp, ns epoch
    timestamps and durations, token counts, float costs and latencies. Numbers dominate real JSON logs;
    an unanchored digit pattern (the card detector) on them was the slow case: 6-18 MB/s."""
    events = ["Starting thread execution", "Tool web_search finished", "LLM call completed", "Redis publish ok",
              "agent run status updated", "sandbox command finished"]
    out = []
    for _ in range(n):
        out.append(json.dumps({
            "event": rng.choice(events), "level": rng.choice(["info", "info", "debug", "warning"]),
            "timestamp": f"2026-11-25T10:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randrange(10**6):06d}Z",
            "filename": "thread_manager.py", "func_name": "run_thread", "lineno": rng.randint(1, 900),
            "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "thread_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "agent_run_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "trace_id": f"{rng.getrandbits(128):032x}", "span_id": f"{rng.getrandbits(64):016x}",
            "model": "anthropic/claude-sonnet-4-20250514", "prompt_tokens": rng.randint(1, 99999),
            "completion_tokens": rng.randint(1, 9999), "cost_usd": rng.random() / 100,
            "ts_ns": rng.randint(1_760_000_000 * 10**9, 1_800_000_000 * 10**9),
            "duration_ns": rng.randint(10**6, 10**12),
            "latency_s": rng.random() * 30,
        }))  # fmt: skip
    return out


# The corpus mixes the hand-written lines above with realistic JSON lines (one in two).
LINES += agentpress_json_lines(random.Random(11), len(LINES))

SECRET_LINE = "auth ok for jane.doe@example.com with key sk-proj-" + "Ab3d" * 12 + " and card 4111 1111 1111 1111"

# The naive baseline of performance.md section 10: 10 patterns, one named-group alternation, re.sub + callback.
NAIVE = re.compile(
    "|".join(
        f"(?P<{k}>{p})"
        for k, p in [
            ("openai", r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}"),
            ("anthropic", r"sk-ant-[A-Za-z0-9_-]{20,}"),
            ("aws", r"(?:AKIA|ASIA)[A-Z2-7]{16}"),
            ("github", r"gh[pousr]_[A-Za-z0-9]{36,}"),
            ("jwt", r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
            ("bearer", r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
            ("email", r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
            ("card", r"\b(?:\d[ -]?){12,18}\d\b"),
            ("phone", r"\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}"),
            ("pkey", r"-----BEGIN[A-Z ]*PRIVATE KEY-----[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----"),
        ]
    )
)


def short_lines(rng: random.Random, n: int) -> list[str]:
    """Clean 40-120 byte strings shaped like what is redacted one by one: log messages (stdlib
    ``getMessage()`` results, structlog events) and span/log attribute values, with uuids, numbers,
    paths, model names and key=value pairs."""
    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    models = ["anthropic/claude-sonnet-4-20250514", "gpt-4o-mini", "openrouter/moonshotai/kimi-k2", "gemini-2.5-pro"]
    tools = ["web_search", "sb_files_tool", "browser_navigate_to", "execute_command", "ask"]
    templates = [
        lambda: f"Starting thread execution for thread {uid()}",
        lambda: f"LLM call completed in {rng.random() * 9:.2f}s with model {rng.choice(models)}",
        lambda: f"Tool {rng.choice(tools)} returned {rng.randint(1, 50)} results in {rng.random() * 3:.1f}s",
        lambda: f"Agent run {uid()} status updated to completed",
        lambda: f"GET /api/agent-run/{uid()}/stream 200 {rng.random() * 90:.1f}ms",
        lambda: f"run_thread thread_id={uid()[:8]} model={rng.choice(models)} tokens={rng.randint(1, 9999)}",
        lambda: f"Redis publish ok on channel agent_run:{uid()}:control",
        lambda: f"Sandbox {uid()[:13]} ready after {rng.randint(1, 30)} attempts ({rng.random() * 4:.2f}s)",
        lambda: f"Retrying request to /v1/chat/completions in {rng.random():.3f} seconds",
        lambda: f"Processing {rng.randint(1, 400)} messages for thread {uid()}",
        lambda: f"User asked to summarise the quarterly report and email it by {rng.choice(['Friday', 'Monday'])}",
        lambda: f"Billing check passed for account {uid()} (credits left: {rng.randint(0, 9000)})",
    ]
    out = []
    while len(out) < n:
        line = rng.choice(templates)()
        if 40 <= len(line) <= 120:
            out.append(line)
    return out


def short_values(rng: random.Random, n: int) -> list[str]:
    """Attribute values of at most 11 characters, as spans carry them (http.request.method, status codes,
    gen_ai.system, finish reasons, tool and model names, short routes, versions, numbers as text)."""
    fixed = ["GET", "POST", "200", "404", "openai", "anthropic", "chat", "stop", "tool_calls", "web_search",
             "gpt-4o-mini", "/api/health", "/api/agent", "completed", "running", "agentpress", "redis", "v1.2.3",
             "en-US", "true", "ask", "browser_nav", "sb_shell"]  # fmt: skip
    numbers = [lambda: str(rng.randint(0, 99999)), lambda: f"{rng.random():.5f}", lambda: f"{rng.random() * 90:.1f}ms",
               lambda: f"run_{rng.randint(1, 9999)}", lambda: f"{rng.getrandbits(40):010x}"]  # fmt: skip
    return [rng.choice(fixed) if rng.random() < 0.6 else rng.choice(numbers)() for _ in range(n)]


def one_by_one(ours: Redactor, texts: list[str], *, rounds: int, without_shortcut: bool = False) -> dict[str, Any]:
    """Per-text cost of ``ours.redact`` called once per text, in interleaved rounds against the naive baseline,
    RE2's one-call check alone (``any_of``, plus the encode it needs), the same redactor without the compiled
    pre-check (the path before it) and, optionally, without any shortcut (neither the pre-check nor the
    short-value one); medians over the rounds (each round: the best of 3 passes over ``texts``)."""
    nbytes = sum(len(x) for x in texts)
    no_pre = Redactor(hash_key=b"bench")
    no_pre._clean = None  # the compiled pre-check off: RE2 decides every string, as before it
    bare = Redactor(hash_key=b"bench")
    bare._tiny, bare._clean = -1, None  # both shortcuts off: the path before them
    check = ours._any_of
    empty = [b""] * len(texts)
    fns: dict[str, Any] = {
        "ours": lambda: [ours.redact(x) for x in texts],
        "naive": lambda: [naive(x) for x in texts],
        "no_precheck": lambda: [no_pre.redact(x) for x in texts],
        "re2_check": lambda: [check(x.encode()) for x in texts],
        "re2_empty": lambda: [check(x) for x in empty],
    }
    pre = ours._clean
    if pre is not None:
        fns["precheck_alone"] = lambda: [pre(x) for x in texts]
    if without_shortcut:
        fns["no_shortcut"] = lambda: [bare.redact(x) for x in texts]
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            samples[k].append(best / len(texts) * 1e6)
    med = {k: statistics.median(v) for k, v in samples.items()}
    out: dict[str, Any] = {
        "lines": len(texts), "mean_bytes": nbytes / len(texts), "rounds": rounds,
        "ours_us_per_line": med["ours"], "ours_us_range": [min(samples["ours"]), max(samples["ours"])],
        "ours_MBps": nbytes / len(texts) / med["ours"], "naive_re_us_per_line": med["naive"],
        "naive_re_MBps": nbytes / len(texts) / med["naive"],
        "ratio_vs_naive": statistics.median(n / o for n, o in zip(samples["naive"], samples["ours"], strict=True)),
        "re2_check_us_per_line": med["re2_check"], "re2_check_empty_us": med["re2_empty"],
        "no_precheck_us_per_line": med["no_precheck"],
        "no_precheck_us_range": [min(samples["no_precheck"]), max(samples["no_precheck"])],
        "ratio_vs_no_precheck": statistics.median(
            o / p for o, p in zip(samples["ours"], samples["no_precheck"], strict=True)),
        # Decided by the pre-check alone (no RE2 call); 0 without the compiled module.
        "precheck_decides": sum(bool(pre and pre(x)) for x in texts) / len(texts),
    }  # fmt: skip
    if pre is not None:
        out["precheck_alone_us_per_line"] = med["precheck_alone"]
    if without_shortcut:
        out["no_shortcut_us_per_line"] = med["no_shortcut"]
    return out


def naive(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.lastgroup == "card" and not luhn_ok(re.sub(r"\D", "", m.group())):
            return m.group()
        return f"[REDACTED:{m.lastgroup}]"

    return NAIVE.sub(repl, text)


def corpus(size: int, rng: random.Random, secret_every: int = 0) -> str:
    parts: list[str] = []
    n = 0
    while sum(len(p) + 1 for p in parts) < size:
        n += 1
        parts.append(SECRET_LINE if secret_every and n % secret_every == 0 else rng.choice(LINES))
    return "\n".join(parts)[:size]


def timeit(fn: Any, arg: Any, budget_s: float = 0.4, repeats: int = 5) -> float:
    """Median seconds per call over ``repeats`` runs of about ``budget_s`` each."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(arg)
        if time.perf_counter() - t0 > 0.05:
            break
        n *= 4
    per = (time.perf_counter() - t0) / n
    loops = max(1, int(budget_s / max(per, 1e-9) / repeats))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn(arg)
        samples.append((time.perf_counter() - t0) / loops)
    return statistics.median(samples)


def main() -> None:
    rng = random.Random(7)
    ours = Redactor()
    no_pre = Redactor()
    no_pre._clean = None  # the compiled pre-check off (texts up to 2048 chars take it)
    stdlib_engine = Redactor(engine="re")
    results: dict[str, Any] = {"sizes": {}}
    for size in (100, 1024, 10 * 1024):
        clean = corpus(size, rng)
        # "mixed": a secret-bearing line (3 secrets) among ordinary ones, 1 line in 25; "dense": 1 in 4.
        mixed = corpus(size, rng, secret_every=25) if size > 2048 else clean[: size - 60] + " " + SECRET_LINE[:59]
        dense = corpus(size, rng, secret_every=4) if size > 200 else SECRET_LINE[:size]
        row: dict[str, Any] = {}
        for label, text in (("clean", clean), ("mixed", mixed), ("dense", dense)):
            t_ours = timeit(ours.redact, text)
            t_no_pre = timeit(no_pre.redact, text)
            t_naive = timeit(naive, text)
            t_re = timeit(stdlib_engine.redact, text, budget_s=0.2, repeats=3)
            row[label] = {
                "ours_us": t_ours * 1e6,
                "naive_re_us": t_naive * 1e6,
                "ours_stdlib_fallback_us": t_re * 1e6,
                "ours_no_precheck_us": t_no_pre * 1e6,
                "ours_MBps": len(text) / t_ours / 1e6,
                "naive_re_MBps": len(text) / t_naive / 1e6,
                "speedup_vs_naive": t_naive / t_ours,
            }
            print(
                f"{size:>6} B {label:5}: ours {t_ours * 1e6:8.1f} us ({len(text) / t_ours / 1e6:6.1f} MB/s)  "
                f"naive re {t_naive * 1e6:8.1f} us ({len(text) / t_naive / 1e6:5.1f} MB/s)  "
                f"ratio {t_naive / t_ours:5.1f}x  [stdlib fallback engine {t_re * 1e6:8.1f} us; "
                f"without the pre-check {t_no_pre * 1e6:6.1f} us]"
            )
        results["sizes"][str(size)] = row

    def throughput(key: str, label: str, text: str) -> None:
        t_ours = timeit(Redactor(max_chars=1 << 20).redact, text)
        t_naive = timeit(naive, text, budget_s=1.0, repeats=3)
        mbps, base = len(text) / t_ours / 1e6, len(text) / t_naive / 1e6
        results[key] = {"ours_MBps": mbps, "naive_re_MBps": base, "ratio": t_naive / t_ours}
        print(f"{label}: ours {mbps:.1f} MB/s vs naive re {base:.1f} MB/s -> {t_naive / t_ours:.1f}x")

    # bulk throughput on a larger mixed log text (the 50 MB/s goal): 1 secret-bearing line in 25
    throughput("bulk_256KiB", "bulk 256 KiB mixed", corpus(256 * 1024, rng, secret_every=25))
    # AgentPress JSON lines only (no secrets): what the log worker scans most of the time
    throughput("agentpress_json_256KiB", "AgentPress JSON lines 256 KiB",
               "\n".join(agentpress_json_lines(random.Random(5), 1200))[: 256 * 1024])
    nested = {f"k{i}": {"user": "u-1", "note": "all fine here", "password": "hunter2", "n": i} for i in range(5)}
    t_val = timeit(ours.redact_value, nested)
    results["redact_value_nested_20_keys_us"] = t_val * 1e6
    print(f"redact_value on a nested 20-key dict: {t_val * 1e6:.1f} us")
    # Short strings one by one (the real input: a log message, one attribute value), each call on its
    # own, as the pipeline makes them; interleaved rounds against the naive baseline and RE2's call alone.
    lines = short_lines(random.Random(3), 2000)
    assert all(ours.redact(x) is x for x in lines), "the short-line corpus must be clean"
    results["short_lines"] = one_by_one(ours, lines, rounds=7)
    # The same lines checked as the log worker checks a batch of records: all in one Redactor.candidates call.
    nbytes = sum(len(x) for x in lines)
    t_batch = timeit(ours.candidates, lines, budget_s=1.0)
    assert not ours.candidates(lines)
    results["short_lines"]["batch_us_per_line"] = t_batch / len(lines) * 1e6
    results["short_lines"]["batch_MBps"] = nbytes / t_batch / 1e6
    sl = results["short_lines"]
    print(f"short lines ({sl['mean_bytes']:.0f} B mean), one call each, median of {sl['rounds']} interleaved rounds: "
          f"ours {sl['ours_us_per_line']:.2f} us ({sl['ours_us_range'][0]:.2f}-{sl['ours_us_range'][1]:.2f}; "
          f"{sl['ours_MBps']:.0f} MB/s); naive re {sl['naive_re_us_per_line']:.2f} us; ratio "
          f"{sl['ratio_vs_naive']:.1f}x; RE2's one-call check alone {sl['re2_check_us_per_line']:.2f} us "
          f"(on empty input {sl['re2_check_empty_us']:.2f} us: the binding's fixed cost)")
    print(f"short lines, compiled pre-check: without it {sl['no_precheck_us_per_line']:.2f} us "
          f"({sl['no_precheck_us_range'][0]:.2f}-{sl['no_precheck_us_range'][1]:.2f}); with/without median of "
          f"per-round ratios {sl['ratio_vs_no_precheck']:.2f}x; it decides {sl['precheck_decides']:.1%} of the lines "
          f"without RE2 (the pre-check call alone {sl.get('precheck_alone_us_per_line', float('nan')):.3f} us)")
    print(f"short lines, one batch scan (the log worker's path): {sl['batch_us_per_line']:.3f} us per line "
          f"({sl['batch_MBps']:.0f} MB/s)")
    # Short attribute values (a method, a status, a model or tool name): the 11-character shortcut, against the
    # same redactor with the shortcut off (the path before it) and the naive baseline, interleaved.
    values = short_values(random.Random(4), 2000)
    results["short_values"] = one_by_one(ours, values, rounds=7, without_shortcut=True)
    sv = results["short_values"]
    print(f"short values ({sv['mean_bytes']:.0f} B mean), one call each: ours {sv['ours_us_per_line']:.2f} us "
          f"({sv['ours_us_range'][0]:.2f}-{sv['ours_us_range'][1]:.2f}); without the shortcut "
          f"{sv['no_shortcut_us_per_line']:.2f} us; without the compiled pre-check {sv['no_precheck_us_per_line']:.2f} "
          f"us; naive re {sv['naive_re_us_per_line']:.2f} us; the pre-check decides {sv['precheck_decides']:.1%}")
    bulk_r = results["bulk_256KiB"]
    rows: list[dict[str, Any]] = [
        {"name": "redaction throughput, 256 KiB bulk vs naive alternation", "value": bulk_r["ours_MBps"],
         "unit": "MB/s", "baseline": bulk_r["naive_re_MBps"], "ratio": bulk_r["ratio"], "goal": ">= 50 MB/s"},
    ]
    ap_r = results["agentpress_json_256KiB"]
    rows.append({"name": "redaction throughput, 256 KiB AgentPress JSON lines vs naive", "value": ap_r["ours_MBps"],
                 "unit": "MB/s", "baseline": ap_r["naive_re_MBps"], "ratio": ap_r["ratio"], "goal": ">= 50 MB/s"})
    rows.append({"name": "redaction, clean 40-120 B lines one by one: us/line vs naive re",
                 "value": sl["ours_us_per_line"], "unit": "us", "baseline": sl["naive_re_us_per_line"],
                 "ratio": sl["ours_us_per_line"] / sl["naive_re_us_per_line"], "goal": "<= 0.5 us"})
    rows.append({"name": "redaction, clean 40-120 B lines one by one: MB/s vs naive re", "value": sl["ours_MBps"],
                 "unit": "MB/s", "baseline": sl["naive_re_MBps"], "ratio": sl["ours_MBps"] / sl["naive_re_MBps"],
                 "goal": ">= 100 MB/s"})
    rows.append({"name": "redaction, clean 40-120 B lines one by one: with vs without the compiled pre-check",
                 "value": sl["ours_us_per_line"], "unit": "us", "baseline": sl["no_precheck_us_per_line"],
                 "ratio": sl["ratio_vs_no_precheck"], "goal": "<= 0.5 us"})
    rows.append({"name": "redaction, clean 40-120 B lines in one batch scan: us/line vs naive re",
                 "value": sl["batch_us_per_line"], "unit": "us", "baseline": sl["naive_re_us_per_line"],
                 "ratio": sl["batch_us_per_line"] / sl["naive_re_us_per_line"], "goal": ""})
    rows.append({"name": "redaction, clean 40-120 B lines: RE2 one-call check alone, us/line",
                 "value": sl["re2_check_us_per_line"], "unit": "us", "baseline": sl["re2_check_empty_us"],
                 "ratio": sl["re2_check_us_per_line"] / sl["re2_check_empty_us"], "goal": "reference (floor)"})
    rows.append({"name": "redaction, short values (<= 11 chars) one by one vs no shortcut (neither one)",
                 "value": sv["ours_us_per_line"], "unit": "us", "baseline": sv["no_shortcut_us_per_line"],
                 "ratio": sv["ours_us_per_line"] / sv["no_shortcut_us_per_line"], "goal": "<= 0.5 us"})
    for kind, v in results["sizes"]["1024"].items():
        rows.append({"name": f"redaction throughput, 1 KB {kind} vs naive", "value": v["ours_MBps"], "unit": "MB/s",
                     "baseline": v["naive_re_MBps"], "ratio": v["speedup_vs_naive"], "goal": ""})
        rows.append({"name": f"redaction, 1 KB {kind}: with vs without the compiled pre-check", "value": v["ours_us"],
                     "unit": "us", "baseline": v["ours_no_precheck_us"],
                     "ratio": v["ours_us"] / v["ours_no_precheck_us"], "goal": ""})
    report("redaction", rows, details=results)


if __name__ == "__main__":
    main()
