// Parse LogQL / TraceQL with Grafana's own Lezer grammars (the ones Grafana's query editors use) and print the
// syntax tree as JSON, for tests/unit/test_dashboards_querylang.py.
// Input (stdin): one request per line, {"lang": "logql" | "traceql", "query": "..."}.
// Output (stdout): one line per request, {"errors": [[from, to], ...], "tree": {"n": name, "t": text, "c": [...]}}
// (or {"fatal": message}). One process serves a whole test session: node starts once.
import { createInterface } from 'node:readline';
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

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  let out;
  try {
    const { lang, query } = JSON.parse(line);
    out = parse(lang, query);
  } catch (e) {
    out = { fatal: String(e) };
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}
