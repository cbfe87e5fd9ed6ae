"""A small parser for the LogQL and TraceQL our dashboards use, and its own tests.

There is no LogQL/TraceQL parser on PyPI (Grafana's real grammars are the npm packages ``@grafana/lezer-logql`` and
``@grafana/lezer-traceql``), and counting braces accepts nonsense such as ``{a="b"} | | json`` or
``{span.x = }``. This recursive-descent parser covers the subset of both languages that dashboards need and rejects
anything outside it, so a panel query that does not parse here is either wrong or needs the grammar extended on
purpose. It returns what the field checks in test_dashboards_structure.py need: the stream-selector matchers,
label-filter fields and grouping labels (LogQL); the scoped attributes and intrinsics (TraceQL).

Grammar (subset):

LogQL   query    := metric | log
        log      := '{' matcher (',' matcher)* '}' stage*
        matcher  := IDENT ('='|'!='|'=~'|'!~') STRING
        stage    := ('|='|'!='|'|~'|'!~') STRING
                  | '|' ('json' | 'logfmt' | 'unpack' | ('regexp'|'pattern'|'line_format') STRING
                        | ('drop'|'keep') IDENT (',' IDENT)* | filter (('and'|'or'|',') filter)*)
        filter   := IDENT ('='|'=='|'!='|'=~'|'!~'|'>'|'>='|'<'|'<=') (STRING|NUMBER|DURATION)
        metric   := AGG [grouping] '(' metric ')' [grouping] | RANGE '(' log '[' DURATION ']' ')'
TraceQL query    := '{' [or] '}' ('|' stage)*
        or       := and ('||' and)* ;  and := atom ('&&' atom)* ;  atom := '(' or ')' | field OP value
        field    := ('span'|'resource'|'event'|'link'|'instrumentation') '.' NAME | '.' NAME | INTRINSIC
        stage    := 'select' '(' field (',' field)* ')'
                  | ('rate'|'count_over_time') '(' ')' [by]
                  | ('sum'|'avg'|'min'|'max'|'histogram')'_over_time' '(' field ')' [by]
                  | 'quantile_over_time' '(' field (',' NUMBER)+ ')' [by]
        by       := 'by' '(' field (',' field)* ')'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<duration>\d+(?:\.\d+)?(?:ms|us|ns|s|m|h|d|w|y)(?:\d+(?:ms|us|ns|s|m|h))*(?![\w.]))
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?![\w]))
  | (?P<op>=~|!~|!=|==|>=|<=|\|=|\|~|&&|\|\||[=<>|{}()\[\],.])
  | (?P<ident>[A-Za-z_][\w:]*(?:\.[A-Za-z_][\w]*)*)
""", re.VERBOSE)


class QueryError(ValueError):
    pass


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(q: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        if not m:
            raise QueryError(f"unexpected character {q[pos]!r} at {pos} in {q!r}")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, q: str) -> None:
        self.q = q
        self.toks = _tokens(q)
        self.i = 0

    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, *texts: str) -> bool:
        t = self.peek()
        return t is not None and t.text in texts and t.kind in ("op", "ident")

    def take(self, kind: str | None = None, *texts: str) -> _Tok:
        t = self.peek()
        if t is None:
            raise QueryError(f"unexpected end of {self.q!r}, expected {texts or kind}")
        if (kind and t.kind != kind) or (texts and t.text not in texts):
            raise QueryError(f"expected {texts or kind} at {t.pos}, got {t.text!r} in {self.q!r}")
        self.i += 1
        return t

    def done(self) -> None:
        if self.peek() is not None:
            t = self.peek()
            assert t is not None
            raise QueryError(f"trailing {t.text!r} at {t.pos} in {self.q!r}")


# ------------------------------------------------------------------------------------------------------------ LogQL

LOGQL_AGG = {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk"}
LOGQL_RANGE = {"count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time"}
LOGQL_PARSERS = {"json", "logfmt", "unpack"}
_SEL_OPS = {"=", "!=", "=~", "!~"}
_CMP_OPS = {"=", "==", "!=", "=~", "!~", ">", ">=", "<", "<="}


@dataclass
class LogQL:
    selector: list[tuple[str, str, str]] = field(default_factory=list)  # (label, op, value)
    filters: list[tuple[str, str, str]] = field(default_factory=list)   # label filters after the selector
    grouping: set[str] = field(default_factory=set)
    line_filters: list[tuple[str, str]] = field(default_factory=list)
    metric: bool = False

    @property
    def fields(self) -> set[str]:
        return {n for n, _, _ in self.selector} | {n for n, _, _ in self.filters} | self.grouping


def parse_logql(q: str) -> LogQL:
    p, out = _Parser(q), LogQL()
    _logql_expr(p, out)
    p.done()
    return out


def _string(tok: _Tok) -> str:
    return tok.text[1:-1]


def _logql_expr(p: _Parser, out: LogQL) -> None:
    if p.at("{"):
        _logql_log(p, out)
        return
    name = p.take("ident").text
    out.metric = True
    if name in LOGQL_AGG:
        if p.at("by", "without"):
            _logql_grouping(p, out)
        p.take("op", "(")
        if name in {"topk", "bottomk"}:
            p.take("number")
            p.take("op", ",")
        _logql_expr(p, out)
        p.take("op", ")")
        if p.at("by", "without"):
            _logql_grouping(p, out)
    elif name in LOGQL_RANGE:
        p.take("op", "(")
        _logql_log(p, out)
        p.take("op", "[")
        p.take("duration")
        p.take("op", "]")
        p.take("op", ")")
    else:
        raise QueryError(f"unknown LogQL function {name!r} in {p.q!r}")


def _logql_grouping(p: _Parser, out: LogQL) -> None:
    p.take("ident", "by", "without")
    p.take("op", "(")
    out.grouping.add(p.take("ident").text)
    while p.at(","):
        p.take("op", ",")
        out.grouping.add(p.take("ident").text)
    p.take("op", ")")


def _logql_log(p: _Parser, out: LogQL) -> None:
    p.take("op", "{")
    while True:
        label = p.take("ident").text
        op = p.take("op").text
        if op not in _SEL_OPS:
            raise QueryError(f"bad matcher operator {op!r} in {p.q!r}")
        out.selector.append((label, op, _string(p.take("string"))))
        if not p.at(","):
            break
        p.take("op", ",")
    p.take("op", "}")
    while p.peek() is not None and p.at("|", "|=", "!=", "|~", "!~"):
        op = p.take("op").text
        if op != "|":
            out.line_filters.append((op, _string(p.take("string"))))
            continue
        t = p.peek()
        if t is None:
            raise QueryError(f"empty pipeline stage at the end of {p.q!r}")
        if t.kind == "ident" and t.text in LOGQL_PARSERS:
            p.take()
        elif t.kind == "ident" and t.text in {"regexp", "pattern", "line_format"}:
            p.take()
            p.take("string")
        elif t.kind == "ident" and t.text in {"drop", "keep"}:
            p.take()
            p.take("ident")
            while p.at(","):
                p.take("op", ",")
                p.take("ident")
        else:
            _logql_filter(p, out)
            while p.at("and", "or", ","):
                p.take()
                _logql_filter(p, out)


def _logql_filter(p: _Parser, out: LogQL) -> None:
    name = p.take("ident").text
    op = p.take("op").text
    if op not in _CMP_OPS:
        raise QueryError(f"bad label-filter operator {op!r} in {p.q!r}")
    v = p.take()
    if v.kind not in ("string", "number", "duration"):
        raise QueryError(f"bad label-filter value {v.text!r} in {p.q!r}")
    if v.kind != "string" and op in {"=~", "!~"}:
        raise QueryError(f"regex operator needs a string in {p.q!r}")
    out.filters.append((name, op, _string(v) if v.kind == "string" else v.text))


# ---------------------------------------------------------------------------------------------------------- TraceQL

TRACEQL_SCOPES = {"span", "resource", "event", "link", "instrumentation"}
TRACEQL_INTRINSICS = {"status", "name", "kind", "duration", "statusMessage", "rootName", "rootServiceName",
                      "traceDuration", "span:status", "span:name", "span:kind", "span:duration", "trace:duration",
                      "trace:rootName", "trace:rootService", "span:statusMessage"}
_STATUS = {"error", "ok", "unset"}
_KIND = {"client", "server", "internal", "producer", "consumer", "unspecified"}
_NO_ARG = {"rate", "count_over_time"}
_ONE_ARG = {"sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "histogram_over_time"}


@dataclass
class TraceQL:
    attributes: list[tuple[str, str]] = field(default_factory=list)  # (scope, name); scope "" for unscoped
    intrinsics: set[str] = field(default_factory=set)
    stages: list[str] = field(default_factory=list)


def parse_traceql(q: str) -> TraceQL:
    p, out = _Parser(q), TraceQL()
    p.take("op", "{")
    if not p.at("}"):
        _tq_or(p, out)
    p.take("op", "}")
    while p.peek() is not None:
        p.take("op", "|")
        _tq_stage(p, out)
    p.done()
    return out


def _tq_or(p: _Parser, out: TraceQL) -> None:
    _tq_and(p, out)
    while p.at("||"):
        p.take()
        _tq_and(p, out)


def _tq_and(p: _Parser, out: TraceQL) -> None:
    _tq_atom(p, out)
    while p.at("&&"):
        p.take()
        _tq_atom(p, out)


def _tq_field(p: _Parser, out: TraceQL) -> str:
    t = p.take()
    if t.kind == "op" and t.text == ".":  # unscoped: .http.route
        name = p.take("ident").text
        out.attributes.append(("", name))
        return f".{name}"
    if t.kind != "ident":
        raise QueryError(f"expected an attribute or intrinsic at {t.pos}, got {t.text!r} in {p.q!r}")
    scope, _, name = t.text.partition(".")
    if name:
        if scope not in TRACEQL_SCOPES:
            raise QueryError(f"unknown attribute scope {scope!r} in {p.q!r}")
        out.attributes.append((scope, name))
        return t.text
    if t.text not in TRACEQL_INTRINSICS:
        raise QueryError(f"{t.text!r} is neither an intrinsic nor a scoped attribute in {p.q!r}")
    out.intrinsics.add(t.text)
    return t.text


def _tq_atom(p: _Parser, out: TraceQL) -> None:
    if p.at("("):
        p.take()
        _tq_or(p, out)
        p.take("op", ")")
        return
    f = _tq_field(p, out)
    op = p.take("op").text
    if op not in _CMP_OPS - {"=="}:
        raise QueryError(f"bad comparison {op!r} in {p.q!r}")
    v = p.take()
    base = f.split(":")[-1]
    if base == "status":
        ok = v.kind == "ident" and v.text in _STATUS and op in {"=", "!="}
    elif base == "kind":
        ok = v.kind == "ident" and v.text in _KIND and op in {"=", "!="}
    elif base in {"duration", "traceDuration"}:
        ok = v.kind == "duration" and op not in {"=~", "!~"}
    elif op in {"=~", "!~"}:
        ok = v.kind == "string"
    else:
        ok = v.kind in ("string", "number", "duration") or v.text in {"true", "false", "nil"}
    if not ok:
        raise QueryError(f"{f} {op} {v.text} is not a valid comparison in {p.q!r}")


def _tq_by(p: _Parser, out: TraceQL) -> None:
    if p.at("by"):
        p.take()
        p.take("op", "(")
        _tq_field(p, out)
        while p.at(","):
            p.take()
            _tq_field(p, out)
        p.take("op", ")")


def _tq_stage(p: _Parser, out: TraceQL) -> None:
    name = p.take("ident").text
    out.stages.append(name)
    p.take("op", "(")
    if name == "select":
        _tq_field(p, out)
        while p.at(","):
            p.take()
            _tq_field(p, out)
        p.take("op", ")")
        return
    if name in _NO_ARG:
        p.take("op", ")")
    elif name in _ONE_ARG:
        _tq_field(p, out)
        p.take("op", ")")
    elif name == "quantile_over_time":
        _tq_field(p, out)
        p.take("op", ",")
        p.take("number")
        while p.at(","):
            p.take()
            p.take("number")
        p.take("op", ")")
    else:
        raise QueryError(f"unknown TraceQL pipeline stage {name!r} in {p.q!r}")
    _tq_by(p, out)


# ------------------------------------------------------------------------------------------------------------ tests

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
    'sum by (x) (count_over_time({a="b"}))',
    'count_over_time({a="b"} [1m]',
    '{a="b"} | x =~ 5',
    'frobnicate({a="b"} [1m])',
]
GOOD_TRACEQL = [
    '{span.agentpress.thread.id = "t" && status = error}',
    '{resource.service.name =~ "web" && kind = client} | rate() by (status)',
    '{name = "documentLoad"} | quantile_over_time(duration, .5, .95)',
    '{} | select(span.gen_ai.request.model, span.gen_ai.usage.input_tokens)',
    '{(span.a = 1 || span.b = "x") && duration > 2s} | sum_over_time(span.n) by (resource.service.name)',
]
BAD_TRACEQL = [
    '{span.agentpress.thread.id = }',
    '{status = "error"}',
    '{kind = clientside}',
    '{duration > "2s"}',
    '{spam.x = "y"}',
    '{foo = "y"}',
    '{a.b = 1',
    '{} | rate(span.x)',
    '{} | quantile_over_time(duration)',
    '{} | frobnicate()',
    '{} |',
]


@pytest.mark.parametrize("q", GOOD_LOGQL)
def test_logql_parser_accepts(q: str) -> None:
    parse_logql(q)


@pytest.mark.parametrize("q", BAD_LOGQL)
def test_logql_parser_rejects(q: str) -> None:
    with pytest.raises(QueryError):
        parse_logql(q)


@pytest.mark.parametrize("q", GOOD_TRACEQL)
def test_traceql_parser_accepts(q: str) -> None:
    parse_traceql(q)


@pytest.mark.parametrize("q", BAD_TRACEQL)
def test_traceql_parser_rejects(q: str) -> None:
    with pytest.raises(QueryError):
        parse_traceql(q)


def test_parsers_report_fields() -> None:
    lq = parse_logql('sum by (exception_type) (count_over_time({service_name="w"} | exception_type != "" [1m]))')
    assert lq.selector == [("service_name", "=", "w")] and lq.fields == {"service_name", "exception_type"}
    tq = parse_traceql('{resource.service.name = "a" && span.x.y = 1} | rate() by (span.z)')
    assert tq.attributes == [("resource", "service.name"), ("span", "x.y"), ("span", "z")]
