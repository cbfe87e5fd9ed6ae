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
if (gz > report.budget_gzip_bytes) {
  console.error('bundle over the 35 KB gzip budget');
  process.exit(1);
}
