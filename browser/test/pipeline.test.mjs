// The whole pipeline under node with a fake window: batching, flush on page hide,
// thread/session attributes, redaction, and traceparent only to listed origins.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

class Storage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

function fakeWindow() {
  const win = new EventTarget();
  const doc = new EventTarget();
  doc.visibilityState = 'visible';
  doc.readyState = 'loading';
  doc.referrer = '';
  const loc = new URL('http://app.test/threads/t-1?token=secret-in-page-url');
  win.location = {
    get href() { return loc.href; }, get pathname() { return loc.pathname; },
    get search() { return loc.search; }, get origin() { return loc.origin; },
  };
  win.history = {
    pushState(_s, _t, url) { const n = new URL(url, loc.href); loc.pathname = n.pathname; loc.search = n.search; },
    replaceState(_s, _t, url) { if (url) this.pushState(_s, _t, url); },
  };
  doc.location = win.location;
  win.document = doc;
  win.navigator = { userAgent: 'node-test' };
  return win;
}

function recorder() {
  const batches = [];
  return {
    batches,
    items: () => batches.flat(),
    export(items, cb) { batches.push([...items]); cb({ code: 0 }); },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
}

let win, spans, logs, handle, api, allowed, other;
const seen = { allowed: [], other: [] };

function server(bucket) {
  const s = createServer((req, res) => {
    seen[bucket].push(req.headers);
    res.setHeader('access-control-allow-origin', '*');
    res.end('{}');
  });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}

before(async () => {
  allowed = await server('allowed');
  other = await server('other');
  globalThis.localStorage = new Storage();
  win = fakeWindow();
  globalThis.location = win.location; // the fetch instrumentation reads the page origin from here
  spans = recorder();
  logs = recorder();
  api = await import('../src/index.js');
  handle = api.initAgentpressOtel({
    window: win,
    endpoint: 'http://collector.test:4319',
    serviceName: 'web-test',
    environment: 'test',
    backendOrigins: [`http://127.0.0.1:${allowed.address().port}`],
    batch: { maxExportBatchSize: 50, scheduledDelayMillis: 60_000 },
    exporters: { spans, logs },
  });
});

after(async () => {
  await handle.shutdown();
  allowed.close();
  other.close();
  delete globalThis.location;
});

test('init is idempotent and gives a session id', () => {
  assert.equal(api.initAgentpressOtel({ window: win }), handle);
  assert.ok(handle.enabled);
  assert.match(handle.sessionId(), /^[0-9a-f]{16,}$/);
});

test('headers are refused (no secrets in the browser), with a console warning saying why', async () => {
  await handle.shutdown();
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.join(' '));
  let h;
  try {
    h = api.initAgentpressOtel({ window: fakeWindow(), headers: { 'x-api-key': 'k' } });
  } finally {
    console.warn = warn;
  }
  assert.equal(h.enabled, false);
  assert.ok(api.selfTelemetry.errors >= 1);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /agentpress-otel: telemetry disabled: `headers` is not supported in the browser/);
  assert.match(warnings[0], /Collector/);
  assert.ok(!warnings[0].includes("'k'") && !warnings[0].includes('x-api-key'), 'the warning must not echo the key');
  handle = api.initAgentpressOtel({
    window: win,
    endpoint: 'http://collector.test:4319',
    backendOrigins: [`http://127.0.0.1:${allowed.address().port}`],
    batch: { maxExportBatchSize: 50, scheduledDelayMillis: 60_000 },
    exporters: { spans, logs },
  });
  assert.ok(handle.enabled);
});

test('logs are exported in bounded batches and the remainder is flushed on pagehide', async () => {
  // Queue already holds the init-time page_view event: 1 + 120 records.
  logs.batches.length = 0;
  api.setThreadContext({ threadId: 'thread-1', projectId: 'proj-1' });
  for (let i = 0; i < 120; i++) handle.recordAction(`action ${i}`);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(logs.batches.map((b) => b.length), [50, 50], 'full batches leave at once, the tail waits');
  win.dispatchEvent(new Event('pagehide'));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(logs.batches.map((b) => b.length), [50, 50, 21]);
  assert.equal(logs.items().filter((r) => r.eventName === 'browser.user_action').length, 120);
  const rec = logs.items().at(-1);
  assert.equal(rec.attributes['agentpress.thread.id'], 'thread-1');
  assert.equal(rec.attributes['agentpress.project.id'], 'proj-1');
  assert.equal(rec.attributes['session.id'], handle.sessionId());
});

test('visibilitychange to hidden also flushes', async () => {
  logs.batches.length = 0;
  handle.recordError(new Error('failed with api_key=abc123456'));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(logs.batches.length, 0);
  win.document.visibilityState = 'hidden';
  win.document.dispatchEvent(new Event('visibilitychange'));
  win.document.visibilityState = 'visible';
  await new Promise((r) => setTimeout(r, 50));
  const [rec] = logs.items();
  assert.equal(rec.eventName, 'exception');
  assert.equal(rec.attributes['exception.type'], 'Error');
  assert.equal(rec.attributes['exception.message'], 'failed with api_key=[REDACTED]');
  assert.ok(!String(rec.attributes['exception.stacktrace']).includes('abc123456'));
  assert.equal(rec.body, 'failed with api_key=[REDACTED]');
});

test('route changes via the history API become page_view events with redacted URLs', async () => {
  logs.batches.length = 0;
  win.history.pushState({}, '', '/threads/t-2?access_token=zzz');
  win.history.replaceState({}, '', '/threads/t-2?access_token=zzz'); // same URL: no second event
  await handle.flush();
  const views = logs.items().filter((r) => r.eventName === 'browser.page_view');
  assert.equal(views.length, 1);
  assert.equal(views[0].attributes['browser.page_view.type'], 'route_change');
  assert.equal(views[0].attributes['url.full'], 'http://app.test/threads/t-2?access_token=REDACTED');
});

test('traceparent goes to listed backend origins only; fetch spans are redacted', async () => {
  spans.batches.length = 0;
  const a = `http://127.0.0.1:${allowed.address().port}/api/x?token=t0psecret`;
  const b = `http://127.0.0.1:${other.address().port}/api/y`;
  await (await fetch(a)).text();
  await (await fetch(b)).text();
  await new Promise((r) => setTimeout(r, 400)); // fetch spans end after the body is read
  await handle.flush();
  assert.match(seen.allowed.at(-1).traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  assert.equal(seen.other.at(-1).traceparent, undefined);
  const fetchSpans = spans.items().filter((s) => s.instrumentationScope.name.includes('fetch'));
  assert.equal(fetchSpans.length, 2);
  const sa = fetchSpans.find((s) => String(s.attributes['url.full']).includes('/api/x'));
  assert.equal(sa.attributes['url.full'], `http://127.0.0.1:${allowed.address().port}/api/x?token=REDACTED`);
  assert.equal(sa.attributes['agentpress.thread.id'], 'thread-1');
  assert.equal(sa.attributes['session.id'], handle.sessionId());
  const tp = seen.allowed.at(-1).traceparent.split('-');
  assert.equal(tp[1], sa.spanContext().traceId);
});

test('tracedEventSource carries traceparent in the query string and redacts the span URL', async () => {
  spans.batches.length = 0;
  class FakeEventSource extends EventTarget {
    constructor(url) { super(); this.url = url; }
  }
  globalThis.EventSource = FakeEventSource;
  try {
    const listed = `http://127.0.0.1:${allowed.address().port}`;
    const es = api.tracedEventSource(`${listed}/agent-run/r1/stream?token=jwt-ish-secret`);
    const u = new URL(es.url);
    assert.equal(u.searchParams.get('token'), 'jwt-ish-secret', 'the app still sends its own token');
    const tp = u.searchParams.get('traceparent');
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    es.dispatchEvent(new Event('open'));
    await handle.flush();
    const span = spans.items().find((s) => s.name === 'EventSource');
    assert.equal(span.spanContext().traceId, tp.split('-')[1]);
    assert.equal(span.attributes['url.full'], `${listed}/agent-run/r1/stream?token=REDACTED`);
  } finally {
    delete globalThis.EventSource;
  }
});

test('tracedEventSource adds traceparent only for backendOrigins and the page origin', () => {
  class FakeEventSource extends EventTarget {
    constructor(url) { super(); this.url = url; }
  }
  globalThis.EventSource = FakeEventSource;
  try {
    // Not listed: a third party must not learn our trace ids; the URL is left exactly as given.
    const url = 'http://api.test/agent-run/r1/stream?token=abc';
    assert.equal(api.tracedEventSource(url).url, url);
    assert.equal(api.tracedEventSource('https://evil.example/x').url, 'https://evil.example/x');
    // Same origin as the page (relative URL): allowed, like fetch.
    const same = new URL(api.tracedEventSource('/api/stream').url);
    assert.equal(same.origin, 'http://app.test');
    assert.match(same.searchParams.get('traceparent'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  } finally {
    delete globalThis.EventSource;
  }
});

test('clearing the thread context stops tagging', async () => {
  logs.batches.length = 0;
  api.clearThreadContext();
  handle.recordAction('after');
  await handle.flush();
  assert.equal(logs.items()[0].attributes['agentpress.thread.id'], undefined);
});
