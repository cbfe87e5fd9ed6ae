// Report the bundle size (minified and gzipped) without touching dist/: an in-memory esbuild
// with the same options as scripts/build.mjs. Exits 1 over the 35 KB gzip budget.
// Usage: npm run size [-- --json]
import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUDGET_GZIP_BYTES = 35 * 1024;

const result = await build({
  entryPoints: [join(root, 'src', 'index.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020'],
  legalComments: 'none',
  metafile: true,
  write: false,
  outfile: 'agentpress-otel.js',
  logLevel: 'warning',
});
const code = result.outputFiles.find((f) => f.path.endsWith('.js')).contents;
const gz = gzipSync(code, { level: 9 }).length;

// The largest inputs, so a size jump points at its cause.
const inputs = Object.values(result.metafile.outputs)[0].inputs;
const top = Object.entries(inputs)
  .map(([path, v]) => [path.replace(/^node_modules\//, ''), v.bytesInOutput])
  .sort((a, b) => b[1] - a[1])
  .slice(0, 8);

const report = { minified_bytes: code.length, gzip_bytes: gz, budget_gzip_bytes: BUDGET_GZIP_BYTES };
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ ...report, largest_inputs: Object.fromEntries(top) }, null, 2));
} else {
  console.log(`agentpress-otel browser bundle: ${code.length} B minified, ${gz} B gzipped ` +
    `(${(gz / 1024).toFixed(1)} KB of the ${BUDGET_GZIP_BYTES / 1024} KB budget)`);
  for (const [path, bytes] of top) console.log(`  ${String(bytes).padStart(7)} B  ${path}`);
}
if (gz > BUDGET_GZIP_BYTES) {
  console.error('bundle over the 35 KB gzip budget');
  process.exit(1);
}
