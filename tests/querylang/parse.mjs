// Parse LogQL / TraceQL with Grafana's own Lezer grammars (the ones Grafana's query editors use) and print the
// syntax tree as JSON, for tests/unit/test_dashboards_querylang.py.
// Input (stdin): [{"lang": "logql" | "traceql", "query": "..."}, ...]
// Output (stdout): [{"errors": [[from, to], ...], "tree": {"n": name, "t": text, "c": [children]}}, ...]
import { readFileSync } from 'node:fs';
import { parser as logql } from '@grafana/lezer-logql';
import { parser as traceql } from '@grafana/lezer-traceql';

const PARSERS = { logql, traceql };

function parse(lang, query) {
  const parser = PARSERS[lang];
  if (!parser) throw new Error(`unknown language ${lang}`);
  const errors = [];
  const root = { n: 'root', t: query, c: [] };
  const stack = [root];
  parser.parse(query).iterate({
    enter(node) {
      const name = node.type.isError ? '⚠' : node.name;
      if (node.type.isError) errors.push([node.from, node.to]);
      const item = { n: name, t: query.slice(node.from, node.to), c: [] };
      stack[stack.length - 1].c.push(item);
      stack.push(item);
    },
    leave() {
      stack.pop();
    },
  });
  return { errors, tree: root.c[0] ?? root };
}

const input = JSON.parse(readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(input.map(({ lang, query }) => parse(lang, query))));
