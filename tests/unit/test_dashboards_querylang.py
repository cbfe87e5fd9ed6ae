"""LogQL and TraceQL of the dashboards, checked with Grafana's own grammars.

``@grafana/lezer-logql`` and ``@grafana/lezer-traceql`` (Apache-2.0, pinned in tests/querylang/package.json and
installed by scripts/setup-browser.sh) are the Lezer grammars Grafana's query editors use. tests/querylang/parse.mjs
runs them with node and returns the syntax tree; a query with an error node fails here, and a query the grammar
accepts is never refused by a parser of ours. From the tree we read what the field checks in
test_dashboards_structure.py need: stream-selector matchers, label-filter fields and grouping labels (LogQL); scoped
attributes and intrinsics (TraceQL).

Without node or the installed grammars the tests skip locally and fail under CI=true (tests/conftest.py ``need``).
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel._harness._proc import ComponentMissing
from conftest import need

QUERYLANG = Path(__file__).resolve().parents[1] / "querylang"


class QueryError(ValueError):
    pass


@dataclass
class LogQL:
    selector: list[tuple[str, str, str]] = field(default_factory=list)  # (label, op, value)
    filters: list[tuple[str, str, str]] = field(default_factory=list)  # label filters after the selector
    grouping: set[str] = field(default_factory=set)
    metric: bool = False

    @property
    def fields(self) -> set[str]:
        return {n for n, _, _ in self.selector} | {n for n, _, _ in self.filters} | self.grouping


@dataclass
class TraceQL:
    attributes: list[tuple[str, str]] = field(default_factory=list)  # (scope, name); scope "" for unscoped
    intrinsics: set[str] = field(default_factory=set)
    stages: list[str] = field(default_factory=list)  # metrics / select stages after the spanset filter


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ComponentMissing("node not found (Debian: apt-get install nodejs)")
    if not (QUERYLANG / "node_modules" / "@grafana" / "lezer-logql").is_dir():
        raise ComponentMissing("Grafana's query grammars are not installed: run scripts/setup-browser.sh")
    return node


@functools.cache
def _server() -> subprocess.Popen[str]:
    """One node process for the session (parse.mjs answers one JSON line per request line); ends with pytest."""
    node = need(_node)
    proc = subprocess.Popen([node, str(QUERYLANG / "parse.mjs")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=QUERYLANG)

    def stop() -> None:
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: parse.mjs exits
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()  # else "ResourceWarning: unclosed file" at interpreter exit

    atexit.register(stop)
    return proc


@functools.lru_cache(maxsize=1024)
def _tree(lang: str, query: str) -> dict[str, Any]:
    proc = _server()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"lang": lang, "query": query}) + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line, f"tests/querylang/parse.mjs exited ({proc.poll()})"
    result: dict[str, Any] = json.loads(line)
    assert "fatal" not in result, result["fatal"]
    if result["errors"]:
        start, end = result["errors"][0]
        raise QueryError(f"{lang} syntax error at {start}..{end} ({query[start:end + 1]!r}) in {query!r}")
    return result["tree"]


def _walk(node: dict[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """Every descendant (and the node itself) called ``name``, depth first."""
    if node["n"] == name:
        yield node
    for child in node["c"]:
        yield from _walk(child, name)


def _child(node: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((c for c in node["c"] if c["n"] == name), None)


_OPS = {"Eq": "=", "Neq": "!=", "Re": "=~", "Nre": "!~"}


def _matcher(m: dict[str, Any]) -> tuple[str, str, str]:
    ident = _child(m, "Identifier")
    op = next((c["n"] for c in m["c"] if c["n"] in _OPS), "")
    value = _child(m, "String")
    return (ident["t"] if ident else "", _OPS.get(op, ""), json.loads(value["t"]) if value and value["t"][0] == '"'
            else (value["t"].strip("`") if value else ""))


def parse_logql(q: str) -> LogQL:
    tree = _tree("logql", q)
    out = LogQL(metric=any(True for _ in _walk(tree, "MetricExpr")))
    for sel in _walk(tree, "Selector"):
        out.selector += [_matcher(m) for m in _walk(sel, "Matcher")]
    for lf in _walk(tree, "LabelFilter"):
        matchers = list(_walk(lf, "Matcher"))
        out.filters += [_matcher(m) for m in matchers]
        if not matchers:  # number, duration, bytes and ip filters: the field is the Identifier
            out.filters += [(i["t"], "", "") for i in _walk(lf, "Identifier")]
    for g in _walk(tree, "Grouping"):
        out.grouping |= {i["t"] for i in _walk(g, "Identifier")}
    return out


def parse_traceql(q: str) -> TraceQL:
    tree = _tree("traceql", q)
    out = TraceQL()
    for a in _walk(tree, "AttributeField"):
        ident = _child(a, "Identifier")
        scope = next((c["n"].lower() for c in a["c"] if c["n"] != "Identifier"), "")
        out.attributes.append((scope, ident["t"] if ident else a["t"].lstrip(".")))
    out.intrinsics = {i["t"] for i in _walk(tree, "IntrinsicField")}
    for op in ("MetricsOperationBasicType", "MetricsOperationType", "SelectOperation"):
        out.stages += [n["t"].split("(")[0] for n in _walk(tree, op)]
    return out


# ------------------------------------------------------------------------------------------------------------ tests
# Not a spec of either language (the grammars are): a check that the bridge reports errors and fields correctly.

GOOD_LOGQL = [
    '{service_name=~".+"} | agentpress_thread_id = "t-1"',
    '{service_name=~".+"} |= "boom" | json | level = "error" or severity_text =~ "(?i)error"',
    'sum by (exception_type) (count_over_time({service_name="web"} | exception_type != "" [1m]))',
    'topk(5, sum(rate({a="b"} [5m])) by (c))',
]
BAD_LOGQL = [
    '{service_name=~".+"} | | json',
    '{service_name=~".+"',
    '{service_name~".+"}',
    'count_over_time({a="b"} [1m]',
    'frobnicate({a="b"} [1m])',
]
GOOD_TRACEQL = [
    '{span.agentpress.thread.id = "t" && status = error}',
    '{resource.service.name =~ "web" && kind = client} | rate() by (status)',
    '{name = "documentLoad"} | quantile_over_time(duration, 0.5, 0.95)',
    '{} | select(span.gen_ai.request.model, span.gen_ai.usage.input_tokens)',
    '{(span.a = 1 || span.b = "x") && duration > 2s} | sum_over_time(span.n) by (resource.service.name)',
]
BAD_TRACEQL = [
    '{span.agentpress.thread.id = }',
    '{kind = clientside}',
    '{spam.x = "y"}',
    '{a.b = 1',
    '{} | frobnicate()',
    '{} |',
    '{} | quantile_over_time(duration, .5)',  # Grafana's grammar wants 0.5 (a leading-dot number fails)
]


@pytest.mark.parametrize("q", GOOD_LOGQL)
def test_logql_grammar_accepts(q: str) -> None:
    """Our LogQL grammar accepts each valid query."""
    parse_logql(q)


@pytest.mark.parametrize("q", BAD_LOGQL)
def test_logql_grammar_rejects(q: str) -> None:
    """Our LogQL grammar rejects each invalid query with a QueryError."""
    with pytest.raises(QueryError):
        parse_logql(q)


@pytest.mark.parametrize("q", GOOD_TRACEQL)
def test_traceql_grammar_accepts(q: str) -> None:
    """Our TraceQL grammar accepts each valid query."""
    parse_traceql(q)


@pytest.mark.parametrize("q", BAD_TRACEQL)
def test_traceql_grammar_rejects(q: str) -> None:
    """Our TraceQL grammar rejects each invalid query with a QueryError."""
    with pytest.raises(QueryError):
        parse_traceql(q)


def test_trees_report_fields() -> None:
    """The parse trees report the selectors, fields, filters, attributes and stages a query uses."""
    lq = parse_logql('sum by (exception_type) (count_over_time({service_name="w"} | exception_type != "" [1m]))')
    assert lq.selector == [("service_name", "=", "w")] and lq.fields == {"service_name", "exception_type"}
    assert lq.metric and lq.filters == [("exception_type", "!=", "")]
    tq = parse_traceql('{resource.service.name = "a" && span.x.y = 1 && kind = client} | rate() by (span.z)')
    assert tq.attributes == [("resource", "service.name"), ("span", "x.y"), ("span", "z")]
    assert tq.intrinsics == {"kind"} and tq.stages == ["rate"]
