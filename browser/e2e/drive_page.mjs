// Open one page in Debian's headless Chromium (playwright-core, no browser download) and wait until it sets
// window.__apotel_done. Input: one JSON argument {executablePath, pageUrl}; output: one JSON line on stdout.
// Used by tests/integration/test_browser_vite.py.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const profile = mkdtempSync(join(tmpdir(), 'apotel-chromium-'));
const result = { console: [] };
let ctx;
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: cfg.executablePath ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    timeout: 60_000,
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));
  await page.goto(cfg.pageUrl);
  await page.waitForFunction(() => window.__apotel_done !== undefined, null, { timeout: 30_000 });
  result.done = await page.evaluate(() => window.__apotel_done);
} catch (e) {
  result.error = String(e?.stack ?? e);
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
