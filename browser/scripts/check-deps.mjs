// Fail when npm installed more than one copy of any package (OTel 3.x pins exact siblings,
// so a single mismatched version silently nests a second SDK).
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let out;
try {
  out = execFileSync('npm', ['ls', '--all', '--json'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
} catch (e) {
  out = e.stdout; // npm ls exits 1 on problems but still prints JSON
  if (!out) throw e;
}
const tree = JSON.parse(out);
const seen = new Map();
const problems = [...(tree.problems ?? [])];
(function walk(node) {
  for (const [name, dep] of Object.entries(node.dependencies ?? {})) {
    if (dep.version) {
      if (!seen.has(name)) seen.set(name, new Set());
      seen.get(name).add(dep.version);
    }
    if (dep.missing) problems.push(`missing ${name}`);
    walk(dep);
  }
})(tree);
const dups = [...seen].filter(([, v]) => v.size > 1).map(([n, v]) => `${n}: ${[...v].join(', ')}`);
if (dups.length || problems.length) {
  console.error(['duplicate or broken packages:', ...dups, ...problems].join('\n  '));
  process.exit(1);
}
const otel = [...seen].filter(([n]) => n.startsWith('@opentelemetry/')).map(([n, v]) => `${n}@${[...v][0]}`);
console.log(`no duplicate packages (${seen.size} packages); OpenTelemetry set:\n  ${otel.sort().join('\n  ')}`);
