// Drive the e2e page in Debian's headless Chromium through playwright-core (no browser download).
// Input: one JSON argument; output: one JSON line on stdout. Used by tests/integration/test_browser_e2e.py.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2]);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const profile = mkdtempSync(join(tmpdir(), 'apotel-chromium-'));
const result = { console: [] };
let ctx;
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: cfg.executablePath ?? '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    timeout: 60_000,
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('console', (m) => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`));

  await page.goto(cfg.pageUrl);
  await page.waitForFunction(() => window.__apotel_ready === true, null, { timeout: 20_000 });
  result.sessionId = await page.evaluate(() => window.__apotel.sessionId());
  await page.click('#ask');
  await page.waitForFunction(() => window.__apotel_done === true, null, { timeout: 20_000 });
  // A route change through the history API, then let the error handlers run before flushing.
  await page.evaluate(() => history.pushState({}, '', '/e2e/page.html?view=files&access_token=route-secret'));
  // The fetch instrumentation ends its span 300 ms after the body was read (it waits for resource timing);
  // leaving the page before that loses the span, so give it well over that before flushing.
  await page.waitForTimeout(1200);
  result.fetchResult = await page.evaluate(() => window.__apotel_result);
  result.xhrResult = await page.evaluate(() => window.__apotel_xhr);
  result.failedFetches = await page.evaluate(() => window.__apotel_failed);
  await page.evaluate(() => window.__apotel.flush());

  if (cfg.badPageUrl) {
    // Same receiver, but from an origin not on its CORS allowlist: the browser must refuse.
    await page.goto(cfg.badPageUrl);
    result.badOrigin = await page.evaluate(async (url) => {
      try {
        const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceLogs":[]}' });
        return { ok: true, status: r.status };
      } catch (e) {
        return { ok: false, error: String(e) };
      }
    }, cfg.collectorLogsUrl);
  }
} catch (e) {
  result.error = String(e?.stack ?? e);
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
