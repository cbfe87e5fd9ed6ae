import { test } from 'node:test';
import assert from 'node:assert/strict';
import { propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { installXhrCapture } from '../src/xhr.js';

function memoryTracer() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  return { tracer: provider.getTracer('test'), spans: () => exporter.getFinishedSpans() };
}

class FakeXHR extends EventTarget {
  open(method, url) { this.method = method; this.url = url; this.headers = {}; }
  setRequestHeader(k, v) { this.headers[k] = v; }
  send() { this.sent = true; }
  respond(status, type = 'load') { this.status = status; this.dispatchEvent(new Event(type)); }
}

test('XHR: span per request, traceparent only where allowed, status and errors recorded', () => {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const { tracer, spans } = memoryTracer();
  const errors = [];
  const undo = installXhrCapture(FakeXHR, tracer, {
    base: 'http://app.test/',
    propagate: (u) => u.startsWith('http://api.test/'),
    ignore: (u) => u.startsWith('http://collector.test/'),
  }, (e) => errors.push(e));

  const a = new FakeXHR();
  a.open('get', '/local?token=x');
  a.send();
  a.respond(200);
  const b = new FakeXHR();
  b.open('POST', 'http://api.test/v1/x');
  b.send('{}');
  b.respond(503);
  const c = new FakeXHR();
  c.open('POST', 'http://collector.test/v1/logs');
  c.send('{}');
  c.respond(200);
  const d = new FakeXHR();
  d.open('GET', 'http://api.test/y');
  d.send();
  d.respond(0, 'error');

  assert.equal(a.headers.traceparent, undefined);
  assert.match(b.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.deepEqual(errors, []);
  const got = spans();
  assert.equal(got.length, 3, 'the collector request is not traced');
  const [sa, sb, sd] = got;
  assert.equal(sa.name, 'GET');
  assert.equal(sa.attributes['url.full'], 'http://app.test/local?token=x', 'redaction happens in the processor, not here');
  assert.equal(sa.attributes['http.response.status_code'], 200);
  assert.equal(sb.attributes['error.type'], '503');
  assert.equal(sb.spanContext().spanId, b.headers.traceparent.split('-')[2]);
  assert.equal(sd.attributes['error.type'], 'network_error');
  undo();
  assert.equal(FakeXHR.prototype.open.name, 'open');
});
