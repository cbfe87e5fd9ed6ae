// Bundle src/ to dist/ with esbuild: one minified ES module plus a size report.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'agentpress-otel.js');
mkdirSync(join(root, 'dist'), { recursive: true });

await build({
  entryPoints: [join(root, 'src', 'index.js')],
  outfile,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  sourcemap: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(join(root, 'dist', 'index.d.ts'), readFileSync(join(root, 'src', 'index.d.ts')));

const code = readFileSync(outfile);
const gz = gzipSync(code, { level: 9 }).length;
const report = { file: 'dist/agentpress-otel.js', minified_bytes: code.length, gzip_bytes: gz, budget_gzip_bytes: 35 * 1024 };
writeFileSync(join(root, 'dist', 'size.json'), JSON.stringify(report, null, 2) + '\n');
console.log(`built ${report.file}: ${code.length} B minified, ${gz} B gzipped (budget ${report.budget_gzip_bytes})`);
// Nothing secret may ship: no JWTs, API keys or bearer tokens inlined (e.g. from NEXT_PUBLIC_* or a config object).
const text = code.toString('utf8');
const leaks = [
  /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/,
  /\b(?:sk|pk|rk)[-_](?:live|test|proj|ant)[-_][A-Za-z0-9_-]{16,}/,
  /\bgh[pousr]_[A-Za-z0-9]{30,}/,
  /\bAKIA[0-9A-Z]{16}\b/,
  /Bearer [A-Za-z0-9._~+/-]{20,}/,
].filter((re) => re.test(text));
if (leaks.length) {
  console.error(`bundle contains secret-looking strings: ${leaks.join(', ')}`);
  process.exit(1);
}
if (gz > report.budget_gzip_bytes) {
  console.error('bundle over the 35 KB gzip budget');
  process.exit(1);
}
