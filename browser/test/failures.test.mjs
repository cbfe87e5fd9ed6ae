import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { fetchErrorType, markFetchFailure } from '../src/failures.js';

test('fetch outcomes with status 0 are failures with an error.type; answers are not', () => {
  assert.equal(fetchErrorType(new TypeError('Failed to fetch')), 'network_error');
  assert.equal(fetchErrorType(new DOMException('aborted', 'AbortError')), 'aborted');
  assert.equal(fetchErrorType(new DOMException('timed out', 'TimeoutError')), 'timeout');
  assert.equal(fetchErrorType(Response.error()), 'network_error');
  assert.equal(fetchErrorType(new Response('{}', { status: 200 })), '');
  assert.equal(fetchErrorType(new Response('', { status: 503 })), ''); // the instrumentation marks >= 400 itself
  assert.equal(fetchErrorType({ status: 0, type: 'opaque' }), ''); // no-cors: answered, unreadable
});

test('markFetchFailure sets ERROR status and error.type on the span before it ends', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const tracer = provider.getTracer('test');
  const failed = tracer.startSpan('GET');
  markFetchFailure(failed, {}, new TypeError('Failed to fetch'));
  failed.end();
  const ok = tracer.startSpan('GET');
  markFetchFailure(ok, {}, new Response('{}', { status: 200 }));
  ok.end();
  const [a, b] = exporter.getFinishedSpans();
  assert.equal(a.status.code, 2);
  assert.equal(a.attributes['error.type'], 'network_error');
  assert.equal(b.status.code, 0);
  assert.equal(b.attributes['error.type'], undefined);
});
